"""The webhook worker: claims due deliveries, posts them signed (Standard Webhooks), records the outcome.

The queue works like the corridor outbox (`protocol/delivery.py`): claims are leases taken with `FOR UPDATE SKIP
LOCKED` on PostgreSQL, failures back off exponentially with full jitter (plus the base delay, so a receiver that is
down is not called again at once). Events of one MRN go to a subscription one at a time and in the order they were
queued: a delivery is claimed only when no earlier delivery of its subscription and MRN is still outstanding.

A subscription whose receiver fails `TW_WEBHOOK_MAX_FAILURES` attempts in a row is disabled, with the reason kept on
it; its deliveries are held, not dropped.

Deliveries are made in the transaction that records their event: `seal_deliveries` (a sealer, run right before its
COMMIT) renders each body from the tracking event (the timeline's vocabulary, each event as recorded) and inserts all
of the transaction's deliveries in one statement, so every attempt, retry and redelivery sends the same bytes. Where
a webhook worker runs in the same process, the deliveries that may go at once (the first of their subscription and
MRN, nothing earlier outstanding) are inserted leased to it and handed over after the commit: sent without a claim.
Lost with a dying process, they wait for the lease to run out and a claim, like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import httpx
import orjson
from sqlalchemy import bindparam, event, or_, select, update
from sqlalchemy.orm import Session, aliased

from transit_window import __version__, clock
from transit_window.codes.of_node import offices_of
from transit_window.db import bulk
from transit_window.db.base import table_of
from transit_window.db.session import nothing_done, unit_of_work
from transit_window.protocol.delivery import backoff
from transit_window.tracking.interface import TrackingEvent, render
from transit_window.webhooks import service, signing
from transit_window.webhooks.models import WebhookDelivery, WebhookSubscription

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.protocol.node import Node

logger = logging.getLogger(__name__)
EXCERPT_BYTES = 300


@dataclass(frozen=True, slots=True)
class Claimed:
    id: str
    subscription_id: str
    url: str
    keys: list[str]
    body: str
    attempts: int
    failures: int  # the subscription's consecutive failures when claimed


@dataclass(slots=True)
class Result:
    row: Claimed
    outcome: str  # delivered | failed | refused
    at: datetime
    status: int | None = None
    error: str | None = None


_RUNNING: WeakKeyDictionary[Node, WebhookWorker] = WeakKeyDictionary()  # the worker running in this process, per node


async def seal_deliveries(session: AsyncSession, node: Node) -> Callable[[], None] | None:
    """Insert the deliveries this transaction queued (`service.enqueue_for_event`), bodies rendered, in one
    statement; hand those that may go at once to this process's worker. Registered as a sealer at composition."""
    queued: list[service.NewDelivery] = session.info.pop(service.NEW_DELIVERIES, [])
    if not queued:
        return None
    rows = [item.values for item in queued]
    known = {item.event.id: item.event for item in queued if item.event is not None}
    unknown = sorted({row["event_id"] for row in rows} - known.keys())
    if unknown:  # an event recorded by code that did not pass it along: read it
        known.update(
            (event.id, event)
            for event in await session.scalars(select(TrackingEvent).where(TrackingEvent.id.in_(unknown)))
        )
    events = list(known.values())
    for row, body in zip(rows, _bodies(rows, events, await _render(session, node, events)), strict=True):
        row["body"] = body
    worker = _RUNNING.get(node)
    handed = _leased_to(worker, queued) if worker is not None else []
    await bulk.insert_rows(session, table_of(WebhookDelivery), rows)
    if worker is None or not handed:
        return None
    return lambda: worker.take(handed)


async def _render(session: AsyncSession, node: Node, events: list[TrackingEvent]) -> list[Any]:
    return await render(session, events, node_id=node.id, offices=offices_of(node), each_as_recorded=True)


def _bodies(rows: list[dict[str, Any]], events: list[TrackingEvent], shown: list[Any]) -> list[str]:
    """The body of each row, in order: a Standard Webhooks payload of its event as shown."""
    by_id = {event.id: (event, view) for event, view in zip(events, shown, strict=True)}
    bodies: list[str] = []
    for row in rows:
        payload: dict[str, Any] = {"type": row["event_type"], "timestamp": clock.isoformat(row["created_at"])}
        if row["event_id"] in by_id:
            event, view = by_id[row["event_id"]]
            payload["timestamp"] = clock.isoformat(event.event_time)
            payload["data"] = view.model_dump(mode="json", by_alias=True)
        else:  # events are append-only; should one be gone all the same, say which it was
            payload["data"] = {"eventID": f"urn:uuid:{row['event_id']}", "mrn": row["mrn"]}
        bodies.append(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode())  # JSONB reorders keys
    return bodies


def _leased_to(worker: WebhookWorker, queued: list[service.NewDelivery]) -> list[Claimed]:
    """Lease to `worker` the first pending delivery of each subscription and MRN that has nothing earlier
    outstanding (as `enqueue_for_event` found when it queued it); the others keep their turn and go by claim."""
    pending = [item for item in queued if item.values["state"] == "pending"]
    if not pending:
        return []
    waiting = {(item.values["subscription_id"], item.values["mrn"]) for item in pending if item.waiting}
    lease_until = clock.utcnow() + timedelta(seconds=worker.node.settings.webhook_lease_seconds)
    handed: list[Claimed] = []
    for item in sorted(pending, key=lambda item: str(item.values["id"])):
        row = item.values
        pair = (row["subscription_id"], row["mrn"])
        if pair in waiting:
            continue
        waiting.add(pair)  # a later one of the same pair waits for this one
        row.update(lease_owner=worker.worker_id, lease_until=lease_until)
        handed.append(
            Claimed(
                id=row["id"],
                subscription_id=row["subscription_id"],
                url=item.url,
                keys=item.keys,
                body=row["body"],
                attempts=0,
                failures=item.failures,
            )
        )
    return handed


class WebhookWorker:
    def __init__(self, node: Node, *, worker_id: str) -> None:
        self.node = node
        self.worker_id = worker_id
        self._handed: list[Claimed] = []
        self._handed_ready = asyncio.Event()
        settings = node.settings
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.webhook_timeout_seconds, connect=min(5.0, settings.webhook_timeout_seconds)),
            follow_redirects=False,  # a redirect is an answer, not a new target to call
            trust_env=False,  # no proxies from the environment: the checked address is the one called
            limits=httpx.Limits(max_connections=settings.webhook_concurrency, max_keepalive_connections=8),
        )
        self._slots = asyncio.Semaphore(max(1, settings.webhook_concurrency))

    async def aclose(self) -> None:
        await self.client.aclose()

    def take(self, rows: list[Claimed]) -> None:
        """After a commit: deliveries leased to this worker (`seal_deliveries`), sent by `_handed_lane`."""
        self._handed.extend(rows)
        self._handed_ready.set()

    async def _handed_lane(self, stop: asyncio.Event) -> None:
        """Attempt what was handed over, in rounds no larger than a claim; outcomes recorded as a claim's are. A
        round that fails, and what is left at stop, stay leased until the lease runs out and a claim takes them."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._handed_ready.wait(), 1.0)
            self._handed_ready.clear()
            size = max(1, self.node.settings.webhook_batch_size)
            while self._handed and not stop.is_set():
                rows, self._handed = self._handed[:size], self._handed[size:]
                try:
                    results = await asyncio.gather(*(self.attempt(row) for row in rows))
                    await self.record(list(results))
                except Exception:
                    logger.exception(
                        "handed-over webhook round failed", extra={"worker": self.worker_id, "node": self.node.id}
                    )

    async def run(self, stop: asyncio.Event) -> None:
        _RUNNING.setdefault(self.node, self)
        handed = asyncio.create_task(self._handed_lane(stop))
        try:
            while not stop.is_set():
                try:
                    done = await self.run_once()
                except Exception:
                    logger.exception("webhook round failed", extra={"worker": self.worker_id, "node": self.node.id})
                    done = 0
                if done == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.node.settings.webhook_poll_seconds)
        finally:
            if _RUNNING.get(self.node) is self:
                del _RUNNING[self.node]
            await handed
            await self.aclose()

    async def run_once(self) -> int:
        claimed = await self.claim()
        if not claimed:
            return 0
        results = await asyncio.gather(*(self.attempt(row) for row in claimed))
        await self.record(list(results))
        return len(claimed)

    async def claim(self) -> list[Claimed]:
        settings = self.node.settings
        delivery = WebhookDelivery
        earlier = aliased(WebhookDelivery)
        async with unit_of_work(self.node) as session:
            now = clock.utcnow()
            blocked = (
                select(earlier.id)
                .where(
                    earlier.subscription_id == delivery.subscription_id,
                    earlier.mrn == delivery.mrn,
                    earlier.state.in_(("pending", "failed")),
                    earlier.id < delivery.id,
                )
                .exists()
            )
            due = (
                select(delivery.id)
                .join(WebhookSubscription, WebhookSubscription.id == delivery.subscription_id)
                .where(
                    delivery.state == "pending",
                    delivery.next_attempt_at <= now,
                    or_(delivery.lease_until.is_(None), delivery.lease_until < now),
                    WebhookSubscription.active,
                    ~blocked,
                )
                .order_by(delivery.next_attempt_at, delivery.id)
                .limit(settings.webhook_batch_size)
            )
            due = due.with_for_update(skip_locked=True, of=delivery)  # rendered on PostgreSQL only
            ids = list((await session.scalars(due)).all())
            if not ids:
                nothing_done(session)  # an idle poll: no commit
                return []
            await session.execute(
                update(delivery)
                .where(delivery.id.in_(ids))
                .values(lease_owner=self.worker_id, lease_until=now + timedelta(seconds=settings.webhook_lease_seconds))
            )
            rows = (
                await session.execute(
                    select(delivery, WebhookSubscription)
                    .join(WebhookSubscription, WebhookSubscription.id == delivery.subscription_id)
                    .where(delivery.id.in_(ids))
                    .order_by(delivery.id)
                )
            ).all()
            bodies = await self._render_missing(session, [row[0] for row in rows if row[0].body is None])
            return [
                Claimed(
                    id=row[0].id,
                    subscription_id=row[1].id,
                    url=row[1].url,
                    keys=service.signing_keys(row[1]),
                    body=row[0].body or bodies.get(row[0].id, ""),
                    attempts=row[0].attempts,
                    failures=row[1].consecutive_failures,
                )
                for row in rows
            ]

    async def _render_missing(self, session: AsyncSession, deliveries: list[WebhookDelivery]) -> dict[str, str]:
        """Freeze the body of a row that has none (queued before bodies were rendered with the event: an upgraded
        node's backlog), as `seal_deliveries` would have; stored in one statement (the loaded rows are left
        unchanged, so the ORM writes nothing more)."""
        if not deliveries:
            return {}
        ids = sorted({item.event_id for item in deliveries})
        events = list((await session.scalars(select(TrackingEvent).where(TrackingEvent.id.in_(ids)))).all())
        rows = [
            {
                "id": item.id,
                "event_id": item.event_id,
                "event_type": item.event_type,
                "created_at": item.created_at,
                "mrn": item.mrn,
            }
            for item in deliveries
        ]
        rendered = _bodies(rows, events, await _render(session, self.node, events))
        bodies = {str(row["id"]): body for row, body in zip(rows, rendered, strict=True)}
        frozen = [{"id": delivery_id, "body": body} for delivery_id, body in bodies.items()]
        await bulk.update_rows(session, table_of(WebhookDelivery), frozen, key="id", columns=["body"])
        return bodies

    async def attempt(self, row: Claimed) -> Result:
        async with self._slots:
            settings = self.node.settings
            try:
                target = await service.resolve_target(row.url, allow_private=settings.webhook_allow_private_targets)
            except service.TargetRefused as exc:
                return Result(row, "refused", clock.utcnow(), error=f"target refused: {exc}")
            now = clock.utcnow()
            headers = signing.headers(row.keys, msg_id=row.id, timestamp=int(now.timestamp()), body=row.body)
            headers.update(
                {
                    "content-type": "application/json",
                    "user-agent": f"transit-window/{__version__} webhooks",
                    "host": target.host_header,
                }
            )
            extensions = {"sni_hostname": target.server_name} if target.url.startswith("https:") else {}
            try:
                async with self.client.stream(
                    "POST", target.url, content=row.body.encode(), headers=headers, extensions=extensions
                ) as response:
                    excerpt = await _excerpt(response)
            except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
                return Result(row, "failed", now, error=f"{type(exc).__name__}: {exc}"[:2000])
            if 200 <= response.status_code < 300:
                return Result(row, "delivered", now, status=response.status_code)
            return Result(
                row, "failed", now, status=response.status_code, error=f"HTTP {response.status_code}: {excerpt}"
            )

    async def record(self, results: list[Result]) -> None:
        """A round's outcomes in one transaction and a fixed number of statements, whatever its size: which rows are
        still this worker's (locked), one UPDATE per outcome for all its rows (db/bulk.py), and the subscriptions'
        failure counts (an executemany per subscription that failed: rare). A lease that ran out while the receiver
        answered leaves the row to whoever holds it now."""
        if not results:
            return
        settings = self.node.settings
        metrics = self.node.metrics
        async with unit_of_work(self.node) as session:
            now = clock.utcnow()
            table = table_of(WebhookDelivery)
            mine_now = (
                select(table.c.id)
                .where(
                    table.c.id.in_([result.row.id for result in results]),
                    table.c.lease_owner == self.worker_id,
                    table.c.state == "pending",
                )
                .with_for_update()  # PostgreSQL; SQLite's transaction already holds the write lock
            )
            still_mine = set((await session.scalars(mine_now)).all())
            delivered, failed = [], []
            for result in results:
                metrics.webhook_deliveries.labels(outcome=result.outcome).inc()
                if result.row.id not in still_mine:
                    continue
                values = {
                    "id": result.row.id,
                    "attempts": result.row.attempts + 1,
                    "last_attempt_at": result.at,
                    "response_status": result.status,
                }
                if result.outcome == "delivered":
                    delivered.append(values)
                else:
                    delay = backoff(
                        attempts=result.row.attempts,
                        base=settings.webhook_backoff_base_seconds,
                        cap=settings.webhook_backoff_cap_seconds,
                    )
                    failed.append(
                        {**values, "last_error": result.error, "next_attempt_at": now + timedelta(seconds=delay)}
                    )
            released = {"lease_owner": None, "lease_until": None}
            shared = ["attempts", "last_attempt_at", "response_status"]
            await bulk.update_rows(
                session,
                table,
                delivered,
                key="id",
                columns=shared,
                fixed={"state": "delivered", "delivered_at": now, "last_error": None, **released},
            )
            await bulk.update_rows(
                session, table, failed, key="id", columns=[*shared, "last_error", "next_attempt_at"], fixed=released
            )
            await self._count_failures(session, results, still_mine=still_mine)

    async def _count_failures(self, session: AsyncSession, results: list[Result], *, still_mine: set[str]) -> None:
        """A success resets its subscription's run of failures, each failure adds one; the reset only where there
        is a count to reset (it is nearly always 0). Then disable what reached the limit."""
        reset = {
            r.row.subscription_id
            for r in results
            if r.outcome == "delivered" and r.row.failures and r.row.id in still_mine
        }
        added: dict[str, int] = {}
        last_failure: dict[str, Result] = {}
        for result in results:
            if result.outcome != "delivered" and result.row.id in still_mine:
                added[result.row.subscription_id] = added.get(result.row.subscription_id, 0) + 1
                last_failure[result.row.subscription_id] = result
        subscriptions = table_of(WebhookSubscription)
        if reset:
            await session.execute(
                update(subscriptions).where(subscriptions.c.id.in_(sorted(reset))).values(consecutive_failures=0)
            )
        if added:
            await session.execute(
                update(subscriptions)
                .where(subscriptions.c.id == bindparam("b_id"))
                .values(consecutive_failures=subscriptions.c.consecutive_failures + bindparam("added")),
                [{"b_id": subscription, "added": count} for subscription, count in sorted(added.items())],
            )
            await self._disable_failing(session, last_failure)

    async def _disable_failing(self, session: AsyncSession, failed: dict[str, Result]) -> None:
        limit = self.node.settings.webhook_max_failures
        rows = await session.execute(
            select(WebhookSubscription.id, WebhookSubscription.consecutive_failures).where(
                WebhookSubscription.id.in_(sorted(failed)),
                WebhookSubscription.active,
                WebhookSubscription.consecutive_failures >= limit,
            )
        )
        for subscription_id, failures in rows.all():
            last = failed[subscription_id]
            reason = f"disabled after {failures} consecutive failed attempts; the last: {last.error}"
            await service.disable(session, subscription_id, reason=reason)
            logger.warning(
                "webhook subscription disabled: %s",
                reason,
                extra={"subscription": subscription_id, "node": self.node.id},
            )


async def _excerpt(response: httpx.Response) -> str:
    """The start of the receiver's answer (for the delivery log), without reading a large body."""
    chunk = b""
    async for part in response.aiter_raw():
        chunk += part
        if len(chunk) >= EXCERPT_BYTES:
            break
    return chunk[:EXCERPT_BYTES].decode("utf-8", "replace").strip()


async def deliver_due(node: Node, *, worker_id: str = "webhooks") -> int:
    """Run rounds until nothing is due (tests, the CLI); returns how many attempts were made."""
    worker = WebhookWorker(node, worker_id=worker_id)
    total = 0
    try:
        while (handled := await worker.run_once()) > 0:
            total += handled
    finally:
        await worker.aclose()
    return total


@event.listens_for(Session, "before_commit")
def _refuse_unsealed(session: Session, *_: Any) -> None:
    """A safety net, as for the outbox (protocol/sealing.py): a bare `session.commit()` would drop the deliveries."""
    if not session.in_nested_transaction() and session.info.get(service.NEW_DELIVERIES):
        raise RuntimeError("commit through transit_window.db.session.commit(); webhook deliveries are queued")
