"""Waking the delivery workers of other processes of the node: PostgreSQL LISTEN/NOTIFY on one channel.

A process that commits messages and runs a worker hands them to it in memory, already leased (`outbox.HandOver`),
and wakes nobody; without a running worker it wakes its own lanes (`Node.wake_worker`). An API process that runs no
worker (`TW_RUN_WORKER=false`, the scale-out shape) sends `NOTIFY` inside the committing transaction instead, and
PostgreSQL delivers it at commit to every `transit-window worker` listening; without it they would find the messages
only at their next idle poll (`TW_WORKER_POLL_SECONDS`). The poll stays the safety net: a notification missed while
a listener reconnects costs at most one poll interval (the listener: `tasks.listen`). SQLite serves one process per
node and needs none of this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.protocol.node import Node

CHANNEL = "tw_outbox"


def notifies(node: Node) -> bool:
    """Whether a commit in this process must tell other processes: it runs no worker of its own."""
    return not node.settings.run_worker and node.dialect.notifications


async def notify(session: AsyncSession) -> None:
    """Queue the wake-up; PostgreSQL sends it when (and only if) the transaction commits."""
    await session.execute(text(f"NOTIFY {CHANNEL}"))
