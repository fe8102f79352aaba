"""Fixtures for the security checks: the declarations fixtures (a customs client per node, papers, a guarantee)."""

from __future__ import annotations

from tests.declarations.conftest import customs, guarantee, papers

__all__ = ["customs", "guarantee", "papers"]
