"""The `transit-window` command line."""
