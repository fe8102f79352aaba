"""The chaos run, short: six node processes on PostgreSQL under a mixed workload for 45 s while node processes and
worker processes are SIGKILLed and restarted, database connections are terminated, and the database under UZ (on a
throwaway cluster of its own) is stopped — once as a crash — and restarted. Afterwards, once the corridor is quiet,
every invariant holds: each message applied exactly once, the same movement on every node of its route, no quota or
guarantee overdrawn, each webhook event delivered once, every audit passing, and no 5xx but 503s while a database
was down. `bench/chaos.py --duration 600` is the long version.
"""

from __future__ import annotations

import asyncio

import pytest
from rich.console import Console

from tests.harness.chaos import KINDS, ChaosOptions, ChaosRun, print_report
from tests.harness.postgres import cluster_problem

pytestmark = pytest.mark.corridor


def test_six_nodes_under_kills_and_database_faults_keep_every_invariant() -> None:
    problem = cluster_problem()
    if problem:
        pytest.skip(problem)
    console = Console(width=160)
    options = ChaosOptions(duration=45, drain=90, rate=25, seed=7)
    report = asyncio.run(ChaosRun(options, console=console).run())
    print_report(report, console)

    failed = [f"{check.name}: {check.detail}" for check in report.checks if not check.ok]
    assert not failed, "\n".join(failed)
    kinds = {window.kind for window in report.faults}
    assert kinds == set(KINDS), f"every kind of fault happened at least once: {sorted(kinds)}"
    assert report.counts["kills"] >= 1 and report.counts["db restarts"] >= 1 and report.counts["db terminations"] >= 1
    assert report.counts["movements"] >= 20 and report.outcomes["closed"] >= 20, report.outcomes
    assert report.counts["messages"] >= 500
