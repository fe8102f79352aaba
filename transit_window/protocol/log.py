"""The tamper-evident log: every envelope and receipt sent or received, hash-chained, with signed checkpoints.

Entries are collected on the session while a transaction works and appended in `append_pending`, called last,
right before commit, while holding the `log_head` row: the chain is then gapless and ordered by commit, and the
lock is held only for the few statements of the append.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from transit_window import clock
from transit_window.db import bulk
from transit_window.db.base import table_of
from transit_window.protocol.models import LogEntry, LogHead

GENESIS_HASH = "0" * 64
_PENDING = "tw_log_pending"

Direction = Literal["sent", "received"]
Kind = Literal["envelope", "receipt"]


@dataclass(frozen=True, slots=True)
class LogItem:
    direction: Direction
    kind: Kind
    peer: str
    msg_id: str
    digest: str


def chain(prev_hash: str, *, digest: str, direction: str, peer: str) -> str:
    return hashlib.sha256(
        bytes.fromhex(prev_hash) + bytes.fromhex(digest) + direction.encode("ascii") + peer.encode("ascii")
    ).hexdigest()


def record(session: AsyncSession, item: LogItem) -> None:
    session.info.setdefault(_PENDING, []).append(item)


def has_pending(session: AsyncSession) -> bool:
    return bool(session.info.get(_PENDING))


async def lock_head(session: AsyncSession) -> tuple[int, str]:
    row = (await session.execute(select(LogHead.size, LogHead.head).where(LogHead.id == 1).with_for_update())).one()
    return int(row.size), str(row.head)


async def append_pending(session: AsyncSession, *, size: int, head: str) -> tuple[int, str]:
    """Append everything recorded on this session after (`size`, `head`); returns the new head."""
    items: list[LogItem] = session.info.pop(_PENDING, [])
    if not items:
        return size, head
    now: datetime = clock.utcnow()
    rows = []
    for item in items:
        size += 1
        entry_hash = chain(head, digest=item.digest, direction=item.direction, peer=item.peer)
        rows.append(
            {
                "position": size,
                "at": now,
                "direction": item.direction,
                "kind": item.kind,
                "peer": item.peer,
                "msg_id": item.msg_id,
                "digest": item.digest,
                "prev_hash": head,
                "entry_hash": entry_hash,
            }
        )
        head = entry_hash
    # The entries and the new head in one statement on PostgreSQL (two on SQLite), never one per entry.
    head_moved = update(LogHead).where(LogHead.id == 1).values(size=size, head=head)
    await bulk.insert_rows_with(session, table_of(LogEntry), rows, then=head_moved)
    return size, head
