"""Shared helpers of the benchmarks: PostgreSQL databases, free ports, percentiles, printing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
from collections.abc import Sequence
from urllib.parse import urlsplit

import asyncpg
from sqlalchemy.engine import make_url

ADMIN_URL = os.environ.get("TW_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def fresh_database(name: str) -> str:
    async def create() -> None:
        connection = await asyncpg.connect(_dsn(ADMIN_URL))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    asyncio.run(create())
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(name: str) -> None:
    async def drop() -> None:
        connection = await asyncpg.connect(_dsn(ADMIN_URL))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    asyncio.run(drop())


def free_port_base(count: int) -> int:
    """A base port such that base+1 .. base+count are free right now."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count >= 65000:
            continue
        ok = True
        for offset in range(1, count + 1):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", base + offset))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range")


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def describe(values: Sequence[float]) -> str:
    return (
        f"p50 {percentile(values, 0.5) * 1000:.0f} ms, p99 {percentile(values, 0.99) * 1000:.0f} ms, "
        f"mean {statistics.fmean(values) * 1000:.0f} ms"
    )


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux /proc); 0.0 when it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15 of proc(5))


def process_tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and all its live descendants (uvicorn with several workers forks them)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += cpu_seconds(current)
        todo.extend(children.get(current, []))
    return total


def postgres_backends(database: str) -> list[int]:
    """Pids of the PostgreSQL backends connected to `database` (their titles name it; Linux only)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                title = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            pids.append(int(entry))
    return pids


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, summed over cores (Linux /proc/stat)."""
    with open("/proc/stat") as stat:
        values = [int(value) for value in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / _TICKS, total / _TICKS


class KeepAliveClient:
    """One keep-alive HTTP/1.1 connection that posts bytes and reads the answer: a load generator's client.

    httpx costs 2 to 7 ms of CPU per request on these machines (its shared pool at 32 concurrent requests, a
    failed `import sniffio` per call), more than the server's own work, so on two cores it would measure itself.
    This costs ≈ 0.1 ms. Answers must carry Content-Length or be chunked; `Connection: close` reconnects."""

    def __init__(self, url: str) -> None:
        parsed = urlsplit(url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 80
        self.authority = parsed.netloc
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.authority}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        answer = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            answer[name.strip().lower()] = value.strip()
        if "content-length" in answer:
            content = await self._reader.readexactly(int(answer["content-length"]))
        elif answer.get("transfer-encoding", "").lower() == "chunked":
            content = await self._read_chunked()
        else:
            content = await self._reader.read()
            answer["connection"] = "close"
        if answer.get("connection", "").lower() == "close":
            await self.close()
        return status, content

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")  # the empty line after the last chunk (no trailers)
                return b"".join(parts)
            parts.append((await self._reader.readexactly(size + 2))[:-2])

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None


def database_sessions(name: str) -> int:
    """Sessions ever opened on database `name` (pg_stat_database.sessions, PostgreSQL 14+): how many
    connections a phase opened, i.e. whether a pool churns."""

    async def read() -> int:
        connection = await asyncpg.connect(_dsn(ADMIN_URL))
        try:
            return int(await connection.fetchval("SELECT sessions FROM pg_stat_database WHERE datname = $1", name) or 0)
        finally:
            await connection.close()

    return asyncio.run(read())
