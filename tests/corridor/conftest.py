"""Corridors of real node processes on loopback, one PostgreSQL database per node.

`start_corridor(["KZ", "UZ"], extra_env={...})` prepares a `LocalCorridor` in tmp_path (keys, genesis, migrated
databases, demo clients), starts every node as its own `transit-window serve` process on free ports and returns a
`ProcessCorridor`: HTTP helpers that only talk to the nodes over the wire, read-only database queries for the
verification a test does afterwards, and `wait_until`, which shows the nodes' logs when a deadline passes.
`run=[]` starts none, for a test that composes a node of several processes itself (`add_worker`, `add_api`).
Teardown stops every process it started (API nodes, extra API and worker processes) and drops the databases.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from tests.harness.postgres import free_ports
from tests.support import databases
from transit_window.corridor.local import LocalCorridor
from transit_window.corridor.processes import NodeProcess
from transit_window.corridor.topology import plan
from transit_window.db.engine import create_engine
from transit_window.protocol.envelope import digest_of, verify_receipt
from transit_window.protocol.trust import TrustList

# Quick retries for the tests: the first backoff is up to 1 s, later ones up to 2 s (full jitter).
# Short backoffs; and small connection pools, because the two xdist workers may run two multi-process corridors at
# once on the one PostgreSQL (max_connections 100): the scale-out test's 12 processes beside the permits test's 200
# concurrent applications once ran it out of connections.
QUICK = {"TW_BACKOFF_CAP_SECONDS": "2", "TW_DB_POOL_SIZE": "5"}


LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def require_libfaketime(purpose: str) -> Path:
    """Debian's libfaketime (`make test` and .ci/run install it as root): skipped locally without it, a failure
    under CI, where `purpose` must run."""
    if LIBFAKETIME.exists():
        return LIBFAKETIME
    reason = f"{LIBFAKETIME} is missing (apt-get install faketime)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: under CI {purpose} must run (.ci/run installs it)")
    pytest.skip(reason)


def free_base_port(count: int) -> int:
    """A base such that base+1 .. base+count are free on loopback (plan() puts node i on base + i), below the
    kernel's ephemeral range: a node started late or restarted after a kill must find its port still free, and a
    port in that range may meanwhile be the local end of any outgoing connection (to PostgreSQL, to a peer)."""
    return free_ports(count) - 1


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no log at {path})"
    content = path.read_text(errors="replace").splitlines()
    return "\n".join(content[-lines:])


@dataclasses.dataclass
class ProcessCorridor:
    local: LocalCorridor
    http: httpx.Client
    workers: list[NodeProcess] = dataclasses.field(default_factory=list)
    apis: list[NodeProcess] = dataclasses.field(default_factory=list)  # API processes besides each node's first

    # --- processes ---------------------------------------------------------------------------------------------

    def process(self, node: str) -> NodeProcess:
        return self.local.process(node)

    def start_node(self, node: str) -> None:
        """Start (or restart after a kill) `node`'s API process and wait until it is ready."""
        process = self.process(node)
        process.start()
        try:
            process.wait_ready(timeout=60)
        except (RuntimeError, TimeoutError) as exc:
            raise AssertionError(f"{node} did not become ready: {exc}\n{self.logs()}") from exc

    def add_worker(self, node: str, name: str) -> NodeProcess:
        """A separate `transit-window worker` process of `node` (same settings and database), started now."""
        api = self.process(node)
        spec = dataclasses.replace(api.spec, folder=api.spec.folder / name)
        worker = NodeProcess(spec=spec, env=dict(api.env), command=[sys.executable, "-m", "transit_window", "worker"])
        worker.start()
        self.workers.append(worker)
        return worker

    def add_api(self, node: str, name: str) -> NodeProcess:
        """Another `transit-window serve` process of `node` (same settings and database) on a port of its own,
        started now. Peers reach the node at its trust-list endpoint, the first API process; this one serves the
        node's clients, as a second replica behind a load balancer would."""
        api = self.process(node)
        taken = {spec.port for spec in self.local.specs} | {process.spec.port for process in self.apis}
        port = free_ports(1)
        while port in taken:
            port = free_ports(1)
        spec = dataclasses.replace(api.spec, port=port, url=f"http://127.0.0.1:{port}", folder=api.spec.folder / name)
        process = NodeProcess(spec=spec, env={**api.env, "TW_PORT": str(port)})
        process.start()
        self.apis.append(process)
        return process

    def stop(self) -> None:
        """Every process at once: each takes a second or two to finish its loops, and a test may start a dozen."""
        processes = [*self.apis, *self.workers, *self.local.processes.values()]
        with ThreadPoolExecutor(max_workers=max(1, len(processes))) as pool:
            list(pool.map(NodeProcess.stop, processes))

    def logs(self) -> str:
        parts = []
        for process in [*self.local.processes.values(), *self.apis, *self.workers]:
            state = "running" if process.alive else f"exited {process.process.returncode if process.process else '-'}"
            parts.append(f"--- {process.spec.log_file} ({state}) ---\n{_tail(process.spec.log_file)}")
        return "\n".join(parts)

    # --- HTTP, as an operator would --------------------------------------------------------------------------

    def admin(self, node: str, method: str, path: str, **kwargs: Any) -> Any:
        spec = self.local.spec(node)
        headers = {"Authorization": f"Bearer {self.local.token(node, 'admin')}"}
        response = self.http.request(method, f"{spec.url}{path}", headers=headers, **kwargs)
        assert response.status_code < 400, f"{node} {method} {path}: {response.status_code} {response.text}"
        return response.json()

    def status(self, node: str) -> dict[str, Any]:
        result: dict[str, Any] = self.admin(node, "GET", "/v1/admin/status")
        return result

    def counter(self, node: str, name: str, **labels: str) -> float:
        """Sum of a Prometheus counter's `_total` samples on `node` whose labels include `labels`."""
        response = self.http.get(f"{self.local.spec(node).url}/metrics")
        assert response.status_code == 200, response.text
        total = 0.0
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name == f"{name}_total" and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    # --- reading a node's database (verification only) --------------------------------------------------------

    def query(self, node: str, sql: str, **params: Any) -> list[Any]:
        async def run() -> list[Any]:
            engine = create_engine(self.local.spec(node).database_url, pool_size=1)
            try:
                async with engine.connect() as connection:
                    return list((await connection.execute(text(sql), params)).all())
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def scalar(self, node: str, sql: str, **params: Any) -> Any:
        rows = self.query(node, sql, **params)
        return rows[0][0]

    def trust(self) -> TrustList:
        return TrustList.from_json(self.local.trust_file.read_bytes())

    def pending(self, sender: str, peer: str) -> int:
        return int(self.status(sender)["outbox"].get(peer, {}).get("pending", 0))

    def all_delivered(self, sender: str, peer: str, count: int) -> bool:
        """What the sender shows an operator: at least `count` delivered to `peer`, nothing pending, dead or refused."""
        states = self.status(sender)["outbox"].get(peer, {})
        return states.get("delivered", 0) >= count and not (set(states) - {"delivered"})

    def assert_delivered_once(self, sender: str, peer: str, *, count: int) -> None:
        """`sender`'s `count` pings to `peer` are delivered with a receipt that verifies, and were applied once.

        - the sender holds each as `delivered`/`accepted` with a receipt signed by `peer`'s key in the trust list for
          exactly this message id and envelope digest (verified again here, not only by the sender's worker);
        - the receipt the sender holds is the very one the receiver signed and stored;
        - the receiver holds exactly one inbox row per message and logged receiving it exactly once, and the sender
          logged exactly one receipt per message: re-deliveries were answered with the stored receipt, not re-applied.
        """
        trust = self.trust()
        sent = self.query(
            sender,
            "SELECT id, token, digest, state, receipt, receipt_status FROM outbox "
            "WHERE peer = :peer AND type = 'corridor.ping'",
            peer=peer,
        )
        assert len(sent) == count, f"{sender} queued {len(sent)} pings to {peer}, expected {count}"
        received = {
            row.id: row
            for row in self.query(
                peer,
                "SELECT id, digest, receipt, status FROM inbox WHERE iss = :sender AND type = 'corridor.ping'",
                sender=sender,
            )
        }
        assert len(received) == count, f"{peer} holds {len(received)} pings from {sender}, expected {count}"
        assert set(received) == {row.id for row in sent}
        for row in sent:
            assert (row.state, row.receipt_status) == ("delivered", "accepted"), (row.id, row.state, row.receipt_status)
            assert row.digest == digest_of(row.token)
            receipt = verify_receipt(row.receipt, trust=trust, expect_from=peer, message_id=row.id, digest=row.digest)
            assert (receipt.iss, receipt.status) == (peer, "accepted")
            mine = received[row.id]
            assert (mine.digest, mine.status) == (row.digest, "accepted")
            assert mine.receipt == row.receipt, f"{row.id}: the receipt {sender} holds is not the one {peer} stored"
        applied = self.query(
            peer,
            "SELECT msg_id, count(*) AS n FROM log_entries "
            "WHERE direction = 'received' AND kind = 'envelope' AND peer = :sender GROUP BY msg_id",
            sender=sender,
        )
        applied_counts = {row.msg_id: row.n for row in applied if row.msg_id in received}
        assert applied_counts == dict.fromkeys(received, 1), f"{peer} logged some pings from {sender} more than once"
        receipts = self.query(
            sender,
            "SELECT msg_id, count(*) AS n FROM log_entries "
            "WHERE direction = 'received' AND kind = 'receipt' AND peer = :peer GROUP BY msg_id",
            peer=peer,
        )
        receipt_counts = {row.msg_id: row.n for row in receipts if row.msg_id in received}
        assert receipt_counts == dict.fromkeys(received, 1), f"{sender} recorded some receipts from {peer} twice"

    # --- waiting -------------------------------------------------------------------------------------------------

    def wait_until(
        self, what: str, predicate: Callable[[], bool], *, timeout: float = 45.0, interval: float = 0.1
    ) -> float:
        """Poll `predicate` until true; returns the seconds it took. Fails with every node's log tail."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if predicate():
                return time.monotonic() - started
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting until {what}\n{self.logs()}")


StartCorridor = Callable[..., ProcessCorridor]


@pytest.fixture
def start_corridor(tmp_path: Path) -> Iterator[StartCorridor]:
    problem = databases.postgres_problem()
    if problem:
        pytest.skip(problem)
    started: list[ProcessCorridor] = []
    created: list[str] = []
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")

    def start(
        nodes: Sequence[str],
        *,
        extra_env: dict[str, str] | None = None,
        node_env: dict[str, dict[str, str]] | None = None,
        run: Sequence[str] | None = None,
    ) -> ProcessCorridor:
        """Prepare `nodes` (all genesis members) and start those in `run` (default: all) and wait until ready."""
        folder = tmp_path / "corridor"
        specs = plan(list(nodes), base_port=free_base_port(len(nodes)), folder=folder)
        with_databases = []
        for spec in specs:
            url = databases.create_postgres_database(f"proc_{worker}_{spec.id}")
            created.append(url)
            with_databases.append(dataclasses.replace(spec, database_url=url))
        local = LocalCorridor(specs=with_databases, folder=folder, extra_env={**QUICK, **(extra_env or {})})
        corridor = ProcessCorridor(local=local, http=httpx.Client(timeout=30.0))
        started.append(corridor)
        local.prepare()
        for node, env in (node_env or {}).items():
            local.process(node).env.update(env)
        chosen = list(run if run is not None else nodes)
        try:
            if chosen:
                local.start(chosen)
        except (RuntimeError, TimeoutError) as exc:
            raise AssertionError(f"the corridor did not start: {exc}\n{corridor.logs()}") from exc
        return corridor

    try:
        yield start
    finally:
        for corridor in started:
            corridor.http.close()  # first: no keep-alive connection holds up a node's graceful shutdown
            corridor.stop()
        for url in created:
            databases.drop_database(url)
