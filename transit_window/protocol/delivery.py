"""The delivery worker: claims due outbox rows, posts them in batches per peer, verifies and stores receipts.

Claims are leases (`lease_owner`, `lease_until`) taken with `FOR UPDATE SKIP LOCKED` on PostgreSQL and inside a
`BEGIN IMMEDIATE` transaction on SQLite, so several workers on one database never post the same row at the same
time; a worker that dies only delays its rows until the lease runs out, and the receiver's de-duplication turns any
resend into the original receipt. Failures back off exponentially with full jitter and dead-letter after an age.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from transit_window import clock
from transit_window.db.base import UTCDateTime, table_of
from transit_window.db.dialect import dialect_of
from transit_window.db.session import nothing_done, unit_of_work
from transit_window.protocol import log
from transit_window.protocol.envelope import ReceiptError, digest_of, verify_receipt
from transit_window.protocol.models import OutboxMessage, WorkerHeartbeat

if TYPE_CHECKING:
    from transit_window.protocol.node import Node

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: str
    peer: str
    seq: int
    token: str
    digest: str
    attempts: int
    created_at: datetime
    queued_at: datetime


@dataclass(slots=True)
class Result:
    row: Claimed
    outcome: str  # delivered | rejected | failed
    receipt: str | None = None
    status: str | None = None
    code: str | None = None
    detail: str | None = None
    error: str | None = None
    reason: str = ""


def backoff(*, attempts: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter (AWS architecture blog), never sooner than `base`: uniform in
    [base, min(cap, base * 2^attempts)]. The floor keeps a peer that is down from being retried in a tight loop."""
    return random.uniform(base, max(base, min(cap, base * (2 ** min(attempts, 30)))))


class DeliveryWorker:
    def __init__(self, node: Node, *, worker_id: str) -> None:
        self.node = node
        self.worker_id = worker_id
        self._last_heartbeat = 0.0
        self._handed: list[Claimed] = []
        self._handed_ready = asyncio.Event()

    # -- messages handed over by this process's transactions (outbox.HandOver) ----------------------------------

    @property
    def owner(self) -> str:
        return self.worker_id

    @property
    def lease_seconds(self) -> float:
        return self.node.settings.delivery_lease_seconds

    def take(self, rows: list[dict[str, Any]]) -> None:
        """Called after a commit with the outbox rows it inserted, leased to this worker: sent by `_handed_lane`."""
        self._handed.extend(
            Claimed(
                id=row["id"],
                peer=row["peer"],
                seq=row["seq"],
                token=row["token"],
                digest=row["digest"],
                attempts=row["attempts"],
                created_at=row["created_at"],
                queued_at=row["queued_at"],
            )
            for row in rows
        )
        self._handed_ready.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Several lanes claim and deliver concurrently, so one batch's round trip overlaps the next one's claim,
        signing and verification; leases keep the lanes (and other workers) off each other's rows. Messages this
        process commits come to the handed-over lane instead, without a claim (`outbox.HandOver`)."""
        lanes = max(1, self.node.settings.delivery_lanes)
        if self.node.hand_over is None:
            self.node.hand_over = self
        try:
            await asyncio.gather(self._handed_lane(stop, lanes=lanes), *(self._lane(stop) for _ in range(lanes)))
        finally:
            if self.node.hand_over is self:
                self.node.hand_over = None

    async def _handed_lane(self, stop: asyncio.Event, *, lanes: int) -> None:
        """Send what was handed over, whatever has gathered since the last round, in rounds no larger than a claim
        (`TW_DELIVERY_BATCH_SIZE`), up to `lanes` rounds at once (a peer slow to answer holds one round, not all).
        A round that fails, and what is left at stop, stay leased: the claiming lanes take them when it runs out."""
        slots = asyncio.Semaphore(lanes)
        rounds: set[asyncio.Task[None]] = set()

        async def send(rows: list[Claimed]) -> None:
            try:
                await self.send(rows)
            except Exception:
                logger.exception("handed-over round failed", extra={"worker": self.worker_id, "node": self.node.id})
            finally:
                slots.release()

        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._handed_ready.wait(), 1.0)
                self._handed_ready.clear()
                size = max(1, self.node.settings.delivery_batch_size)
                while self._handed and not stop.is_set():
                    await slots.acquire()  # a free slot first: meanwhile the next round keeps growing
                    rows, self._handed = self._handed[:size], self._handed[size:]  # a round as large as a claim
                    task = asyncio.create_task(send(rows))
                    rounds.add(task)
                    task.add_done_callback(rounds.discard)
        finally:
            if rounds:
                await asyncio.wait(rounds, timeout=5.0)

    async def _lane(self, stop: asyncio.Event) -> None:
        settings = self.node.settings
        while not stop.is_set():
            try:
                await self.heartbeat()
                done = await self.run_once()
            except Exception:
                logger.exception("delivery round failed", extra={"worker": self.worker_id, "node": self.node.id})
                done = 0
            if done == 0:
                await self.node.wait_for_work(settings.worker_poll_seconds)

    async def heartbeat(self) -> None:
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._last_heartbeat < 5:
            return
        self._last_heartbeat = loop_time
        async with unit_of_work(self.node) as session:
            now = clock.utcnow()
            inserted = await session.execute(
                dialect_of(session)
                .insert_ignore(table_of(WorkerHeartbeat))
                .values(worker_id=self.worker_id, seen_at=now)
            )
            if inserted.rowcount == 0:  # type: ignore[attr-defined]
                await session.execute(
                    update(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == self.worker_id).values(seen_at=now)
                )

    async def run_once(self) -> int:
        claimed = await self.claim()
        if not claimed:
            return 0
        await self.send(claimed)
        return len(claimed)

    async def send(self, rows: list[Claimed]) -> None:
        """Post the rows in one batch per peer, at once, then record every outcome in one transaction."""
        by_peer: dict[str, list[Claimed]] = defaultdict(list)
        for row in sorted(rows, key=lambda row: (row.peer, row.seq)):
            by_peer[row.peer].append(row)
        batches = await asyncio.gather(*(self.deliver(peer, batch) for peer, batch in by_peer.items()))
        await self.record([result for batch in batches for result in batch])

    async def claim(self) -> list[Claimed]:
        settings = self.node.settings
        async with unit_of_work(self.node) as session:
            now = clock.utcnow()
            due = (
                select(OutboxMessage.id)
                .where(
                    OutboxMessage.state == "pending",
                    OutboxMessage.next_attempt_at <= now,
                    (OutboxMessage.lease_until.is_(None)) | (OutboxMessage.lease_until < now),
                )
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.peer, OutboxMessage.seq)
                .limit(settings.delivery_batch_size)
                .with_for_update(skip_locked=True)  # PostgreSQL: workers take disjoint rows; SQLite: one at a time
            )
            ids = list((await session.scalars(due)).all())
            if not ids:
                nothing_done(session)  # an idle poll: no commit
                return []
            lease_until = now + timedelta(seconds=settings.delivery_lease_seconds)
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids))
                .values(lease_owner=self.worker_id, lease_until=lease_until)
            )
            rows = await session.execute(
                select(
                    OutboxMessage.id,
                    OutboxMessage.peer,
                    OutboxMessage.seq,
                    OutboxMessage.token,
                    OutboxMessage.digest,
                    OutboxMessage.attempts,
                    OutboxMessage.created_at,
                    OutboxMessage.queued_at,
                )
                .where(OutboxMessage.id.in_(ids))
                .order_by(OutboxMessage.peer, OutboxMessage.seq)
            )
            return [Claimed(**row._asdict()) for row in rows]

    async def deliver(self, peer: str, rows: list[Claimed]) -> list[Result]:
        endpoint = self.node.endpoint_of(peer)
        if endpoint is None:
            return [
                Result(row, "failed", error=f"{peer} is not in the trust list", reason="unknown-peer") for row in rows
            ]
        try:
            response = await self.node.http.post(
                f"{endpoint}/v1/corridor/messages", json={"messages": [row.token for row in rows]}
            )
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
            return [Result(row, "failed", error=f"{reason}: {exc}", reason=reason) for row in rows]
        if response.status_code != 200:
            detail = _problem_detail(response)
            reason = f"http-{response.status_code}"
            return [
                Result(row, "failed", error=f"HTTP {response.status_code}: {detail}", reason=reason) for row in rows
            ]
        try:
            items = response.json()["results"]
            if not isinstance(items, list) or len(items) != len(rows):
                raise ValueError("result count differs from message count")
        except (ValueError, KeyError, TypeError) as exc:
            return [Result(row, "failed", error=f"bad batch response: {exc}", reason="bad-response") for row in rows]
        return [self._interpret(peer, row, item) for row, item in zip(rows, items, strict=True)]

    def _interpret(self, peer: str, row: Claimed, item: Any) -> Result:
        if not isinstance(item, dict):
            return Result(row, "failed", error="bad batch item", reason="bad-response")
        if item.get("receipt") is None:  # a refused message: `{"problem": {...}}`, with `"receipt": null` or without
            problem = item.get("problem") or {}
            reason = str(problem.get("reason") or f"http-{problem.get('status', '?')}")
            return Result(row, "failed", error=str(problem.get("detail") or problem), reason=reason)
        token = str(item["receipt"])
        try:
            receipt = verify_receipt(
                token, trust=self.node.trust, expect_from=peer, message_id=row.id, digest=row.digest
            )
        except ReceiptError as exc:
            return Result(row, "failed", error=f"receipt refused: {exc}", reason="bad-receipt")
        outcome = "rejected" if receipt.status == "rejected" else "delivered"
        return Result(row, outcome, receipt=token, status=receipt.status, code=receipt.code, detail=receipt.detail)

    async def record(self, results: list[Result]) -> None:
        """Store receipts and failures. Receipts are logged and counted only for rows this call finished: a worker
        whose lease ran out while it was still waiting may come back with a receipt another worker already stored."""
        metrics = self.node.metrics
        async with unit_of_work(self.node) as session:
            now = clock.utcnow()
            finished: dict[str, Result] = {}
            for result in results:
                if result.outcome in ("delivered", "rejected"):
                    finished[result.row.id] = result
                else:
                    await self._failed(session, result, now=now)
                    metrics.delivery_failures.labels(peer=result.row.peer, reason=result.reason).inc()
            if not finished:
                return
            rows = [
                {
                    "b_id": result.row.id,
                    "state": result.outcome,
                    "delivered_at": now,
                    "receipt": result.receipt,
                    "receipt_status": result.status,
                    "receipt_code": result.code,
                    "receipt_detail": result.detail,
                }
                for result in finished.values()
            ]
            for message_id in await _finish(session, rows):
                result = finished[message_id]
                row = result.row
                assert result.receipt is not None
                log.record(session, log.LogItem("received", "receipt", row.peer, row.id, digest_of(result.receipt)))
                metrics.deliveries.labels(peer=row.peer, outcome=result.outcome).inc()
                metrics.delivery_latency.labels(peer=row.peer).observe((now - row.created_at).total_seconds())
                if result.outcome == "rejected":
                    logger.warning(
                        "%s rejected message: %s %s",
                        row.peer,
                        result.code,
                        result.detail,
                        extra={"msg_id": row.id, "peer": row.peer, "node": self.node.id},
                    )

    async def _failed(self, session: AsyncSession, result: Result, *, now: datetime) -> None:
        settings = self.node.settings
        row = result.row
        attempts = row.attempts + 1
        dead = (now - row.queued_at).total_seconds() >= settings.dead_after_seconds
        delay = backoff(attempts=attempts - 1, base=settings.backoff_base_seconds, cap=settings.backoff_cap_seconds)
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_error": (result.error or "")[:2000],
            "lease_owner": None,
            "lease_until": None,
            "next_attempt_at": now + timedelta(seconds=delay),
        }
        if dead:
            values["state"] = "dead"
            self.node.metrics.deliveries.labels(peer=row.peer, outcome="dead").inc()
            logger.error(
                "dead-lettered message after %d attempts: %s",
                attempts,
                result.error,
                extra={"msg_id": row.id, "peer": row.peer, "node": self.node.id},
            )
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row.id, OutboxMessage.lease_owner == self.worker_id)
            .values(**values)
        )


async def _finish(session: AsyncSession, rows: list[dict[str, Any]]) -> list[str]:
    """Mark rows delivered/rejected with their receipts; returns the ids actually finished by this call.

    On PostgreSQL one `UPDATE ... FROM unnest(arrays) RETURNING` per batch (executemany costs a round trip per row
    there); SQLite, which holds its one write lock for the whole transaction, reads which are still pending and
    updates those with one executemany."""
    if dialect_of(session).arrays:
        result = await session.execute(
            _FINISH_POSTGRES,
            {
                "delivered_at": rows[0]["delivered_at"],
                **{column: [row[key] for row in rows] for column, key in _FINISH_ARRAYS.items()},
            },
        )
        return [str(message_id) for message_id in result.scalars()]
    # SQLite: the transaction holds the database's one write lock (BEGIN IMMEDIATE), so what is still pending
    # cannot change between this read and the update: two statements whatever the batch size.
    table = table_of(OutboxMessage)
    pending = await session.scalars(
        select(table.c.id).where(table.c.id.in_([row["b_id"] for row in rows]), table.c.state == "pending")
    )
    done = {str(message_id) for message_id in pending}
    finishing = [row for row in rows if row["b_id"] in done]
    if finishing:
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                state=bindparam("state"),
                delivered_at=bindparam("delivered_at"),
                receipt=bindparam("receipt"),
                receipt_status=bindparam("receipt_status"),
                receipt_code=bindparam("receipt_code"),
                receipt_detail=bindparam("receipt_detail"),
                lease_owner=None,
                lease_until=None,
            ),
            finishing,
        )
    return [str(row["b_id"]) for row in finishing]


# One statement for the whole batch, its shape independent of the batch size (so prepared once by asyncpg).
_FINISH_POSTGRES = text(
    """
    UPDATE outbox AS o
       SET state = r.state, delivered_at = :delivered_at, receipt = r.receipt, receipt_status = r.receipt_status,
           receipt_code = r.receipt_code, receipt_detail = r.receipt_detail, lease_owner = NULL, lease_until = NULL
      FROM unnest(CAST(:ids AS text[]), CAST(:states AS text[]), CAST(:receipts AS text[]),
                  CAST(:statuses AS text[]), CAST(:codes AS text[]), CAST(:details AS text[]))
           AS r(id, state, receipt, receipt_status, receipt_code, receipt_detail)
     WHERE o.id = r.id AND o.state = 'pending'
    RETURNING o.id
    """
).bindparams(bindparam("delivered_at", type_=UTCDateTime()))
_FINISH_ARRAYS = {
    "ids": "b_id",
    "states": "state",
    "receipts": "receipt",
    "statuses": "receipt_status",
    "codes": "receipt_code",
    "details": "receipt_detail",
}


def _problem_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)[:300]
    return str(body)[:300]
