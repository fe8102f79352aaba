"""Messages handed over to the delivery worker of the process that committed them (protocol/outbox.HandOver).

With a worker running, a message goes out without a claim: its row is inserted leased to the worker and sent once
the transaction commits, so the sender's database sees the commit that made it and the one that records its
receipt, nothing between. If the hand-over is lost (the process dies right after the commit), the lease runs out
and the claiming lanes deliver the row as after any crash."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from tests.support.inprocess import InProcessCorridor
from tests.support.statements import counting
from transit_window import clock
from transit_window.protocol.delivery import DeliveryWorker
from transit_window.protocol.models import InboxMessage, OutboxMessage


async def _until_delivered(corridor: InProcessCorridor, message_id: str, *, seconds: float = 10.0) -> OutboxMessage:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        async with corridor["KZ"].node.sessionmaker() as session:
            row = await session.get(OutboxMessage, message_id)
            assert row is not None
            if row.state != "pending" or asyncio.get_running_loop().time() > deadline:
                return row
        await asyncio.sleep(0.05)


async def test_a_committed_message_goes_out_without_a_claim(corridor: InProcessCorridor) -> None:
    kz = corridor["KZ"]
    kz.node.settings.worker_poll_seconds = 3600  # the claiming lanes sleep: only the hand-over can send it
    stop = asyncio.Event()
    worker = DeliveryWorker(kz.node, worker_id="kz-hand-over")
    running = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.sleep(0.2)  # the lanes' first (empty) claims and the heartbeat, before counting
        assert kz.node.hand_over is worker
        with counting({"KZ": kz.node.engine}) as tally:
            ids = (await kz.client.post("/v1/admin/pings", json={"to": ["UZ"]}, headers=kz.admin)).json()["messages"]
            row = await _until_delivered(corridor, ids["UZ"])
        assert (row.state, row.receipt_status, row.lease_owner) == ("delivered", "accepted", None)
        claims = [sql for sql in tally["KZ"].sql if "FROM outbox" in sql and "SKIP LOCKED" in sql.upper()]
        assert claims == [], tally["KZ"]
        heartbeats = [sql for sql in tally["KZ"].sql if "INSERT INTO worker_heartbeats" in sql]  # each its own commit
        # the request's commit and the receipt's, nothing between
        assert tally["KZ"].commits == 2 + len(heartbeats), tally["KZ"]
    finally:
        stop.set()
        kz.node.wake_worker()  # the claiming lanes wait for work between rounds
        await asyncio.wait_for(running, 10)
    assert kz.node.hand_over is None  # a stopped worker takes nothing more


async def test_a_hand_over_lost_with_its_process_is_delivered_when_the_lease_runs_out(
    corridor: InProcessCorridor,
) -> None:
    kz, uz = corridor["KZ"], corridor["UZ"]

    class Lost:
        """A worker that dies right after the commit: it takes the rows and never sends them."""

        owner = "kz-died"
        lease_seconds = 30.0
        taken: list[dict[str, Any]] = []

        def take(self, rows: list[dict[str, Any]]) -> None:
            self.taken.extend(rows)

    kz.node.hand_over = Lost()
    try:
        ids = (await kz.client.post("/v1/admin/pings", json={"to": ["UZ"]}, headers=kz.admin)).json()["messages"]
    finally:
        kz.node.hand_over = None
    assert [row["id"] for row in Lost.taken] == [ids["UZ"]]
    assert await kz.deliver() == 0  # leased to the dead worker: no lane takes it yet
    async with kz.node.sessionmaker() as session:
        row = await session.get(OutboxMessage, ids["UZ"])
        assert row is not None and (row.state, row.lease_owner) == ("pending", "kz-died")
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == ids["UZ"])
            .values(lease_until=clock.utcnow() - timedelta(seconds=1))
        )  # the lease has run out
        await session.commit()
    assert await kz.deliver() == 1
    row = await _until_delivered(corridor, ids["UZ"], seconds=0)
    assert (row.state, row.receipt_status) == ("delivered", "accepted")
    async with uz.node.sessionmaker() as session:
        assert await session.scalar(select(InboxMessage.status).where(InboxMessage.id == ids["UZ"])) == "accepted"
