"""Waking the delivery workers of other processes of the node: PostgreSQL LISTEN/NOTIFY on one channel.

A process that commits messages wakes its own worker in memory (`Node.wake_worker`). An API process that runs no
worker (`TW_RUN_WORKER=false`, the scale-out shape) sends `NOTIFY` inside the committing transaction instead, and
PostgreSQL delivers it at commit to every `transit-window worker` listening; without it they would find the messages
only at their next idle poll (`TW_WORKER_POLL_SECONDS`). The poll stays the safety net: a notification missed while
a listener reconnects costs at most one poll interval. SQLite serves one process per node and needs none of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.protocol.node import Node

logger = logging.getLogger(__name__)

CHANNEL = "tw_outbox"


def notifies(node: Node) -> bool:
    """Whether a commit in this process must tell other processes: it runs no worker of its own."""
    return not node.settings.run_worker and node.dialect.notifications


async def notify(session: AsyncSession) -> None:
    """Queue the wake-up; PostgreSQL sends it when (and only if) the transaction commits."""
    await session.execute(text(f"NOTIFY {CHANNEL}"))


async def listen(node: Node, stop: asyncio.Event) -> None:
    """Hold one connection listening on the channel and wake this process's worker on each notification; after a
    lost connection (database restart, terminated backend) listen again, backing off up to 30 s."""
    pause = 1.0
    while not stop.is_set():
        try:
            await _listen_once(node, stop)
            pause = 1.0
        except Exception as exc:  # the database is away: the worker's poll covers the gap
            logger.warning("outbox listener: %s; listening again in %.0f s", exc, pause, extra={"node": node.id})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
        pause = min(pause * 2, 30.0)


async def _listen_once(node: Node, stop: asyncio.Event) -> None:
    async with node.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection  # asyncpg.Connection
        lost = asyncio.Event()

        def on_notification(*_: object) -> None:
            node.wake_worker()

        driver.add_termination_listener(lambda _connection: lost.set())
        await driver.add_listener(CHANNEL, on_notification)
        node.wake_worker()  # whatever was committed while nobody listened
        try:
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        finally:
            if lost.is_set() or driver.is_closed():
                await connection.invalidate()
            else:
                with contextlib.suppress(Exception):
                    await driver.remove_listener(CHANNEL, on_notification)  # UNLISTEN before the pool reuses it
    if lost.is_set():
        raise ConnectionError("the listening connection was closed")
