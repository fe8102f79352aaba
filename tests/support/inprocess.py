"""Several real nodes (apps, databases, workers) in one test process, talking over an in-memory HTTP transport.

Each node is the real application with its lifespan; their HTTP clients reach each other through
`RoutingTransport`, which hands each request to the ASGI app that owns the host (httpx's `ASGITransport`). Nothing
of ours is mocked: a node can be made unreachable to exercise retries. The background loops are off, so a test
decides when deliveries happen (`deliver_all`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from tests.support import databases
from tests.support.keys import TestMember, signed, trust_body
from transit_window.app import create_app
from transit_window.clients.service import add_client
from transit_window.db.session import unit_of_work
from transit_window.protocol.delivery import DeliveryWorker
from transit_window.protocol.node import Node
from transit_window.settings import Settings


class RoutingTransport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.apps: dict[str, httpx.ASGITransport] = {}
        self.down: set[str] = set()
        self.requests: list[httpx.Request] = []

    def add(self, host: str, app: FastAPI) -> None:
        self.apps[host] = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.requests.append(request)
        transport = self.apps.get(host)
        if transport is None or host in self.down:
            raise httpx.ConnectError(f"{host} unreachable", request=request)
        return await transport.handle_async_request(request)


@dataclass
class InProcessNode:
    id: str
    app: FastAPI
    settings: Settings
    member: TestMember
    client: httpx.AsyncClient
    admin_token: str = ""

    @property
    def node(self) -> Node:
        node: Node = self.app.state.node
        return node

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    async def deliver(self, *, worker_id: str | None = None) -> int:
        """Run delivery rounds until nothing is due; returns how many rows were handled."""
        worker = DeliveryWorker(self.node, worker_id=worker_id or f"test-{self.id}")
        total = 0
        while (handled := await worker.run_once()) > 0:
            total += handled
        return total


@dataclass
class InProcessCorridor:
    transport: RoutingTransport = field(default_factory=RoutingTransport)
    nodes: dict[str, InProcessNode] = field(default_factory=dict)
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    async def add_node(
        self, member: TestMember, *, database_url: str, trust_file: Path, genesis_sha256: str, **settings: Any
    ) -> InProcessNode:
        config = Settings(
            node_id=member.node,
            database_url=database_url,
            key_file=member.key_file,
            trust_file=trust_file,
            genesis_sha256=genesis_sha256,
            public_url=member.endpoint,
            run_worker=False,
            **settings,
        )
        app = create_app(config, background=False)
        await self._stack.enter_async_context(app.router.lifespan_context(app))
        host = httpx.URL(member.endpoint).host
        self.transport.add(host, app)
        node: Node = app.state.node
        node._http = httpx.AsyncClient(transport=self.transport, timeout=10)
        client = httpx.AsyncClient(transport=self.transport, base_url=member.endpoint)
        await self._stack.enter_async_context(client)
        entry = InProcessNode(id=member.node, app=app, settings=config, member=member, client=client)
        async with unit_of_work(node) as session:
            _, entry.admin_token = await add_client(session, name=f"test admin {member.node}", role="admin")
        self.nodes[member.node] = entry
        return entry

    def __getitem__(self, node: str) -> InProcessNode:
        return self.nodes[node]

    async def deliver_all(self, *, rounds: int = 10) -> int:
        """Deliver on every node until a full round moves nothing (messages may cause messages)."""
        total = 0
        for _ in range(rounds):
            moved = 0
            for entry in self.nodes.values():
                moved += await entry.deliver()
            total += moved
            if moved == 0:
                break
        return total

    async def close(self) -> None:
        await self._stack.aclose()


@asynccontextmanager
async def fresh_corridor(
    databases_of: dict[str, str], members: dict[str, TestMember], *, folder: Path
) -> AsyncIterator[InProcessCorridor]:
    """The nodes of `databases_of` on truncated databases, sharing a new genesis (threshold 2) written to `folder`:
    for fixtures that keep one corridor for a whole module."""
    await asyncio.gather(*(databases.truncate(url) for url in databases_of.values()))
    founders = [members[node] for node in databases_of]
    trust = signed(trust_body(founders, threshold=2), founders)
    trust_file = folder / "genesis.json"
    trust_file.write_bytes(trust.to_json())
    corridor = InProcessCorridor()
    try:
        for node, url in databases_of.items():
            await corridor.add_node(members[node], database_url=url, trust_file=trust_file, genesis_sha256=trust.sha256)
        yield corridor
    finally:
        await corridor.close()
