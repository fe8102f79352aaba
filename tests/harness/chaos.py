"""The chaos run: six real nodes on PostgreSQL under a mixed workload while processes are killed, database
connections cut and one node's database stopped and crashed; then, once the corridor is quiet, the invariants.

    report = asyncio.run(ChaosRun(ChaosOptions(duration=600)).run())

Faults, one at a time at random intervals (the first four are one of each kind, so even a short run has them all):
- `kill-node`: SIGKILL a node's API process (its in-process worker dies with it), restart it after a pause;
- `kill-worker`: SIGKILL an extra `transit-window worker` process, restart it;
- `db-terminate`: `pg_terminate_backend` every session on a node's database;
- `db-restart`: stop the database under the `solo` node (`pg_ctl -m immediate`, a crash, or `-m fast`), start it
  again after a pause. It is the only database on its own throwaway cluster.
The workload is `workload.Workload`; the checks are `invariants`; the nodes are `live.LiveCorridor`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tests.harness import invariants
from tests.harness.invariants import Check, Window
from tests.harness.live import SIX, LiveCorridor
from tests.harness.postgres import terminate_connections
from tests.harness.wire import WebhookReceiver, WireError
from tests.harness.workload import Corridor, NodeAccess, Recorder, Settings, Workload

CHAOS_ENV = {
    "TW_BACKOFF_CAP_SECONDS": "2",  # a peer back from the dead is retried within seconds
    "TW_DELIVERY_LEASE_SECONDS": "15",  # a killed worker's claims are taken over soon
    "TW_GAP_PULL_SECONDS": "2",
    "TW_DB_POOL_SIZE": "8",
    "TW_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",  # the receiver is on loopback
    "TW_WEBHOOK_BACKOFF_BASE_SECONDS": "0.5",
    "TW_WEBHOOK_BACKOFF_CAP_SECONDS": "4",
    "TW_WEBHOOK_LEASE_SECONDS": "15",
    "TW_PERMIT_MAX_SPEED_KMH": "1e12",  # trucks here cross a country in a second: no impossible-travel alerts
}
KINDS = ("kill-node", "kill-worker", "db-terminate", "db-restart")


@dataclass
class ChaosOptions:
    duration: float = 75.0
    drain: float = 60.0
    rate: float = 25.0  # requests per second offered
    max_flows: int = 20
    fault_interval: tuple[float, float] = (2.0, 5.0)
    solo: str = "UZ"  # the node whose database is stopped and crashed
    workers: tuple[str, ...] = ("KZ", "UZ")  # nodes with an extra worker process
    weights: dict[str, int] = field(
        default_factory=lambda: {"kill-node": 4, "kill-worker": 2, "db-terminate": 3, "db-restart": 2}
    )
    seed: int = 1
    quiet_timeout: float = 240.0
    folder: Path | None = None
    keep_folder: bool = False


@dataclass
class ChaosReport:
    checks: list[Check]
    counts: dict[str, int]
    outcomes: Counter[str]
    faults: list[Window]
    seconds: dict[str, float]
    unexpected: list[str]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


class FaultInjector:
    def __init__(self, live: LiveCorridor, corridor: Corridor, *, options: ChaosOptions, console: Console) -> None:
        self.live = live
        self.corridor = corridor
        self.options = options
        self.console = console
        self.random = random.Random(options.seed + 1000)
        self.windows: list[Window] = []
        self.counts: Counter[str] = Counter()

    async def run(self, stop: asyncio.Event) -> None:
        first = list(KINDS)
        self.random.shuffle(first)
        while not stop.is_set():
            low, high = self.options.fault_interval
            try:
                await asyncio.wait_for(stop.wait(), self.random.uniform(low, high))
                return
            except TimeoutError:
                pass
            kind = first.pop() if first else self._choose()
            started = time.monotonic()
            node = await self._inject(kind)
            self.windows.append(Window(kind, node, started, time.monotonic()))

    def _choose(self) -> str:
        kinds = [kind for kind in KINDS if kind != "kill-worker" or self.options.workers]
        return self.random.choices(kinds, weights=[self.options.weights.get(kind, 1) for kind in kinds])[0]

    async def _inject(self, kind: str) -> str:
        if kind == "kill-node":
            node = self.random.choice(SIX)
            process = self.live.process(node)
            process.kill()
            self.counts["kills"] += 1
            await asyncio.sleep(self.random.uniform(0.5, 4.0))
            process.start()
            self.corridor.reset(node)
            await self.live.wait_ready(node)
            self.counts["restarts"] += 1
            self._say(f"killed and restarted {node}")
            return node
        if kind == "kill-worker" and self.options.workers:
            node = self.random.choice(self.options.workers)
            worker = self.live.worker_processes[node]
            worker.kill()
            self.counts["worker kills"] += 1
            await asyncio.sleep(self.random.uniform(0.5, 3.0))
            self.live.start_worker(node)
            self.counts["restarts"] += 1
            self._say(f"killed and restarted {node}'s extra worker")
            return node
        if kind == "db-terminate":
            node = self.random.choice(SIX)
            cluster = self.live.clusters[node]
            cut = await terminate_connections(cluster.dsn(), database=self.live.database(node))
            self.counts["db terminations"] += 1
            self.counts["connections terminated"] += cut
            self._say(f"terminated {cut} connections to {node}'s database")
            return node
        node = self.options.solo
        cluster = self.live.clusters[node]
        mode: Any = self.random.choice(["immediate", "fast"])
        await asyncio.to_thread(cluster.stop, mode=mode)
        await asyncio.sleep(self.random.uniform(2.0, 8.0))
        await asyncio.to_thread(cluster.start)
        self.counts["db restarts"] += 1
        self.counts[f"db restarts ({mode})"] += 1
        await self.live.wait_ready(node)
        self._say(f"stopped ({mode}) and restarted {node}'s database")
        return node

    def _say(self, text: str) -> None:
        self.console.log(text)


class ChaosRun:
    def __init__(self, options: ChaosOptions, *, console: Console | None = None) -> None:
        self.options = options
        self.console = console or Console()
        kwargs: dict[str, Any] = {}
        if options.folder is not None:
            kwargs["folder"] = options.folder
        self.live = LiveCorridor(
            solo=options.solo,
            workers=options.workers,
            extra_env=CHAOS_ENV,
            keep_folder=options.keep_folder,
            **kwargs,
        )

    async def run(self) -> ChaosReport:
        seconds: dict[str, float] = {}
        started = time.monotonic()
        try:
            await asyncio.to_thread(self.live.start)
            seconds["start"] = time.monotonic() - started
            report = await self._run(seconds)
            if not report.ok:
                self.live.keep_folder = True  # the nodes' logs and databases, to find out why
            return report
        except BaseException:
            self.live.keep_folder = True
            raise
        finally:
            await asyncio.to_thread(self.live.close)
            if self.live.keep_folder:
                self.console.print(f"logs and databases kept in {self.live.folder}")

    async def _run(self, seconds: dict[str, float]) -> ChaosReport:
        options = self.options
        recorder = Recorder()
        access = {
            node: NodeAccess(
                self.live.spec(node).url, self.live.corridor.tokens[node], self.live.corridor.client_ids[node]
            )
            for node in self.live.nodes
        }
        corridor = Corridor(access, recorder=recorder, timeout=30.0)
        receiver = WebhookReceiver(fail_rate=0.02, seed=options.seed)
        await receiver.start()
        settings = Settings(rate=options.rate, max_flows=options.max_flows, seed=options.seed)
        workload = Workload(corridor, settings=settings, receiver=receiver)
        injector = FaultInjector(self.live, corridor, options=options, console=self.console)
        try:
            await workload.prepare(settle=lambda: self._quiet(corridor, within=60))
            self.console.log(
                f"six nodes up; chaos for {options.duration:.0f} s at {options.rate:.0f} requests/s "
                f"({options.solo}'s database on its own cluster; extra workers on {', '.join(options.workers)})"
            )
            stop = asyncio.Event()
            faults = asyncio.create_task(injector.run(stop))
            began = time.monotonic()
            work = asyncio.create_task(workload.run(duration=options.duration, drain=options.drain))
            await asyncio.sleep(options.duration)
            stop.set()
            await faults  # the last fault finishes: its node or database is back
            await self._all_up()
            await work
            seconds["workload"] = time.monotonic() - began
            self.console.log(f"workload done ({dict(recorder.outcomes)}); waiting for the corridor to go quiet")
            quiet = time.monotonic()
            await self._quiet(corridor, within=options.quiet_timeout, webhooks=True)
            await self._checkpoints(corridor)
            seconds["quiet"] = time.monotonic() - quiet
            checks, found = await self._check(corridor, workload, receiver, injector)
        finally:
            await receiver.stop()
            await corridor.close()
        counts = dict(injector.counts)
        counts.update(
            {
                "requests": len(recorder.calls),
                "flows": workload.started_flows,
                "webhook deliveries": sum(sum(hook.received.values()) for hook in receiver.hooks.values()),
            }
        )
        counts.update(found)
        return ChaosReport(
            checks=checks,
            counts=counts,
            outcomes=recorder.outcomes,
            faults=injector.windows,
            seconds=seconds,
            unexpected=list(recorder.unexpected),
        )

    async def _all_up(self) -> None:
        """After the faults: every process runs and the solo database is up (a fault never leaves one down)."""
        cluster = self.live.clusters[self.options.solo]
        if not await asyncio.to_thread(lambda: cluster.running):
            await asyncio.to_thread(cluster.start)
        for node in self.live.nodes:
            if not self.live.process(node).alive:
                self.live.process(node).start()
            await self.live.wait_ready(node)
        for node, worker in self.live.worker_processes.items():
            if not worker.alive:
                self.live.start_worker(node)

    async def _status(self, corridor: Corridor, node: str) -> dict[str, Any] | None:
        try:
            answer = await corridor.call("status", node, "admin", "GET", "/v1/admin/status", record=False)
        except WireError:
            return None
        result: dict[str, Any] | None = answer.json() if answer.status == 200 else None
        return result

    async def _quiet(self, corridor: Corridor, *, within: float, webhooks: bool = False) -> None:
        """Until no node has a message waiting to be sent, no gap in what it received, and (with `webhooks`) no
        webhook delivery waiting."""
        deadline = time.monotonic() + within
        last = ""
        while time.monotonic() < deadline:
            busy = []
            for node in self.live.nodes:
                status = await self._status(corridor, node)
                if status is None:
                    busy.append(f"{node} unreachable")
                    continue
                pending = sum(states.get("pending", 0) for states in status["outbox"].values())
                gaps = [peer for peer, seq in status["inbound"].items() if seq["contiguous"] != seq["max_seen"]]
                if pending or gaps:
                    busy.append(f"{node} pending {pending}, gaps from {gaps}")
            if webhooks and not busy:
                for node in self.live.nodes:
                    rows = await _fetch(
                        self.live.dsn(node), "SELECT count(*) AS n FROM webhook_deliveries WHERE state = 'pending'"
                    )
                    if rows[0]["n"]:
                        busy.append(f"{node} webhooks pending {rows[0]['n']}")
            if not busy:
                return
            last = "; ".join(busy)
            await asyncio.sleep(0.5)
        self.console.log(f"[red]not quiet after {within:.0f} s: {last}")

    async def _checkpoints(self, corridor: Corridor) -> None:
        for node in self.live.nodes:
            await corridor.ok(node, "admin", "POST", "/v1/admin/checkpoints")
        await self._quiet(corridor, within=60)

    async def _check(
        self, corridor: Corridor, workload: Workload, receiver: WebhookReceiver, injector: FaultInjector
    ) -> tuple[list[Check], dict[str, int]]:
        dsns = {node: self.live.dsn(node) for node in self.live.nodes}
        checks: list[Check] = []
        message_checks, message_counts = await invariants.messages(dsns)
        checks += message_checks
        movement_checks, movement_counts = await invariants.movements(dsns)
        checks += movement_checks
        checks += await invariants.guarantees(dsns)
        checks += await invariants.quotas(dsns)
        checks += await invariants.webhooks(dsns, workload.subscriptions, receiver.hooks)
        checks += await self._audit(corridor)
        checks += invariants.http(workload.recorder.calls, injector.windows)
        outcomes = workload.recorder.outcomes
        bad = outcomes["abandoned"] + outcomes["stuck"]
        checks.append(
            Check(
                "every flow ended as the corridor answered it (no unexpected answer, nothing stuck)",
                bad == 0 and not workload.recorder.unexpected,
                ", ".join(f"{name} {count}" for name, count in outcomes.most_common())
                + (f" (cut while: {dict(workload.recorder.cut_during)})" if workload.recorder.cut_during else "")
                + (f"; unexpected: {workload.recorder.unexpected[:3]}" if workload.recorder.unexpected else ""),
            )
        )
        return checks, {**message_counts, **movement_counts}

    async def _audit(self, corridor: Corridor) -> list[Check]:
        problems = []
        witnessed = 0
        for node in self.live.nodes:
            report = await corridor.ok(node, "admin", "GET", "/v1/admin/audit")
            witnessed += sum(int(count) for count in report["witnessed"].values())
            if not report["ok"] or report["unreachable"]:
                problems.append(f"{node}: {report['problems'][:2]} unreachable {report['unreachable']}")
        return [
            Check(
                "audit verify passes on every node; peers' checkpoints agree",
                not problems,
                f"{len(self.live.nodes)} logs verified, {witnessed} checkpoints witnessed by peers"
                + (f"; {problems[:3]}" if problems else ""),
            )
        ]


async def _fetch(dsn: str, sql: str) -> list[Any]:
    import asyncpg

    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        return list(await connection.fetch(sql))
    finally:
        await connection.close()


def print_report(report: ChaosReport, console: Console) -> None:
    table = Table("invariant", "", "detail", title="Chaos run: invariants", show_lines=True)
    for check in report.checks:
        verdict = "[green]ok[/green]" if check.ok else "[bold red]FAILED[/bold red]"
        table.add_row(check.name, verdict, check.detail)
    console.print(table)
    counts = Table("count", "value", title="What happened")
    order = [
        "kills",
        "worker kills",
        "restarts",
        "db terminations",
        "connections terminated",
        "db restarts",
        "db restarts (immediate)",
        "db restarts (fast)",
        "messages",
        "movements",
        "closed",
        "flows",
        "requests",
        "webhook deliveries",
    ]
    for key in order:
        if key in report.counts:
            counts.add_row(key, f"{report.counts[key]:,}")
    for key, value in report.seconds.items():
        counts.add_row(f"seconds: {key}", f"{value:.0f}")
    console.print(counts)
    if report.unexpected:
        console.print("Unexpected answers (first few):")
        for line in report.unexpected[:10]:
            console.print(f"  {line}")
