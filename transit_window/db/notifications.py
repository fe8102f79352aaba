"""PostgreSQL LISTEN on a few channels over one held connection, with reconnects: how the processes of one node tell
each other that something changed (messages to deliver: `protocol/wakeup.py`; a client revoked:
`clients/cache.py`). A notification can be missed while the connection is re-made, so `on_connect` runs after each
(re)connect for the listener to catch up (wake the worker, forget every cached client). SQLite serves one process
per node and needs none of this.

Hand-written: asyncpg's `add_listener` is the whole mechanism; what is ours is holding the connection, noticing it
was lost, and listening again with a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)

Handler = Callable[[str], None]
"""Called with the notification's payload ('' when there is none)."""


async def listen(
    engine: AsyncEngine,
    channels: Mapping[str, Handler],
    stop: asyncio.Event,
    *,
    on_connect: Callable[[], None],
    label: str,
) -> None:
    """Listen until `stop`; after a lost connection (database restart, terminated backend) listen again, backing
    off up to 30 s."""
    pause = 1.0
    while not stop.is_set():
        try:
            await _listen_once(engine, channels, stop, on_connect=on_connect)
            pause = 1.0
        except Exception as exc:  # the database is away: the pollers and the caches' expiry cover the gap
            logger.warning("%s listener: %s; listening again in %.0f s", label, exc, pause)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
        pause = min(pause * 2, 30.0)


async def _listen_once(
    engine: AsyncEngine, channels: Mapping[str, Handler], stop: asyncio.Event, *, on_connect: Callable[[], None]
) -> None:
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection  # asyncpg.Connection
        lost = asyncio.Event()
        callbacks = {
            channel: (lambda _c, _pid, _channel, payload, handler=handler: handler(payload or ""))
            for channel, handler in channels.items()
        }
        driver.add_termination_listener(lambda _connection: lost.set())
        for channel, callback in callbacks.items():
            await driver.add_listener(channel, callback)
        on_connect()  # whatever was committed while nobody listened
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
                for channel, callback in callbacks.items():
                    with contextlib.suppress(Exception):
                        await driver.remove_listener(channel, callback)  # UNLISTEN before the pool reuses it
    if lost.is_set():
        raise ConnectionError("the listening connection was closed")
