"""The load generator's side of the wire: a lean keep-alive HTTP/1.1 client pool per node, and a webhook receiver.

Both run in the process that drives a corridor (the chaos run, the load benchmark). On a two-core machine shared
with six nodes, the client's own CPU matters: httpx costs milliseconds per request, this costs a fraction of one, so
the figures measure the nodes and not the client. Neither retries anything: a transport failure is reported as
`WireError` and the caller decides, because only it knows whether a request is safe to repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from transit_window.webhooks import signing

IDLE_SECONDS = 3.0


class WireError(Exception):
    """The request got no HTTP answer: refused, reset, closed early or timed out. It may or may not have run."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


@dataclass(eq=False, slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    generation: int
    idle_since: float = 0.0

    def close(self) -> None:
        self.writer.close()


class NodeClient:
    """Up to `max_connections` keep-alive connections to one node. `reset()` forgets pooled connections (call it
    when the node was restarted: its old sockets are dead, and a request on one would fail for no fault of the node).
    """

    def __init__(self, base_url: str, *, max_connections: int = 64, timeout: float = 30.0) -> None:
        parsed = urlsplit(base_url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 80
        self.authority = parsed.netloc
        self.timeout = timeout
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(max_connections)
        self._generation = 0

    def reset(self) -> None:
        self._generation += 1
        while self._idle:
            self._idle.popleft().close()

    async def close(self) -> None:
        self.reset()

    async def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> Answer:
        async with self._slots:
            connection = self._take()
            try:
                async with asyncio.timeout(self.timeout):
                    if connection is None:
                        reader, writer = await asyncio.open_connection(self.host, self.port)
                        connection = _Connection(reader, writer, self._generation)
                    answer, keep = await self._exchange(connection, method, path, headers or {}, body)
            except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                if connection is not None:
                    connection.close()
                raise WireError(f"{type(exc).__name__}: {exc}") from exc
            if keep and connection.generation == self._generation:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            else:
                connection.close()
            return answer

    def _take(self) -> _Connection | None:
        """The most recently used live connection. One idle for longer than `IDLE_SECONDS` is dropped: uvicorn
        closes keep-alive connections after 5 s, and a request racing that close would fail for nothing."""
        oldest = time.monotonic() - IDLE_SECONDS
        while self._idle:
            connection = self._idle.pop()
            if (
                connection.generation == self._generation
                and connection.idle_since > oldest
                and not connection.writer.is_closing()
            ):
                return connection
            connection.close()
        return None

    async def _exchange(
        self, connection: _Connection, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[Answer, bool]:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.authority}"]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        connection.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        await connection.writer.drain()
        reader = connection.reader
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        answer_headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            answer_headers[name.strip().lower()] = value.strip()
        keep = answer_headers.get("connection", "").lower() != "close"
        if method == "HEAD" or status in (204, 304):
            content = b""
        elif "content-length" in answer_headers:
            content = await reader.readexactly(int(answer_headers["content-length"]))
        elif answer_headers.get("transfer-encoding", "").lower() == "chunked":
            content = await _read_chunked(reader)
        else:
            content = await reader.read()
            keep = False
        return Answer(status=status, headers=answer_headers, body=content), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append((await reader.readexactly(size + 2))[:-2])


# -- the webhook receiver ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Hook:
    """What arrived at one subscription's URL: every `webhook-id` and how often, and signatures that failed."""

    secret: str = ""
    received: Counter[str] = field(default_factory=Counter)
    bad_signatures: int = 0
    refused: int = 0  # answered with an error on purpose, to make the node retry


class WebhookReceiver:
    """A local HTTP server for Standard Webhooks: `/hooks/<name>` per subscription. It checks each signature with
    the subscription's secret, counts deliveries by `webhook-id`, and answers 204 — or, for a `fail_rate` share of
    requests, 503, so the node's retries are exercised too."""

    def __init__(self, *, fail_rate: float = 0.0, seed: int = 7) -> None:
        self.hooks: dict[str, Hook] = {}
        self.fail_rate = fail_rate
        self._random = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.last_at = 0.0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{name}"

    def expect(self, name: str, *, secret: str) -> Hook:
        hook = self.hooks.setdefault(name, Hook())
        hook.secret = secret
        return hook

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):  # idle keep-alive connections: their handlers end on EOF
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                request_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
                headers: dict[str, str] = {}
                for line in header_lines:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status = self._receive(request_line.split(" ")[1], headers, body)
                reason = "No Content" if status == 204 else "Service Unavailable"
                writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            return  # the loop is closing: nothing is waiting for this handler
        finally:
            self._writers.discard(writer)
            writer.close()

    def _receive(self, path: str, headers: dict[str, str], body: bytes) -> int:
        self.last_at = time.monotonic()
        name = path.rsplit("/", 1)[-1]
        hook = self.hooks.setdefault(name, Hook())
        if self.fail_rate and self._random.random() < self.fail_rate:
            hook.refused += 1
            return 503
        message_id = headers.get("webhook-id", "")
        if hook.secret and not _signed(hook.secret, headers, body):
            hook.bad_signatures += 1
        hook.received[message_id] += 1
        return 204


def _signed(secret: str, headers: dict[str, str], body: bytes) -> bool:
    try:
        timestamp = int(headers.get("webhook-timestamp", ""))
    except ValueError:
        return False
    expected = signing.sign(secret, msg_id=headers.get("webhook-id", ""), timestamp=timestamp, body=body.decode())
    return expected in headers.get("webhook-signature", "").split(" ")
