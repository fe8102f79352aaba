"""The mixed corridor workload at a fixed arrival rate against six nodes on PostgreSQL, no faults.

    python bench/load.py --rate 200 --duration 60          # one rate: throughput, p50/p95/p99 per operation
    python bench/load.py --search --rate 60 --duration 30  # the largest rate whose p99 stays under 500 ms

The workload is tests/harness/workload.py: trucks on seven routes (certificates, one permit application
per trip, declaration, release with the guarantee, exit/entry at every border with the permit's ENTRY/EXIT, arrival,
control results, write-off), e-seal position batches, reads (timelines, guarantees, permits, expected movements),
and a customs webhook subscription per node delivering every event to a local receiver. Requests are offered open
loop at `--rate` per second; the first `--warmup` seconds of each run are not measured.

Printed against a floor measured in the same run: the rate at which the six nodes answer the cheapest
authenticated request (GET a guarantee), closed loop. Peak memory per node is VmHWM of each node's process. A single
rate also prints what one operation costs the corridor: database statements and commits (`pg_stat_statements`,
loaded in the run's own cluster), signed messages, log entries and webhook deliveries, summed over the six nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import cpu_seconds, machine_busy_seconds
from tests.harness.live import LiveCorridor
from tests.harness.postgres import cluster_problem, postgres_bin
from tests.harness.wire import WebhookReceiver, WireError
from tests.harness.workload import Corridor, NodeAccess, OpStats, Recorder, Settings, Workload, summarize

LOAD_ENV = {
    "TW_LOG_LEVEL": "WARNING",
    "TW_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    "TW_PERMIT_MAX_SPEED_KMH": "1e12",
    "TW_DB_POOL_SIZE": "10",
}
P99_GOAL = 0.5
STATEMENT_COUNTS = {"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track": "all"}


def statement_counting() -> dict[str, str]:
    """Load pg_stat_statements in the run's cluster when this PostgreSQL ships it (postgresql-contrib)."""
    binaries = postgres_bin()
    if binaries is None:
        return {}
    version = binaries.parent.name  # /usr/lib/postgresql/<version>/bin
    shipped = Path(f"/usr/share/postgresql/{version}/extension/pg_stat_statements.control").exists()
    return STATEMENT_COUNTS if shipped else {}


console = Console()

# What one operation costs the corridor, summed over the six databases (the tables are the nodes' own).
COSTS = {
    "signed messages sent": "SELECT count(*) FROM outbox",
    "log entries": "SELECT count(*) FROM log_entries",
    "webhook deliveries": "SELECT count(*) FROM webhook_deliveries",
    "commits": "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    "statements": "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
}


async def statement_calls(live: LiveCorridor) -> Counter[str]:
    """Calls of every statement text (pg_stat_statements' normalised query), summed over the six databases."""
    calls: Counter[str] = Counter()
    for node in live.nodes:
        connection = await asyncpg.connect(live.dsn(node))
        try:
            with contextlib.suppress(asyncpg.UndefinedTableError, asyncpg.ObjectNotInPrerequisiteStateError):
                rows = await connection.fetch(
                    "SELECT query, calls FROM pg_stat_statements "
                    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
                for row in rows:
                    calls[" ".join(str(row["query"]).split())[:150]] += int(row["calls"])
        finally:
            await connection.close()
    return calls


async def costs(live: LiveCorridor) -> dict[str, int]:
    totals = dict.fromkeys(COSTS, 0)
    for node in live.nodes:
        connection = await asyncpg.connect(live.dsn(node))
        try:
            with contextlib.suppress(asyncpg.PostgresError):  # without the library the count stays 0
                await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            for what, query in COSTS.items():
                with contextlib.suppress(asyncpg.UndefinedTableError, asyncpg.ObjectNotInPrerequisiteStateError):
                    totals[what] += int(await connection.fetchval(query) or 0)
        finally:
            await connection.close()
    return totals


@dataclass
class Step:
    rate: float
    seconds: float
    stats: dict[str, OpStats]
    machine_busy: float  # fraction of both cores
    generator_cpu: float  # fraction of one core used by this process
    node_cpu: float  # cores used by the six node processes together
    errors: Counter[str]  # what went wrong, by operation and status or transport error

    @property
    def achieved(self) -> float:
        return self.stats["all"].count / self.seconds if "all" in self.stats else 0.0

    @property
    def error_rate(self) -> float:
        total = self.stats.get("all")
        return total.errors / total.count if total and total.count else 1.0

    @property
    def ok(self) -> bool:
        total = self.stats.get("all")
        return (
            total is not None
            and total.p99 < P99_GOAL
            and self.error_rate <= 0.001
            and self.achieved >= 0.95 * self.rate
        )


async def floor(corridor: Corridor, workload: Workload, *, seconds: float = 5.0, per_node: int = 6) -> float:
    """Closed loop, `per_node` clients per node: GET one of the node's guarantees, the cheapest authenticated read."""
    count = 0
    deadline = time.monotonic() + seconds

    async def client(node: str, grn: str) -> None:
        nonlocal count
        while time.monotonic() < deadline:
            try:
                answer = await corridor.call("floor", node, "customs", "GET", f"/v1/guarantees/{grn}", record=False)
            except WireError:
                continue
            if answer.status == 200:
                count += 1

    started = time.monotonic()
    await asyncio.gather(
        *(client(node, grns[0]) for node, grns in workload.guarantees.items() for _ in range(per_node))
    )
    return count / (time.monotonic() - started)


async def measure(
    corridor: Corridor, workload: Workload, live: LiveCorridor, *, rate: float, seconds: float, warmup: float
) -> Step:
    corridor.recorder = Recorder()
    workload.settings.rate = rate
    pids = [process.process.pid for process in live.corridor.processes.values() if process.process is not None]
    busy0, total0 = machine_busy_seconds()
    me0 = resource.getrusage(resource.RUSAGE_SELF)
    nodes0 = sum(cpu_seconds(pid) for pid in pids)
    started = time.monotonic()
    await workload.run(duration=warmup + seconds, drain=5.0)
    busy1, total1 = machine_busy_seconds()
    me1 = resource.getrusage(resource.RUSAGE_SELF)
    nodes1 = sum(cpu_seconds(pid) for pid in pids)
    elapsed = time.monotonic() - started
    stats = summarize(corridor.recorder.calls, since=started + warmup, until=started + warmup + seconds)
    generator = (me1.ru_utime + me1.ru_stime - me0.ru_utime - me0.ru_stime) / elapsed
    errors: Counter[str] = Counter()
    for call in corridor.recorder.calls:
        if started + warmup <= call.started and (call.status is None or call.status >= 500 or not call.expected):
            errors[f"{call.op} {call.status or (call.error or '').split(':')[0]}"] += 1
    busy = (busy1 - busy0) / max(total1 - total0, 1e-9)
    return Step(rate, seconds, stats, busy, generator, (nodes1 - nodes0) / elapsed, errors)


def show(step: Step, *, title: str) -> None:
    table = Table("operation", "count", "per s", "p50 ms", "p95 ms", "p99 ms", "errors", title=title)
    ordered = sorted((stats for op, stats in step.stats.items() if op != "all"), key=lambda s: -s.count)
    for stats in [*ordered, step.stats["all"]]:
        table.add_row(
            stats.op,
            f"{stats.count:,}",
            f"{stats.count / step.seconds:.1f}",
            f"{stats.p50 * 1000:.0f}",
            f"{stats.p95 * 1000:.0f}",
            f"{stats.p99 * 1000:.0f}",
            str(stats.errors),
        )
    console.print(table)
    if step.errors:
        shown = ", ".join(f"{what} x{count}" for what, count in step.errors.most_common(5))
        console.print(f"errors: {shown}")
    console.print(
        f"offered {step.rate:.0f}/s, achieved {step.achieved:.1f} operations/s; machine busy {step.machine_busy:.0%} "
        f"of 2 cores; load generator {step.generator_cpu:.0%} of one core; the six nodes {step.node_cpu:.2f} cores, "
        f"{step.node_cpu / max(step.achieved, 1e-9) * 1000:.0f} ms of node CPU per operation"
    )


async def run(args: argparse.Namespace, live: LiveCorridor) -> None:
    access = {
        node: NodeAccess(live.spec(node).url, live.corridor.tokens[node], live.corridor.client_ids[node])
        for node in live.nodes
    }
    corridor = Corridor(access, recorder=Recorder(), max_connections=256, timeout=60.0)
    receiver = WebhookReceiver()
    await receiver.start()
    settings = Settings(
        rate=args.rate,
        max_flows=args.flows,
        side_share=args.side_share,
        movements_per_guarantee=1_000_000,
        scarce_quota=None,
        quota=10_000_000,
    )
    workload = Workload(corridor, settings=settings, receiver=receiver)
    try:
        await workload.prepare(settle=lambda: asyncio.sleep(3))
        floor_rate = await floor(corridor, workload)
        console.print(
            f"floor: the six nodes answer {floor_rate:,.0f} GET /v1/guarantees/{{grn}} per second (closed loop)"
        )
        if not args.search:
            before = await costs(live)
            calls_before = await statement_calls(live) if args.top else Counter()
            step = await measure(corridor, workload, live, rate=args.rate, seconds=args.duration, warmup=args.warmup)
            after = await costs(live)
            calls_after = await statement_calls(live) if args.top else Counter()
            show(step, title=f"mixed workload at {args.rate:.0f} requests/s for {args.duration:.0f} s")
            operations = max(len(corridor.recorder.calls), 1)  # warm-up and drain included, like the counts
            console.print(
                "per operation, across the corridor: "
                + ", ".join(f"{(after[what] - before[what]) / operations:.1f} {what}" for what in COSTS)
            )
            if args.top:
                table = Table(title=f"the {args.top} statements sent most, per operation, across the corridor")
                table.add_column("per op", justify="right")
                table.add_column("statement")
                for query, count in (calls_after - calls_before).most_common(args.top):
                    table.add_row(f"{count / operations:.2f}", query)
                console.print(table)
            console.print(
                f"throughput {step.achieved:.0f} operations/s = {step.achieved / floor_rate:.0%} of the floor; "
                f"p99 {step.stats['all'].p99 * 1000:.0f} ms (goal < {P99_GOAL * 1000:.0f} ms); "
                f"errors {step.stats['all'].errors}; webhook deliveries received "
                f"{sum(sum(hook.received.values()) for hook in receiver.hooks.values()):,}"
            )
        else:
            await search(corridor, workload, live, args, floor_rate)
        memory = Table("node", "peak RSS (VmHWM)", title="memory per node process")
        for node in live.nodes:
            kib = live.peak_rss_kib(node)
            memory.add_row(node, f"{kib / 1024:.0f} MiB" if kib else "-")
        console.print(memory)
    finally:
        await receiver.stop()
        await corridor.close()


async def search(
    corridor: Corridor, workload: Workload, live: LiveCorridor, args: argparse.Namespace, floor_rate: float
) -> None:
    rate = args.rate
    passed: Step | None = None
    failed: Step | None = None
    steps: list[Step] = []
    for _ in range(args.steps):
        step = await measure(corridor, workload, live, rate=rate, seconds=args.duration, warmup=args.warmup)
        steps.append(step)
        total = step.stats["all"]
        verdict = "[green]holds[/green]" if step.ok else "[red]does not hold[/red]"
        console.print(
            f"  {rate:6.0f}/s offered: achieved {step.achieved:6.1f}/s, p50 {total.p50 * 1000:4.0f} ms, p99 "
            f"{total.p99 * 1000:5.0f} ms, errors {total.errors}, machine busy {step.machine_busy:.0%}, nodes "
            f"{step.node_cpu:.2f} cores → {verdict}"
        )
        if step.ok:
            passed = step if passed is None or step.rate > passed.rate else passed
        else:
            failed = step if failed is None or step.rate < failed.rate else failed
        if passed is not None and failed is not None:
            if failed.rate / passed.rate < 1.08:
                break
            rate = (passed.rate + failed.rate) / 2
        elif passed is not None:
            rate = passed.rate * 1.3
        else:
            assert failed is not None
            rate = failed.rate / 1.3
    if passed is None:
        console.print(f"[red]no rate tried kept p99 under {P99_GOAL * 1000:.0f} ms")
        return
    show(passed, title=f"the largest rate with p99 < {P99_GOAL * 1000:.0f} ms: {passed.rate:.0f} requests/s offered")
    console.print(
        f"sustained: {passed.achieved:.0f} mixed operations/s with p99 {passed.stats['all'].p99 * 1000:.0f} ms "
        f"({passed.achieved / floor_rate:.0%} of the floor); goal ≥ 200/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second offered (search: first rate)")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds per rate")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring, per rate")
    parser.add_argument("--flows", type=int, default=600, help="trucks on the road at once, at most")
    parser.add_argument(
        "--side-share",
        type=float,
        default=0.2,
        help="share of requests that are e-seal batches and reads rather than truck steps (default 0.2)",
    )
    parser.add_argument("--search", action="store_true", help="find the largest rate with p99 < 500 ms")
    parser.add_argument("--top", type=int, default=0, help="one rate: print the N statements sent most per operation")
    parser.add_argument("--steps", type=int, default=8, help="rates tried by --search, at most")
    args = parser.parse_args()

    problem = cluster_problem()
    if problem:
        console.print(f"[red]cannot run: {problem}")
        raise SystemExit(2)
    console.print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}; six nodes (one process each) on one PostgreSQL cluster, "
        "the load generator and the webhook receiver on the same cores"
    )
    live = LiveCorridor(extra_env=LOAD_ENV, postgres_settings=statement_counting())
    try:
        live.start()
        asyncio.run(run(args, live))
    finally:
        live.close()


if __name__ == "__main__":
    main()
