"""The inbox: verify, de-duplicate, apply and receipt incoming corridor messages.

Verification is pure CPU against the in-memory trust list and happens before any database work: a message that is
not authentic never touches a table. Authentic messages of one request are stored, applied and receipted in one
transaction; each handler runs in a savepoint so a `Rejection` (or a bug) undoes only that message's effects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, delete, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from transit_window import clock
from transit_window.db.base import table_of
from transit_window.db.upsert import insert_ignore
from transit_window.errors import NotAuthentic, Problem
from transit_window.protocol import log
from transit_window.protocol.envelope import VerifiedEnvelope, digest_of, open_envelope, sign_receipt
from transit_window.protocol.models import InboundSequence, InboxMessage
from transit_window.protocol.registry import REGISTRY, Rejection

if TYPE_CHECKING:
    from transit_window.node import Node

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Receipted:
    receipt: str
    status: str
    code: str | None = None


Outcome = Receipted | Problem


def verify_all(node: Node, tokens: list[str]) -> list[VerifiedEnvelope | Problem]:
    now = clock.utcnow()
    skew = timedelta(seconds=node.settings.clock_skew_seconds)
    results: list[VerifiedEnvelope | Problem] = []
    for token in tokens:
        try:
            results.append(open_envelope(token, trust=node.trust, me=node.id, now=now, skew=skew))
        except NotAuthentic as exc:
            node.metrics.inbox.labels(outcome="refused", reason=exc.reason).inc()
            logger.info("refused message: %s", exc.detail, extra={"reason": exc.reason, "node": node.id})
            results.append(Problem.from_error(exc))
    return results


async def receive(session: AsyncSession, node: Node, verified: list[VerifiedEnvelope | Problem]) -> list[Outcome]:
    """Store, apply and receipt the authentic messages (in this session's transaction)."""
    outcomes: list[Outcome | None] = [item if isinstance(item, Problem) else None for item in verified]
    envelopes = [(index, item) for index, item in enumerate(verified) if isinstance(item, VerifiedEnvelope)]
    if not envelopes:
        return [outcome for outcome in outcomes if outcome is not None]
    dialect = session.get_bind().dialect.name
    now = clock.utcnow()

    # Claim every id we have not seen: the unique key makes a concurrent delivery of the same id wait for us.
    placeholder_rows = [
        {
            "iss": env.payload.iss,
            "id": env.payload.id,
            "seq": env.payload.seq,
            "type": env.payload.type,
            "subject": env.payload.subject,
            "token": env.token,
            "digest": env.digest,
            "received_at": now,
            "status": "pending",
            "receipt": "",
        }
        for _, env in envelopes
    ]
    table = table_of(InboxMessage)
    claimed: set[tuple[str, str]] = set()
    for start in range(0, len(placeholder_rows), 500):
        chunk = placeholder_rows[start : start + 500]
        statement = (
            insert_ignore(table, dialect, index_elements=["iss", "id"]).values(chunk).returning(table.c.iss, table.c.id)
        )
        claimed.update((row.iss, row.id) for row in await session.execute(statement))

    updates: list[dict[str, Any]] = []
    seen_in_request: set[tuple[str, str]] = set()
    for index, env in envelopes:
        key = (env.payload.iss, env.payload.id)
        if key not in claimed or key in seen_in_request:
            outcomes[index] = await _replay(session, node, env)
            continue
        seen_in_request.add(key)
        status, code, detail = "accepted", None, None
        handler = REGISTRY[env.payload.type].handler
        try:
            async with session.begin_nested():
                await handler(session, env, node)
        except Rejection as rejection:
            status, code, detail = "rejected", rejection.code, rejection.detail
        except Exception:
            logger.exception(
                "handler of %s failed", env.payload.type, extra={"msg_id": env.payload.id, "node": node.id}
            )
            outcomes[index] = Problem(
                status=500, title="Could not apply the message", detail="internal error; retry later"
            )
            updates.append({"b_iss": env.payload.iss, "b_id": env.payload.id, "delete": True})
            continue
        receipt = sign_receipt(
            key=node.key,
            message_id=env.payload.id,
            digest=env.digest,
            status=status,  # type: ignore[arg-type]
            code=code,
            detail=detail,
            iss=node.id,
            aud=env.payload.iss,
            at=now,
        )
        updates.append(
            {
                "b_iss": env.payload.iss,
                "b_id": env.payload.id,
                "status": status,
                "code": code,
                "detail": detail,
                "receipt": receipt,
            }
        )
        outcomes[index] = Receipted(receipt=receipt, status=status, code=code)
        node.metrics.inbox.labels(outcome=status, reason=code or "").inc()
        log.record(session, log.LogItem("received", "envelope", env.payload.iss, env.payload.id, env.digest))
        log.record(session, log.LogItem("sent", "receipt", env.payload.iss, env.payload.id, digest_of(receipt)))

    failed = [row for row in updates if row.get("delete")]
    done = [row for row in updates if not row.get("delete")]
    if done:
        table = table_of(InboxMessage)
        await session.execute(
            update(table)
            .where(and_(table.c.iss == bindparam("b_iss"), table.c.id == bindparam("b_id")))
            .values(
                status=bindparam("status"),
                code=bindparam("code"),
                detail=bindparam("detail"),
                receipt=bindparam("receipt"),
            ),
            done,
        )
    if failed:
        await session.execute(
            delete(InboxMessage).where(
                tuple_(InboxMessage.iss, InboxMessage.id).in_([(row["b_iss"], row["b_id"]) for row in failed])
            )
        )
    senders = sorted({env.payload.iss for _, env in envelopes})
    for sender in senders:
        await track_sequence(session, peer=sender)
    return [outcome for outcome in outcomes if outcome is not None]


async def _replay(session: AsyncSession, node: Node, env: VerifiedEnvelope) -> Outcome:
    row = (
        await session.execute(
            select(InboxMessage.digest, InboxMessage.receipt, InboxMessage.status, InboxMessage.code).where(
                InboxMessage.iss == env.payload.iss, InboxMessage.id == env.payload.id
            )
        )
    ).one_or_none()
    if row is None or not row.receipt:
        return Problem(status=409, title="Message being applied", detail="the same message is being applied; retry")
    if row.digest != env.digest:
        node.metrics.inbox.labels(outcome="duplicate", reason="26").inc()
        receipt = sign_receipt(
            key=node.key,
            message_id=env.payload.id,
            digest=env.digest,
            status="duplicate",
            code="26",
            detail="this message id was already used for different content; nothing applied",
            iss=node.id,
            aud=env.payload.iss,
            at=clock.utcnow(),
        )
        return Receipted(receipt=receipt, status="duplicate", code="26")
    node.metrics.inbox.labels(outcome="replayed", reason="").inc()
    return Receipted(receipt=row.receipt, status=row.status, code=row.code)


async def track_sequence(session: AsyncSession, *, peer: str) -> None:
    """Advance the contiguous mark of `peer`'s sequence and note a gap for the puller."""
    statement = select(InboundSequence).where(InboundSequence.peer == peer)
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update()
    state = (await session.execute(statement)).scalar_one_or_none()
    contiguous = state.contiguous if state else 0
    seqs = (
        await session.scalars(
            select(InboxMessage.seq)
            .where(InboxMessage.iss == peer, InboxMessage.seq > contiguous)
            .order_by(InboxMessage.seq)
            .limit(10_000)
        )
    ).all()
    max_seen = max([contiguous, *(state.max_seen if state else 0,), *seqs])
    for seq in seqs:
        if seq == contiguous + 1:
            contiguous = seq
        elif seq > contiguous + 1:
            break
    gap_since = None
    if max_seen > contiguous:
        gap_since = state.gap_since if state and state.gap_since else clock.utcnow()
    if state is None:
        session.add(InboundSequence(peer=peer, contiguous=contiguous, max_seen=max_seen, gap_since=gap_since))
    else:
        state.contiguous = contiguous
        state.max_seen = max_seen
        state.gap_since = gap_since
    await session.flush()
