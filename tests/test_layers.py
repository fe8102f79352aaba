"""No two packages of `transit_window` import each other (issue 15), counting imports made only for type checking.

import-linter's contracts (run by `make lint`) hold the layers and the features' seams; this holds what they cannot
say in one line: the graph of top-level packages and modules has no two-way edge anywhere, so a new one is caught even
between two packages no contract names.
"""

from __future__ import annotations

from collections import defaultdict

import grimp


def test_no_two_packages_import_each_other() -> None:
    graph = grimp.build_graph("transit_window")
    edges: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            source, target = module.split(".")[1:2], imported.split(".")[1:2]
            if source and target and source != target:
                edges[(source[0], target[0])].append(f"{module} -> {imported}")
    both_ways = {f"{a} <-> {b}": edges[(a, b)] + edges[(b, a)] for (a, b) in sorted(edges) if a < b and (b, a) in edges}
    assert both_ways == {}
