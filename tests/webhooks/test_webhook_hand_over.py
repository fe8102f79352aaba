"""Webhook deliveries made in the transaction that records their event, and handed to the webhook worker of the
process that committed it (webhooks/delivery.seal_deliveries).

The body is rendered and stored with the row, so whatever sends it sends those bytes. With a worker running, the
first delivery of a subscription and MRN goes out without a claim: the node's database sees the event's commit and
the one that records the outcome, nothing between. A later event of the same MRN waits for it and goes by claim, in
order. A hand-over lost with its process is claimed once the lease runs out."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from tests.support.inprocess import InProcessCorridor
from tests.support.statements import counting
from tests.tracking.conftest import ASHGABAT, client_for
from tests.webhooks.conftest import Receiver, deliver, release, subscribe
from transit_window import clock
from transit_window.db.session import unit_of_work
from transit_window.webhooks import delivery
from transit_window.webhooks.delivery import WebhookWorker
from transit_window.webhooks.models import WebhookDelivery


async def _rows(corridor: InProcessCorridor) -> list[WebhookDelivery]:
    async with corridor["KZ"].node.sessionmaker() as session:
        return list((await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))).all())


async def _until(condition: Any, *, seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _cross(corridor: InProcessCorridor, customs: dict[str, dict[str, str]], mrn: str) -> None:
    body = {"office": "KZZHZ001", "direction": "exit", "at": clock.utcnow().astimezone(ASHGABAT).isoformat()}
    crossed = await corridor["KZ"].client.post(f"/v1/movements/{mrn}/crossings", json=body, headers=customs["KZ"])
    assert crossed.status_code == 201, crossed.text


async def test_an_event_s_delivery_goes_out_from_its_commit_without_a_claim(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str, receiver: Receiver
) -> None:
    del guarantee
    kz = corridor["KZ"]
    mrn = await release(corridor, customs)
    forwarder = await client_for(corridor, "KZ", role="forwarder", party_id="230340000126")
    await subscribe(corridor, forwarder, receiver, "/exit", event_types=["tracking.exit"])
    kz.node.settings.webhook_poll_seconds = 3600  # the claiming loop sleeps: only the hand-over can send
    stop = asyncio.Event()
    worker = WebhookWorker(kz.node, worker_id="kz-webhooks")
    running = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.sleep(0.2)  # the loop's first (empty) claim, before counting
        with counting({"KZ": kz.node.engine}) as tally:
            await _cross(corridor, customs, mrn)

            async def delivered() -> bool:
                return [row.state for row in await _rows(corridor)] == ["delivered"]

            await _until(delivered)
        claims = [sql for sql in tally["KZ"].sql if "FROM webhook_deliveries JOIN" in sql]
        assert claims == [], tally["KZ"]
        assert tally["KZ"].commits == 2, tally["KZ"]  # the crossing's, the outcome's
        [row] = await _rows(corridor)
        assert row.lease_owner is None and row.attempts == 1
        assert [item.body for item in receiver.received] == [row.body.encode()]  # the bytes stored at the event
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)


async def test_a_later_event_of_the_same_movement_waits_for_the_earlier_one(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str, receiver: Receiver
) -> None:
    """The earlier delivery is still out (handed over, not answered): the later one is not handed over but queued,
    and a claim takes it only once the earlier one is done."""
    del guarantee
    kz = corridor["KZ"]
    mrn = await release(corridor, customs)
    forwarder = await client_for(corridor, "KZ", role="forwarder", party_id="230340000126")
    await subscribe(corridor, forwarder, receiver, "/all")
    taken: list[Any] = []

    class Holding:
        """A running worker, as far as the sealer can tell, that does not send yet."""

        worker_id = "kz-holding"
        node = kz.node

        def take(self, rows: list[Any]) -> None:
            taken.extend(rows)

    delivery._RUNNING[kz.node] = Holding()  # type: ignore[assignment]
    try:
        await _cross(corridor, customs, mrn)  # the exit, recorded here: handed over
        await _cross_again(corridor, customs, mrn)  # the entry, recorded here from UZ's message: waits its turn
    finally:
        del delivery._RUNNING[kz.node]
    rows = await _rows(corridor)
    assert [row.id for row in rows][: len(taken)] == [claimed.id for claimed in taken]
    assert len(taken) == 1 and len(rows) >= 2
    assert rows[0].lease_owner == "kz-holding" and all(row.lease_owner is None for row in rows[1:])
    assert await deliver(corridor) == 0  # the earlier one is outstanding: nothing is claimed past it
    async with unit_of_work(kz.node) as session:  # the holder's lease runs out
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == rows[0].id)
            .values(lease_until=clock.utcnow() - timedelta(seconds=1))
        )
    assert await deliver(corridor) == len(rows)
    assert [item.payload["type"] for item in receiver.received] == [row.event_type for row in rows]


async def _cross_again(corridor: InProcessCorridor, customs: dict[str, dict[str, str]], mrn: str) -> None:
    """A second event of the same MRN: the entry into Uzbekistan, recorded on KZ when UZ's message arrives."""
    body = {"office": "UZGIS001", "direction": "entry", "at": clock.utcnow().astimezone(ASHGABAT).isoformat()}
    await corridor.deliver_all()
    crossed = await corridor["UZ"].client.post(f"/v1/movements/{mrn}/crossings", json=body, headers=customs["UZ"])
    assert crossed.status_code == 201, crossed.text
    await corridor.deliver_all()


async def test_a_row_queued_without_a_body_gets_the_same_bytes_at_its_claim(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str, receiver: Receiver
) -> None:
    """A node upgraded with deliveries queued by the old code (no body yet): the claim renders each as the event's
    transaction would have, byte for byte."""
    del guarantee
    mrn = await release(corridor, customs)
    forwarder = await client_for(corridor, "KZ", role="forwarder", party_id="230340000126")
    await subscribe(corridor, forwarder, receiver, "/all")
    await _cross(corridor, customs, mrn)
    await _cross_again(corridor, customs, mrn)
    rendered = {row.id: row.body for row in await _rows(corridor)}
    assert len(rendered) >= 2 and all(rendered.values())
    async with unit_of_work(corridor["KZ"].node) as session:
        await session.execute(update(WebhookDelivery).values(body=None))
    assert await deliver(corridor) == len(rendered)
    sent = {item.headers["webhook-id"]: item.body.decode() for item in receiver.received}
    assert sent == rendered
    assert {row.id: row.body for row in await _rows(corridor)} == rendered
