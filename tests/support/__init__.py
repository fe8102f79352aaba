"""Test support: databases on both dialects, keys and trust lists, in-process and multi-process corridors."""
