"""References to tests by `path::name`, checked to exist, so a renamed or deleted proof fails loudly instead of a
claim quietly losing its test."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@cache
def _tests_in(file: str) -> frozenset[str]:
    tree = ast.parse((ROOT / file).read_text())
    return frozenset(node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))


def missing(references: list[str]) -> list[str]:
    """The references whose file or test function does not exist."""
    gone = []
    for reference in references:
        file, _, name = reference.partition("::")
        if not (ROOT / file).is_file() or name not in _tests_in(file):
            gone.append(reference)
    return gone
