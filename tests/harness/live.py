"""Six real nodes on private PostgreSQL clusters, for the chaos run and the load benchmark.

`LiveCorridor` starts its own clusters with `initdb`/`pg_ctl` (`postgres.PostgresCluster`): one for most nodes and,
when `solo` names a node, a second cluster holding only that node's database, so the run may stop and crash that
database without touching the others (nor anybody else's PostgreSQL on the machine). Each node is a
`transit-window serve` process; `workers` names nodes that get an extra `transit-window worker` process sharing the
node's database. Everything the corridor started is stopped and removed by `close()`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.harness.postgres import PostgresCluster, free_ports
from tests.harness.wire import NodeClient, WireError
from transit_window.corridor.local import LocalCorridor
from transit_window.corridor.processes import NodeProcess
from transit_window.corridor.topology import NodeSpec, plan

SIX = ["KZ", "KG", "UZ", "TJ", "TM", "AZ"]


@dataclasses.dataclass
class LiveCorridor:
    nodes: list[str] = dataclasses.field(default_factory=lambda: list(SIX))
    solo: str | None = None
    workers: tuple[str, ...] = ()
    extra_env: dict[str, str] = dataclasses.field(default_factory=dict)
    postgres_settings: dict[str, str] = dataclasses.field(default_factory=dict)
    folder: Path = dataclasses.field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tw-live-")))
    keep_folder: bool = False

    def __post_init__(self) -> None:
        self.clusters: dict[str, PostgresCluster] = {}  # node → the cluster holding its database
        self.local: LocalCorridor | None = None
        self.worker_processes: dict[str, NodeProcess] = {}
        self._started_clusters: list[PostgresCluster] = []

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)  # the clusters inside belong to user postgres when we are root
        main = PostgresCluster(self.folder / "pg-main", settings=self.postgres_settings)
        main.init()
        main.start()
        self._started_clusters.append(main)
        solo = None
        if self.solo is not None:
            solo = PostgresCluster(self.folder / f"pg-{self.solo.lower()}", settings=self.postgres_settings)
            solo.init()
            solo.start()
            self._started_clusters.append(solo)
        specs: list[NodeSpec] = []
        for spec in plan(self.nodes, base_port=free_ports(len(self.nodes)) - 1, folder=self.folder / "nodes"):
            cluster = solo if spec.id == self.solo and solo is not None else main
            self.clusters[spec.id] = cluster
            url = cluster.create_database(f"tw_{spec.id.lower()}")
            specs.append(dataclasses.replace(spec, database_url=url))
        self.local = LocalCorridor(specs=specs, folder=self.folder / "nodes", extra_env=self.extra_env)
        self.local.prepare()
        try:
            self.local.start(self.nodes)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"the corridor did not start: {exc}\n{self.logs()}") from exc
        for node in self.workers:
            self.start_worker(node)

    def close(self) -> None:
        for worker in self.worker_processes.values():
            worker.stop()
        if self.local is not None:
            self.local.stop()
        for cluster in reversed(self._started_clusters):
            cluster.stop(mode="fast")
        if not self.keep_folder:
            for cluster in self._started_clusters:
                cluster.destroy()
            shutil.rmtree(self.folder, ignore_errors=True)

    # -- access -------------------------------------------------------------------------------------------------

    @property
    def corridor(self) -> LocalCorridor:
        assert self.local is not None, "start() first"
        return self.local

    def spec(self, node: str) -> NodeSpec:
        return self.corridor.spec(node)

    def process(self, node: str) -> NodeProcess:
        return self.corridor.process(node)

    def database(self, node: str) -> str:
        return f"tw_{node.lower()}"

    def dsn(self, node: str) -> str:
        """asyncpg DSN of the node's database (for verification queries)."""
        return self.clusters[node].dsn(self.database(node))

    def start_worker(self, node: str) -> NodeProcess:
        process = self.worker_processes.get(node)
        if process is None:
            api = self.process(node)
            spec = dataclasses.replace(api.spec, folder=api.spec.folder / "worker")
            command = [sys.executable, "-m", "transit_window", "worker"]
            process = NodeProcess(spec=spec, env=dict(api.env), command=command)
            self.worker_processes[node] = process
        process.start()
        return process

    def logs(self, lines: int = 30) -> str:
        parts = []
        processes = [*self.corridor.processes.values(), *self.worker_processes.values()]
        for process in processes:
            path = process.spec.log_file
            tail = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
            parts.append(f"--- {path} ---\n" + "\n".join(tail))
        return "\n".join(parts)

    async def wait_ready(self, node: str, *, within: float = 60.0) -> float:
        """Poll `/readyz` of a (re)started node; returns the seconds it took."""
        process = self.process(node)
        client = NodeClient(self.spec(node).url, max_connections=1, timeout=5)
        started = time.monotonic()
        try:
            while time.monotonic() - started < within:
                if not process.alive:
                    raise RuntimeError(f"{node} exited; see {process.spec.log_file}")
                try:
                    if (await client.request("GET", "/readyz")).status == 200:
                        return time.monotonic() - started
                except WireError:
                    pass
                await asyncio.sleep(0.2)
        finally:
            await client.close()
        raise TimeoutError(f"{node} not ready after {within:.0f} s; see {process.spec.log_file}")

    def peak_rss_kib(self, node: str) -> int | None:
        """VmHWM (peak resident set) of the node's API process, from /proc; None when it is not running."""
        process = self.process(node).process
        if process is None or process.poll() is not None:
            return None
        try:
            with open(f"/proc/{process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None
