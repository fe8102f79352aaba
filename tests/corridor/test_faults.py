"""Faults with real processes on PostgreSQL: power cuts (SIGKILL) at either end, and two workers on one database.

In every story KZ queues 500 pings to UZ in one transaction (`POST /v1/admin/pings` with `count`), something goes
wrong, and in the end UZ has applied each of the 500 exactly once and KZ holds a verified receipt for each. Resends
after a kill are allowed (the receiver answers them with the stored receipt); applying twice is not.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text

from transit_window.db.engine import create_engine

if TYPE_CHECKING:
    from tests.corridor.conftest import ProcessCorridor, StartCorridor

pytestmark = pytest.mark.corridor

COUNT = 500
# Small batches make a delivery of 500 take many round trips, so a kill lands in the middle of it.
SMALL_BATCHES = {"TW_DELIVERY_BATCH_SIZE": "10"}


def queue_pings(corridor: ProcessCorridor) -> None:
    result = corridor.admin("KZ", "POST", "/v1/admin/pings", json={"to": ["UZ"], "count": COUNT, "note": "drill"})
    assert result["sent"] == COUNT


def uz_has_received_some(corridor: ProcessCorridor) -> bool:
    return int(corridor.status("UZ")["inbound"].get("KZ", {}).get("max_seen", 0)) > 0


def pending_pings(corridor: ProcessCorridor) -> int:
    return int(
        corridor.scalar(
            "KZ", "SELECT count(*) FROM outbox WHERE peer = 'UZ' AND type = 'corridor.ping' AND state = 'pending'"
        )
    )


def received_pings(corridor: ProcessCorridor) -> int:
    return int(corridor.scalar("UZ", "SELECT count(*) FROM inbox WHERE iss = 'KZ' AND type = 'corridor.ping'"))


def retrying(corridor: ProcessCorridor) -> int:
    """KZ's pings to UZ waiting for another attempt after a failed one."""
    return int(
        corridor.scalar("KZ", "SELECT count(*) FROM outbox WHERE peer = 'UZ' AND state = 'pending' AND attempts > 0")
    )


def test_receiver_killed_mid_delivery_applies_all_500_exactly_once_after_restart(
    start_corridor: StartCorridor,
) -> None:
    """UZ loses power (SIGKILL) while KZ is delivering 500 pings to it. KZ keeps retrying with backoff; once UZ is
    back, every ping is applied once and KZ holds UZ's verified receipt for each."""
    corridor = start_corridor(["KZ", "UZ"], extra_env=SMALL_BATCHES)
    queue_pings(corridor)
    corridor.wait_until("UZ has received the first pings", lambda: uz_has_received_some(corridor), interval=0.02)
    corridor.process("UZ").kill()
    assert not corridor.process("UZ").alive

    applied, left = received_pings(corridor), pending_pings(corridor)
    assert applied < COUNT and left > 0, f"UZ was not killed mid-delivery: it had {applied}, KZ had {left} pending"
    corridor.wait_until("KZ has found UZ unreachable and scheduled retries", lambda: retrying(corridor) > 0)
    assert corridor.pending("KZ", "UZ") > 0  # what the operator sees meanwhile

    corridor.start_node("UZ")
    corridor.wait_until("KZ shows all 500 pings delivered", lambda: corridor.all_delivered("KZ", "UZ", COUNT))
    corridor.assert_delivered_once("KZ", "UZ", count=COUNT)
    assert corridor.counter("UZ", "tw_inbox_messages", outcome="refused") == 0


def test_sender_killed_mid_delivery_delivers_all_500_exactly_once_after_restart(
    start_corridor: StartCorridor,
) -> None:
    """KZ loses power (SIGKILL) half-way through delivering 500 pings, possibly after UZ applied a batch whose
    receipts KZ never stored. Restarted, KZ takes over its dead worker's rows when their leases expire (5 s) and
    finishes; UZ answers anything it already had with the stored receipt instead of applying it again."""
    corridor = start_corridor(["KZ", "UZ"], extra_env={**SMALL_BATCHES, "TW_DELIVERY_LEASE_SECONDS": "5"})
    queue_pings(corridor)
    corridor.wait_until("UZ has received the first pings", lambda: uz_has_received_some(corridor), interval=0.02)
    corridor.process("KZ").kill()
    assert not corridor.process("KZ").alive

    applied, left = received_pings(corridor), pending_pings(corridor)
    assert applied < COUNT and left > 0, f"KZ was not killed mid-delivery: UZ had {applied}, KZ had {left} pending"

    corridor.start_node("KZ")
    corridor.wait_until("KZ shows all 500 pings delivered", lambda: corridor.all_delivered("KZ", "UZ", COUNT))
    corridor.assert_delivered_once("KZ", "UZ", count=COUNT)
    assert corridor.counter("UZ", "tw_inbox_messages", outcome="refused") == 0


async def _lease_owners_until_delivered(database_url: str, *, timeout: float) -> set[str]:
    """Sample who holds leases on KZ's outbox while the pings are being delivered (lease_owner is cleared after)."""
    engine = create_engine(database_url, pool_size=1)
    owners: set[str] = set()
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        async with engine.connect() as connection:
            while asyncio.get_running_loop().time() < deadline:
                rows = await connection.execute(
                    text("SELECT DISTINCT lease_owner FROM outbox WHERE lease_owner IS NOT NULL")
                )
                owners.update(row[0] for row in rows)
                pending = await connection.scalar(
                    text("SELECT count(*) FROM outbox WHERE type = 'corridor.ping' AND state = 'pending'")
                )
                await connection.commit()
                if pending == 0:
                    break
                await asyncio.sleep(0.005)
    finally:
        await engine.dispose()
    return owners


def test_two_workers_on_one_postgresql_never_deliver_the_same_row_twice(start_corridor: StartCorridor) -> None:
    """KZ scales out: its API runs without a worker and two `transit-window worker` processes share its PostgreSQL.
    Both take part in delivering 500 pings, and UZ never receives any of them twice (no replay at all)."""
    corridor = start_corridor(
        ["KZ", "UZ"],
        extra_env={"TW_DELIVERY_BATCH_SIZE": "25"},
        node_env={
            "KZ": {"TW_RUN_WORKER": "false"},
            # Every copy UZ holds must come from a push by one of KZ's workers: a gap pull could fetch a message a
            # worker is about to push, and UZ would rightly answer that push as a replay.
            "UZ": {"TW_GAP_PULL_SECONDS": "3600"},
        },
        run=["UZ"],
    )
    workers = [corridor.add_worker("KZ", "worker-1"), corridor.add_worker("KZ", "worker-2")]
    corridor.start_node("KZ")  # ready once a worker has reported its heartbeat
    expected = {f"KZ:{socket.gethostname()}:{worker.process.pid}" for worker in workers if worker.process}
    corridor.wait_until(
        "both workers have reported a heartbeat",
        lambda: {row[0] for row in corridor.query("KZ", "SELECT worker_id FROM worker_heartbeats")} >= expected,
    )

    queue_pings(corridor)
    owners = asyncio.run(_lease_owners_until_delivered(corridor.local.spec("KZ").database_url, timeout=45))
    assert all(worker.alive for worker in workers), corridor.logs()
    corridor.wait_until("KZ shows all 500 pings delivered", lambda: corridor.all_delivered("KZ", "UZ", COUNT))

    assert owners == expected, f"lease owners seen {owners}, workers {expected}"
    corridor.assert_delivered_once("KZ", "UZ", count=COUNT)
    assert corridor.counter("UZ", "tw_inbox_messages", outcome="replayed") == 0
    assert corridor.counter("UZ", "tw_inbox_messages", outcome="accepted") >= COUNT
