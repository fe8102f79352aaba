"""A throwaway PostgreSQL cluster (`initdb`, `pg_ctl`) that a chaos run owns and may stop, crash and restart.

The server under test must be one nobody else uses: stopping the machine's shared PostgreSQL would take other work
down with it. PostgreSQL refuses to run as root, so when we are root the cluster belongs to the `postgres` user
(`runuser`), in a folder handed to that user.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import random
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import asyncpg

StopMode = Literal["fast", "immediate"]


def postgres_bin() -> Path | None:
    """The newest `/usr/lib/postgresql/<version>/bin` holding initdb and pg_ctl, or the ones on PATH."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda path: int(path.split("/")[-2]) if path.split("/")[-2].isdigit() else 0,
    )
    for folder in reversed(candidates):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def cluster_problem() -> str | None:
    """Why a throwaway cluster cannot be started here, or None."""
    if postgres_bin() is None:
        return "initdb and pg_ctl were not found (/usr/lib/postgresql/*/bin or PATH)"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root without runuser: PostgreSQL cannot run as root"
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to own the cluster"
    return None


def free_ports(count: int = 1) -> int:
    """The first of `count` consecutive ports free on loopback, below the kernel's ephemeral range.

    A port the kernel hands out for outgoing connections may be taken by any client socket the moment a server
    stops listening on it; a node or database restarted by the chaos run must find its port still free."""
    low = 32768
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    chooser = random.Random()
    for _ in range(200):
        first = chooser.randrange(10000, max(10001, low - count - 1))
        if all(port_free(port) for port in range(first, first + count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports below {low}")


def port_free(port: int) -> bool:
    """Whether nothing listens on (or holds) `port` on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class PostgresCluster:
    """One cluster in `folder` listening on 127.0.0.1:`port`, trust authentication for user postgres."""

    folder: Path
    port: int = field(default_factory=free_ports)
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        folder = postgres_bin()
        assert folder is not None, cluster_problem()
        command = [str(folder / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-1000:]}")
        return done

    def init(self) -> None:
        """A new cluster in `folder`. As root, the folder's parents must be traversable by user postgres."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, user="postgres", group="postgres")
            self.folder.chmod(0o700)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = {
            "port": str(self.port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.folder),
            "max_connections": "300",
            **self.settings,
        }
        flags = " ".join(f"-c {name}={value}" for name, value in options.items())
        self._run("pg_ctl", "-D", str(self.data), "-o", flags, "-l", str(self.folder / "server.log"), "-w", "start")

    def stop(self, *, mode: StopMode = "fast") -> None:
        """`fast`: disconnect clients and shut down cleanly; `immediate`: quit at once, recovery at the next start
        (the power cut of a database server)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    @property
    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def destroy(self) -> None:
        if self.data.exists():
            self.stop(mode="immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def create_database(self, name: str) -> str:
        async def create() -> None:
            connection = await asyncpg.connect(self.dsn())
            try:
                await connection.execute(f'CREATE DATABASE "{name}"')
            finally:
                await connection.close()

        asyncio.run(create())
        return self.url(name)


async def terminate_connections(dsn: str, *, database: str) -> int:
    """`pg_terminate_backend` every session on `database` (the node's pool and workers lose their connections)."""
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        terminated = await connection.fetchval(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()) AS t",
            database,
        )
        return int(terminated or 0)
    finally:
        await connection.close()
