"""The transactional outbox: messages are enqueued in the caller's transaction and sealed at its commit.

`enqueue` only records what to send. `seal_pending`, run by the unit of work right before commit under the log-head
lock, gives each message its per-peer `seq`, signs it, and inserts the outbox rows. Assigning `seq` there, behind
the one lock every writer takes last, keeps sequences gapless per peer without any lock-ordering deadlock between
transactions that write to several peers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from transit_window import clock
from transit_window.db import bulk
from transit_window.db.base import table_of
from transit_window.db.dialect import dialect_of
from transit_window.db.session import after_commit
from transit_window.ids import new_id
from transit_window.protocol import log
from transit_window.protocol.envelope import digest_of, seal
from transit_window.protocol.models import OutboundSequence, OutboxMessage
from transit_window.protocol.registry import REGISTRY

if TYPE_CHECKING:
    from transit_window.protocol.node import Node

_PENDING = "tw_outbox_pending"


class HandOver(Protocol):
    """A delivery worker running in this process, taking the messages a transaction seals straight from it: the
    rows are inserted already leased to it and handed over in memory once the transaction commits, so no claim
    transaction finds them and no other worker is woken for them (protocol/delivery.py). Should the process die
    before they are sent, the lease runs out and any worker's next claim takes them, as after any crash."""

    @property
    def owner(self) -> str: ...

    @property
    def lease_seconds(self) -> float: ...

    def take(self, rows: list[dict[str, Any]]) -> None: ...


@dataclass(frozen=True, slots=True)
class Outbound:
    id: str
    to: str
    type: str
    subject: str | None
    body: dict[str, Any]


def enqueue(session: AsyncSession, *, to: str, message_type: str, body: BaseModel, subject: str | None = None) -> str:
    """Queue one message to `to` in the current transaction; returns its id (UUIDv7)."""
    model = REGISTRY[message_type].body_model
    if not isinstance(body, model):
        raise TypeError(f"{message_type} needs a {model.__name__} body, got {body.__class__.__name__}")
    message = Outbound(id=new_id(), to=to, type=message_type, subject=subject, body=body.model_dump(mode="json"))
    session.info.setdefault(_PENDING, []).append(message)
    return message.id


def has_pending(session: AsyncSession) -> bool:
    return bool(session.info.get(_PENDING))


async def seal_pending(session: AsyncSession, node: Node) -> tuple[list[Outbound], bool]:
    """Sign and insert the queued messages; and whether they were handed over to this process's delivery worker
    (`HandOver`). Must run while holding the log-head lock (see `unit_of_work`)."""
    messages: list[Outbound] = session.info.pop(_PENDING, [])
    if not messages:
        return [], False
    # One statement takes this batch's sequence numbers for every peer at once: the upsert adds the batch's count
    # per peer and returns the new last number, so the batch's numbers end there.
    counts = Counter(message.to for message in messages)
    table = table_of(OutboundSequence)
    taking = dialect_of(session).insert(table).values([{"peer": p, "last_seq": n} for p, n in sorted(counts.items())])
    taken = await session.execute(
        taking.on_conflict_do_update(
            index_elements=["peer"], set_={"last_seq": table.c.last_seq + taking.excluded.last_seq}
        ).returning(table.c.peer, table.c.last_seq)
    )
    last = {str(peer): int(last_seq) - counts[str(peer)] for peer, last_seq in taken}
    now = clock.utcnow()
    trust_version = node.trust.version
    outbox_rows = []
    for message in messages:
        seq = last.get(message.to, 0) + 1
        last[message.to] = seq
        token = seal(
            key=node.key,
            message_id=message.id,
            type=message.type,
            iss=node.id,
            aud=message.to,
            iat=now,
            seq=seq,
            subject=message.subject,
            trust=trust_version,
            body=message.body,
        )
        digest = digest_of(token)
        outbox_rows.append(
            {
                "id": message.id,
                "peer": message.to,
                "seq": seq,
                "type": message.type,
                "subject": message.subject,
                "token": token,
                "digest": digest,
                "state": "pending",
                "attempts": 0,
                "created_at": now,
                "queued_at": now,
                "next_attempt_at": now,
            }
        )
        log.record(
            session,
            log.LogItem(direction="sent", kind="envelope", peer=message.to, msg_id=message.id, digest=digest),
        )
    hand_over = node.hand_over
    if hand_over is not None:
        lease_until = now + timedelta(seconds=hand_over.lease_seconds)
        for row in outbox_rows:
            row.update(lease_owner=hand_over.owner, lease_until=lease_until)
        after_commit(session, lambda: hand_over.take(outbox_rows))
    await bulk.insert_rows(session, table_of(OutboxMessage), outbox_rows)  # one statement, not one per message
    return messages, hand_over is not None


async def retry(session: AsyncSession, *, ids: Sequence[str] | None = None, state: str | None = None) -> int:
    """Queue pending or dead messages for delivery now (by id, by state, or both narrowing each other); how many.
    The one retry behind `POST /v1/admin/outbox/retry` and `transit-window outbox retry`. Delivered and rejected
    messages are final and never sent again."""
    now = clock.utcnow()
    statement = update(OutboxMessage).where(OutboxMessage.state.in_(["pending", "dead"]))
    if ids:
        statement = statement.where(OutboxMessage.id.in_(ids))
    if state:
        statement = statement.where(OutboxMessage.state == state)
    result = await session.execute(
        statement.values(state="pending", next_attempt_at=now, queued_at=now, lease_owner=None, lease_until=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
