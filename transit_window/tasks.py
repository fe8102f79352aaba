"""The node's background work: delivery, gap pulls, checkpoints and trust refresh, each a supervised loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable

from transit_window import catalogue as catalogue  # a worker-only process must know every message type
from transit_window.clients import cache as client_cache
from transit_window.db import notifications
from transit_window.protocol import checkpoints, proposals, pull, wakeup
from transit_window.protocol.delivery import DeliveryWorker
from transit_window.protocol.node import Node
from transit_window.tracking import crossing_checks
from transit_window.webhooks.delivery import WebhookWorker

logger = logging.getLogger(__name__)


def worker_id(node: Node) -> str:
    return f"{node.id}:{socket.gethostname()}:{os.getpid()}"


async def _every(stop: asyncio.Event, seconds: float, name: str, job: Callable[[], Awaitable[object]]) -> None:
    while not stop.is_set():
        try:
            await job()
        except Exception:
            logger.exception("%s failed; retrying in %.1f s", name, seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


def start(
    node: Node, stop: asyncio.Event, *, deliver: bool = True, maintain: bool = True, serve_api: bool = False
) -> list[asyncio.Task[None]]:
    """Start the loops. `deliver`: the outbox worker; `maintain`: gap pulls, checkpoints, trust refresh, overdue
    border crossings; `serve_api`: this process answers the API (its cache of clients hears revocations)."""
    settings = node.settings
    tasks: list[asyncio.Task[None]] = []
    if deliver:
        worker = DeliveryWorker(node, worker_id=worker_id(node))
        tasks.append(asyncio.create_task(worker.run(stop), name="delivery"))
    if node.dialect.notifications and (deliver or serve_api):
        tasks.append(asyncio.create_task(listen(node, stop, deliver=deliver, serve_api=serve_api), name="listener"))
    if maintain:
        tasks.append(
            asyncio.create_task(_every(stop, settings.gap_pull_seconds, "gap pull", lambda: pull.fill_gaps(node)))
        )
        tasks.append(
            asyncio.create_task(
                _every(
                    stop,
                    min(5.0, settings.checkpoint_every_seconds),
                    "checkpoint",
                    lambda: checkpoints.checkpoint_due(node),
                )
            )
        )
        tasks.append(asyncio.create_task(_every(stop, 5.0, "trust refresh", node.refresh_trust)))
        tasks.append(
            asyncio.create_task(
                _every(stop, settings.chair_duties_seconds, "chair duties", lambda: proposals.chair_duties(node))
            )
        )
        webhooks = WebhookWorker(node, worker_id=f"{worker_id(node)}:webhooks")
        tasks.append(asyncio.create_task(webhooks.run(stop), name="webhooks"))
        tasks.append(
            asyncio.create_task(
                _every(
                    stop,
                    settings.overdue_check_seconds,
                    "overdue crossings",
                    lambda: crossing_checks.check_overdue(node),
                )
            )
        )
        tasks.append(
            asyncio.create_task(
                _every(
                    stop,
                    settings.overdue_check_seconds,
                    "unrecorded crossings",
                    lambda: crossing_checks.check_unrecorded_crossings(node),
                )
            )
        )
    return tasks


async def listen(node: Node, stop: asyncio.Event, *, deliver: bool, serve_api: bool) -> None:
    """One LISTEN connection per process for what other processes of the node tell it: messages committed for
    this worker to deliver, clients revoked for this API to forget. After a reconnect, catch up on both."""
    channels: dict[str, notifications.Handler] = {}
    if deliver:
        channels[wakeup.CHANNEL] = lambda _payload: node.wake_worker()
    if serve_api:
        channels[client_cache.CHANNEL] = lambda client_id: node.clients.forget(client_id or None)

    def caught_up() -> None:
        node.wake_worker()
        node.clients.forget()

    await notifications.listen(node.engine, channels, stop, on_connect=caught_up, label=f"{node.id} node")


async def stop_all(stop: asyncio.Event, tasks: list[asyncio.Task[None]], *, grace: float = 5.0) -> None:
    stop.set()
    node_wakers = [task for task in tasks if not task.done()]
    if not node_wakers:
        return
    done, pending = await asyncio.wait(node_wakers, timeout=grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    del done
