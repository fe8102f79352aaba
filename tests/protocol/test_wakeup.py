"""A `transit-window worker` process learns of new messages from PostgreSQL (LISTEN/NOTIFY) when the API process
that committed them runs no worker of its own, instead of waiting for its idle poll; and it listens again after its
connection is cut."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.support import databases
from tests.support.inprocess import InProcessCorridor
from transit_window import tasks
from transit_window.protocol.node import Node


async def woken(node: Node, *, within: float = 10.0) -> None:
    """Wait for the node's worker to be woken, then clear the signal (what the worker's lane does)."""
    await asyncio.wait_for(node._wake.wait(), within)
    node._wake.clear()


async def test_a_commit_at_an_api_without_a_worker_wakes_the_worker_process(
    corridor: InProcessCorridor, dialect: str
) -> None:
    if dialect != "postgresql":
        pytest.skip("SQLite serves one process per node: there is nobody else to wake")
    kz = corridor["KZ"]
    assert not kz.settings.run_worker  # the API under test commits and delivers nothing itself
    worker = await Node.open(kz.settings.model_copy(update={"run_worker": True}))  # a second process, same database
    stop = asyncio.Event()
    listener = asyncio.create_task(tasks.listen(worker, stop, deliver=True, serve_api=False))
    try:
        await woken(worker)  # listening (it wakes once for what was committed before)
        sent = await kz.client.post("/v1/admin/pings", json={"to": ["UZ"]}, headers=kz.admin)
        assert sent.status_code == 200, sent.text
        await woken(worker)

        # A terminated backend (a database restart looks the same): the listener connects and listens again.
        connection = await asyncpg.connect(databases._dsn(kz.settings.database_url))
        try:
            terminated = await connection.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            )
        finally:
            await connection.close()
        assert terminated == 1
        await woken(worker, within=20)  # listening again
        sent = await kz.client.post("/v1/admin/pings", json={"to": ["UZ"]}, headers=kz.admin)
        assert sent.status_code == 200, sent.text
        await woken(worker)
    finally:
        stop.set()
        await asyncio.wait_for(listener, 10)
        await worker.close()
