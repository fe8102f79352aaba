"""Delivery: outbox → batch POST → verified receipts, retries with backoff, dead letters, sequence gaps."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests.support.inprocess import InProcessCorridor
from transit_window import clock
from transit_window.protocol.models import InboxMessage, OutboxMessage


async def test_ping_is_delivered_and_receipted_both_ways(corridor: InProcessCorridor) -> None:
    kz, uz = corridor["KZ"], corridor["UZ"]
    sent = (await kz.client.post("/v1/admin/pings", json={"to": ["UZ"]}, headers=kz.admin)).json()["messages"]
    back = (await uz.client.post("/v1/admin/pings", json={"to": ["KZ"]}, headers=uz.admin)).json()["messages"]

    assert await corridor.deliver_all() >= 2

    async with kz.node.sessionmaker() as session:
        row = await session.get(OutboxMessage, sent["UZ"])
        assert row is not None
        assert (row.state, row.receipt_status) == ("delivered", "accepted")
        received = await session.scalar(select(InboxMessage).where(InboxMessage.id == back["KZ"]))
        assert received is not None and received.status == "accepted"
    async with uz.node.sessionmaker() as session:
        row = await session.get(OutboxMessage, back["KZ"])
        assert row is not None and row.state == "delivered"


async def test_unreachable_peer_is_retried_with_backoff_then_delivered(corridor: InProcessCorridor) -> None:
    kz = corridor["KZ"]
    corridor.transport.down.add("uz.corridor.test")
    ids = (await kz.client.post("/v1/admin/pings", json={"to": ["UZ"]}, headers=kz.admin)).json()["messages"]
    await kz.deliver()
    async with kz.node.sessionmaker() as session:
        row = await session.get(OutboxMessage, ids["UZ"])
        assert row is not None
        assert row.state == "pending" and row.attempts == 1
        assert "unreachable" in (row.last_error or "")
        assert row.next_attempt_at >= row.created_at
        row.next_attempt_at = clock.utcnow() - timedelta(seconds=1)
        await session.commit()
    corridor.transport.down.clear()
    await kz.deliver()
    async with kz.node.sessionmaker() as session:
        row = await session.get(OutboxMessage, ids["UZ"])
        assert row is not None and row.state == "delivered" and row.attempts == 1


async def test_message_older_than_the_dead_letter_age_is_dead_and_can_be_retried(corridor: InProcessCorridor) -> None:
    kz = corridor["KZ"]
    corridor.transport.down.add("uz.corridor.test")
    kz.node.settings.dead_after_seconds = 0
    ids = (await kz.client.post("/v1/admin/pings", json={"to": ["UZ"]}, headers=kz.admin)).json()["messages"]
    await kz.deliver()
    dead = (await kz.client.get("/v1/admin/outbox", params={"state": "dead"}, headers=kz.admin)).json()["items"]
    assert [item["id"] for item in dead] == [ids["UZ"]]
    assert "unreachable" in dead[0]["last_error"]

    corridor.transport.down.clear()
    kz.node.settings.dead_after_seconds = 3600
    retried = await kz.client.post("/v1/admin/outbox/retry", json={"state": "dead"}, headers=kz.admin)
    assert retried.json() == {"retried": 1}
    await kz.deliver()
    items = (await kz.client.get("/v1/admin/outbox", headers=kz.admin)).json()["items"]
    assert {item["id"]: item["state"] for item in items} == {ids["UZ"]: "delivered"}
