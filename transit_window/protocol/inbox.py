"""The inbox: verify, de-duplicate, apply and receipt incoming corridor messages.

Verification is pure CPU against the in-memory trust list and happens before any database work: a message that is
not authentic never touches a table. Authentic messages of one request are stored, applied and receipted in one
transaction; each handler runs in a savepoint so a `Rejection` (or a bug) undoes only that message's effects.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from transit_window import clock
from transit_window.db import locks
from transit_window.db.base import table_of
from transit_window.db.dialect import dialect_of
from transit_window.db.session import after_commit, savepoint
from transit_window.errors import Conflict, NotAuthentic, Problem
from transit_window.protocol import log
from transit_window.protocol.envelope import (
    ReceiptStatus,
    VerifiedEnvelope,
    digest_of,
    open_envelope,
    sign_receipt,
)
from transit_window.protocol.models import InboundSequence, InboxMessage
from transit_window.protocol.registry import REGISTRY, Rejection

if TYPE_CHECKING:
    from transit_window.protocol.node import Node

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


class ConcurrentDelivery(Conflict):
    """Another transaction stored one of these messages while we applied it: roll back, the sender retries."""


async def receive(session: AsyncSession, node: Node, verified: list[VerifiedEnvelope | Problem]) -> list[Outcome]:
    """Store, apply and receipt the authentic messages (in this session's transaction).

    Insert-only on the hot path: known ids are looked up first, new messages applied, and their rows inserted once
    with the receipt. If a concurrent delivery of the same id committed in between, the insert finds it and
    `ConcurrentDelivery` rolls this request back (the sender retries and gets the original receipt).
    """
    outcomes: list[Outcome | None] = [item if isinstance(item, Problem) else None for item in verified]
    envelopes = [(index, item) for index, item in enumerate(verified) if isinstance(item, VerifiedEnvelope)]
    if not envelopes:
        return [outcome for outcome in outcomes if outcome is not None]
    now = clock.utcnow()

    keys = list({(env.payload.iss, env.payload.id) for _, env in envelopes})
    known: set[tuple[str, str]] = set()
    for start in range(0, len(keys), 500):
        rows = await session.execute(
            select(InboxMessage.iss, InboxMessage.id).where(
                tuple_(InboxMessage.iss, InboxMessage.id).in_(keys[start : start + 500])
            )
        )
        known.update((row.iss, row.id) for row in rows)

    fresh: list[tuple[int, VerifiedEnvelope]] = []
    seen_in_request: set[tuple[str, str]] = set()
    answer_later: list[tuple[int, VerifiedEnvelope]] = []
    for index, env in envelopes:
        key = (env.payload.iss, env.payload.id)
        if key in known or key in seen_in_request:
            answer_later.append((index, env))  # the stored (or just stored) receipt answers it
        else:
            seen_in_request.add(key)
            fresh.append((index, env))

    # Lock what the batch is about (movements, permits: the envelopes' subjects) first and in one order. Handlers
    # lock the rows they change; taken message by message, two batches touching the same two movements in opposite
    # orders would deadlock.
    await locks.lock_names(session, (env.payload.subject for _, env in fresh if env.payload.subject))
    applied = await _apply(session, node, fresh)
    rows_to_store: list[dict[str, Any]] = []
    for index, env in fresh:
        result = applied[index]
        if result is None:
            outcomes[index] = Problem(status=500, title="Could not apply the message", detail="internal error; retry")
            continue
        status, code, detail = result
        receipt = sign_receipt(
            key=node.key,
            message_id=env.payload.id,
            digest=env.digest,
            status=status,
            code=code,
            detail=detail,
            iss=node.id,
            aud=env.payload.iss,
            at=now,
        )
        rows_to_store.append(
            {
                "iss": env.payload.iss,
                "id": env.payload.id,
                "seq": env.payload.seq,
                "type": env.payload.type,
                "subject": env.payload.subject,
                "token": env.token,
                "digest": env.digest,
                "received_at": now,
                "status": status,
                "code": code,
                "detail": detail,
                "receipt": receipt,
            }
        )
        outcomes[index] = Receipted(receipt=receipt, status=status, code=code)
        after_commit(session, node.metrics.inbox.labels(outcome=status, reason=code or "").inc)  # if it commits
        log.record(session, log.LogItem("received", "envelope", env.payload.iss, env.payload.id, env.digest))
        log.record(session, log.LogItem("sent", "receipt", env.payload.iss, env.payload.id, digest_of(receipt)))

    if rows_to_store:
        table = table_of(InboxMessage)
        statement = (
            dialect_of(session).insert_ignore(table, index_elements=["iss", "id"]).returning(table.c.iss, table.c.id)
        )
        stored = {(row.iss, row.id) for row in await session.execute(statement, rows_to_store)}
        if len(stored) != len(rows_to_store):
            raise ConcurrentDelivery("a message of this request was delivered concurrently; retry")
    for index, env in answer_later:
        outcomes[index] = await _replay(session, node, env)
    highest: dict[str, int] = {}
    for _, env in envelopes:
        highest[env.payload.iss] = max(highest.get(env.payload.iss, 0), env.payload.seq)
    stored_now: dict[str, set[int]] = {}  # the seqs this request leaves in the inbox (stored or already there)
    for row in rows_to_store:
        stored_now.setdefault(row["iss"], set()).add(row["seq"])
    for _, env in answer_later:
        stored_now.setdefault(env.payload.iss, set()).add(env.payload.seq)
    for sender in sorted(highest):
        await track_sequence(session, peer=sender, seen=highest[sender], stored=stored_now.get(sender, set()))
    return [outcome for outcome in outcomes if outcome is not None]


Applied = tuple[ReceiptStatus, str | None, str | None] | None


async def _apply(session: AsyncSession, node: Node, items: list[tuple[int, VerifiedEnvelope]]) -> dict[int, Applied]:
    """Run the handlers. Fast path: the whole batch in one savepoint. If any message is refused (or fails), the
    batch is rolled back and re-run with a savepoint per message, so only that message's effects are undone.

    One savepoint per batch, not per message, matters on PostgreSQL: past 64 subtransactions in one transaction
    visibility checks slow down for every session (subxid overflow).
    """
    if not items:
        return {}
    try:
        async with savepoint(session):
            for _, env in items:
                await REGISTRY[env.payload.type].handler(session, env, node)
        return {index: ("accepted", None, None) for index, _ in items}
    except Exception:  # noqa: S110 - re-run one by one below to find which message it was
        pass
    results: dict[int, Applied] = {}
    for index, env in items:
        try:
            async with savepoint(session):
                await REGISTRY[env.payload.type].handler(session, env, node)
            results[index] = ("accepted", None, None)
        except Rejection as rejection:
            results[index] = ("rejected", rejection.code, rejection.detail)
        except Exception:
            logger.exception(
                "handler of %s failed", env.payload.type, extra={"msg_id": env.payload.id, "node": node.id}
            )
            results[index] = None
    return results


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
        after_commit(session, node.metrics.inbox.labels(outcome="duplicate", reason="26").inc)
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
    after_commit(session, node.metrics.inbox.labels(outcome="replayed", reason="").inc)
    return Receipted(receipt=row.receipt, status=row.status, code=row.code)


async def track_sequence(session: AsyncSession, *, peer: str, seen: int, stored: Collection[int] = ()) -> None:
    """Advance the contiguous mark of `peer`'s sequence and note a gap for the puller. `seen` is the highest seq of
    the messages from `peer` just received: what lies above the mark counts from the arrivals, not from every stored
    row, so a gap closed as unfillable (`pull.close_unfillable_gap`) stays closed.

    In order, the usual case, costs one statement: when the seqs `stored` in this request are one run ending at
    `seen` and the mark stands right below it with nothing seen above it, the mark moves to `seen` by a conditional
    UPDATE. Anything else (a gap, a replay, a first message, a concurrent batch that moved the mark first: the
    condition is checked again on the row it waited for) matches no row and takes the full path."""
    if stored and max(stored) == seen and len(stored) == seen - min(stored) + 1:
        below = min(stored) - 1
        table = table_of(InboundSequence)
        moved = await session.execute(
            update(table)
            .where(table.c.peer == peer, table.c.contiguous == below, table.c.max_seen <= below)
            .values(contiguous=seen, max_seen=seen, gap_since=None)
        )
        if moved.rowcount == 1:  # type: ignore[attr-defined]
            return
    statement = (
        select(InboundSequence)
        .where(InboundSequence.peer == peer)
        .with_for_update()
        .execution_options(populate_existing=True)  # the fast path writes the row behind the ORM's back
    )
    state = (await session.execute(statement)).scalar_one_or_none()
    dialect = dialect_of(session)
    if state is None and dialect.concurrent_writers:
        # Two first batches from a new peer would both find no row and both insert it: create it race-free, then
        # lock it (once per peer: every later batch finds the row).
        values = {"peer": peer, "contiguous": 0, "max_seen": 0}
        await session.execute(dialect.insert_ignore(table_of(InboundSequence)).values(**values))
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
    for seq in seqs:
        if seq == contiguous + 1:
            contiguous = seq
        elif seq > contiguous + 1:
            break
    max_seen = max(contiguous, state.max_seen if state else 0, seen)
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
