"""The chaos run: six nodes on PostgreSQL under a mixed workload while nodes, workers and databases fail.

    python bench/chaos.py --duration 600 [--rate 25] [--seed 1] [--keep]

Kills and restarts node API processes (SIGKILL) and extra worker processes, terminates database connections
(`pg_terminate_backend`), and stops (crash or fast) and restarts the database of one node, which runs on a
throwaway PostgreSQL cluster of its own (`initdb`, `pg_ctl`). Then waits until the corridor is quiet and prints the
invariant table and what happened. Exit status 1 when an invariant fails. See tests/harness/chaos.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness.chaos import ChaosOptions, ChaosRun, print_report
from tests.harness.postgres import cluster_problem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of workload under faults")
    parser.add_argument("--rate", type=float, default=25.0, help="requests per second offered")
    parser.add_argument("--flows", type=int, default=20, help="trucks on the road at once, at most")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--solo", default="UZ", help="the node whose database is stopped and crashed")
    parser.add_argument("--keep", action="store_true", help="keep the folder (logs, clusters) afterwards")
    args = parser.parse_args()

    console = Console()
    problem = cluster_problem()
    if problem:
        console.print(f"[red]cannot run: {problem}")
        raise SystemExit(2)
    console.print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    options = ChaosOptions(
        duration=args.duration,
        rate=args.rate,
        max_flows=args.flows,
        seed=args.seed,
        solo=args.solo,
        keep_folder=args.keep,
    )
    run = ChaosRun(options, console=console)
    report = asyncio.run(run.run())
    print_report(report, console)
    raise SystemExit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
