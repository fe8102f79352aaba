"""What the hot operations cost each node's database, counted: SQL statements and commits (tests/support/
statements.py). A budget is a ceiling written here and in README's Performance section; going over it is a failure
to explain, not to tune away. Rounds (a delivery of N messages with their receipts, an inbound batch of N applied,
a webhook round of N deliveries, a batch of N e-seal pings) cost the same for 50 as for 5, give or take a small
constant: their statements do not grow with the batch.

Counts, never timings, so they hold on any machine. SQLite's counts include its `BEGIN IMMEDIATE` (sent as a
statement); asyncpg's BEGIN is not a cursor execution, so PostgreSQL's do not. The clients are known to the node
(clients/cache.py) when an operation is counted, as in steady traffic: a client's first request costs one more.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.declarations.conftest import GRN, declaration
from tests.support.inprocess import InProcessCorridor
from tests.support.papers import provide_papers
from tests.support.statements import Tally, counting
from tests.tracking.conftest import ASHGABAT, client_for
from tests.webhooks.conftest import Receiver, deliver, subscribe
from transit_window import clock

# Statements of one operation on the node that does it, by dialect; and its commits.
BUDGETS: dict[str, dict[str, int]] = {
    "declare": {"sqlite": 6, "postgresql": 4},
    "release": {"sqlite": 20, "postgresql": 19},
    "release applied by a peer": {"sqlite": 22, "postgresql": 21},
    "crossing": {"sqlite": 12, "postgresql": 11},
    "arrival": {"sqlite": 13, "postgresql": 12},
}
COMMITS = {"declare": 1, "release": 1, "crossing": 1, "arrival": 1, "release applied by a peer": 1}
# Rounds: the statements of a round of 5 (a round of 50 may cost GROWTH more), and its commits.
ROUND_BUDGETS: dict[str, dict[str, int]] = {
    "delivery round": {"sqlite": 12, "postgresql": 7},
    "inbound batch": {"sqlite": 7, "postgresql": 5},
    "webhook round": {"sqlite": 9, "postgresql": 6},
    "ping batch": {"sqlite": 9, "postgresql": 7},
    "page of movements": {"sqlite": 4, "postgresql": 3},
    "page of expected movements": {"sqlite": 3, "postgresql": 2},
    "page of consignments": {"sqlite": 4, "postgresql": 3},
}
ROUND_COMMITS = {
    "delivery round": 2,
    "inbound batch": 1,
    "webhook round": 2,
    "ping batch": 1,
    "page of movements": 1,
    "page of expected movements": 1,
    "page of consignments": 1,
}
GROWTH = 2  # statements a round of 50 may cost beyond a round of 5


def _engines(corridor: InProcessCorridor) -> dict[str, Any]:
    return {node: entry.node.engine for node, entry in corridor.nodes.items()}


def _shown(*figures: object) -> None:
    """`TW_SHOW_BUDGETS=1 pytest tests/budgets -s` prints what each operation cost, to set a budget from."""
    if os.environ.get("TW_SHOW_BUDGETS"):
        print("measured:", *figures)


def _within(operation: str, tally: Tally, *, dialect: str) -> None:
    _shown(dialect, operation, f"{tally.statements} statements", f"{tally.commits} commits")
    if os.environ.get("TW_SHOW_BUDGETS") == "sql":
        print(tally)
    statements = BUDGETS[operation][dialect]
    assert tally.statements <= statements, f"{operation} over its budget of {statements}: {tally}"
    assert tally.commits <= COMMITS[operation], f"{operation} over its budget of {COMMITS[operation]} commits: {tally}"


def _round(operation: str, small: Tally, large: Tally, *, dialect: str) -> None:
    _shown(dialect, operation, f"{small.statements} → {large.statements} statements", f"{small.commits} commits")
    statements = ROUND_BUDGETS[operation][dialect]
    assert small.statements <= statements, f"{operation} of 5 over its budget of {statements}: {small}"
    assert large.statements <= small.statements + GROWTH, f"{operation} grows with the batch: 5 → {small}, 50 → {large}"
    for tally in (small, large):
        assert tally.commits <= ROUND_COMMITS[operation], f"{operation}: {tally}"


async def test_a_movement_step_by_step(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str, dialect: str
) -> None:
    del guarantee
    kz, uz, tm = corridor["KZ"], corridor["UZ"], corridor["TM"]
    with counting(_engines(corridor)) as tally:
        created = await kz.client.post("/v1/declarations", json=declaration(), headers=customs["KZ"])
    assert created.status_code == 201, created.text
    _within("declare", tally["KZ"], dialect=dialect)
    mrn = created.json()["mrn"]

    with counting(_engines(corridor)) as tally:
        released = await kz.client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])
    assert released.status_code == 200, released.text
    _within("release", tally["KZ"], dialect=dialect)

    with counting(_engines(corridor)) as tally:
        await kz.deliver()
    _within("release applied by a peer", tally["UZ"], dialect=dialect)
    await corridor.deliver_all()

    at = clock.utcnow().astimezone(ASHGABAT).isoformat()
    with counting(_engines(corridor)) as tally:
        crossed = await kz.client.post(
            f"/v1/movements/{mrn}/crossings",
            json={"office": "KZZHZ001", "direction": "exit", "at": at},
            headers=customs["KZ"],
        )
    assert crossed.status_code == 201, crossed.text
    _within("crossing", tally["KZ"], dialect=dialect)
    await corridor.deliver_all()
    for node, office, direction in (
        ("UZ", "UZGIS001", "entry"),
        ("UZ", "UZALT001", "exit"),
        ("TM", "TMFAR001", "entry"),
    ):
        body = {"office": office, "direction": direction, "at": clock.utcnow().astimezone(ASHGABAT).isoformat()}
        crossed = await corridor[node].client.post(f"/v1/movements/{mrn}/crossings", json=body, headers=customs[node])
        assert crossed.status_code == 201, crossed.text
        await corridor.deliver_all()

    at = clock.utcnow().astimezone(ASHGABAT).isoformat()
    with counting(_engines(corridor)) as tally:
        arrived = await tm.client.post(
            f"/v1/movements/{mrn}/arrival", json={"office": "TMASB001", "at": at}, headers=customs["TM"]
        )
    assert arrived.status_code == 201, arrived.text
    _within("arrival", tally["TM"], dialect=dialect)
    del uz


async def test_a_delivery_round_and_an_inbound_batch_do_not_grow_with_the_batch(
    corridor: InProcessCorridor, dialect: str
) -> None:
    kz = corridor["KZ"]
    # UZ's first message from KZ creates its record of KZ's sequence, once per peer for the node's life: the rounds
    # counted are the ones that follow, as they run every day.
    first = await kz.client.post("/v1/admin/pings", json={"to": ["UZ"], "count": 1}, headers=kz.admin)
    assert first.status_code == 200, first.text
    assert await kz.deliver() == 1
    sent: dict[int, Tally] = {}
    applied: dict[int, Tally] = {}
    for size in (5, 50):
        queued = await kz.client.post("/v1/admin/pings", json={"to": ["UZ"], "count": size}, headers=kz.admin)
        assert queued.status_code == 200, queued.text
        with counting(_engines(corridor)) as tally:
            assert await kz.deliver() == size
        sent[size], applied[size] = tally["KZ"], tally["UZ"]
    _round("delivery round", sent[5], sent[50], dialect=dialect)
    _round("inbound batch", applied[5], applied[50], dialect=dialect)


async def test_a_webhook_round_does_not_grow_with_the_number_of_deliveries(
    corridor: InProcessCorridor,
    customs: dict[str, dict[str, str]],
    guarantee: str,
    receiver: Receiver,
    dialect: str,
) -> None:
    """One event to 5 subscriptions, then one to 50: a round of 5 deliveries, then of 50."""
    del guarantee
    kz = corridor["KZ"]
    forwarder = await client_for(corridor, "KZ", role="forwarder", party_id="230340000126")
    mrn = (await kz.client.post("/v1/declarations", json=declaration(), headers=customs["KZ"])).json()["mrn"]
    assert (await kz.client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])).status_code == 200
    await corridor.deliver_all()
    rounds: dict[int, Tally] = {}
    for size, (node, office, direction) in ((5, ("KZ", "KZZHZ001", "exit")), (50, ("UZ", "UZGIS001", "entry"))):
        for index in range(size):
            await subscribe(
                corridor, forwarder, receiver, f"/{direction}-{index}", event_types=[f"tracking.{direction}"]
            )
        body = {"office": office, "direction": direction, "at": clock.utcnow().astimezone(ASHGABAT).isoformat()}
        crossed = await corridor[node].client.post(f"/v1/movements/{mrn}/crossings", json=body, headers=customs[node])
        assert crossed.status_code == 201, crossed.text
        await corridor.deliver_all()
        with counting(_engines(corridor)) as tally:
            assert await deliver(corridor) == size
        rounds[size] = tally["KZ"]
    assert len(receiver.received) == 55 and not receiver.rejected
    _round("webhook round", rounds[5], rounds[50], dialect=dialect)


async def test_a_batch_of_e_seal_pings_does_not_grow_with_the_batch(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str, dialect: str
) -> None:
    del guarantee
    kz = corridor["KZ"]
    mrn = (await kz.client.post("/v1/declarations", json=declaration(), headers=customs["KZ"])).json()["mrn"]
    assert (await kz.client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])).status_code == 200
    await corridor.deliver_all()
    device = await client_for(corridor, "KZ", role="device", party_id=None)
    start = clock.utcnow() - timedelta(hours=6)
    batches: dict[int, Tally] = {}
    sent = 0
    for size in (5, 50):
        pings = [
            {
                "device_id": "ESEAL-KZ-0042",
                "mrn": mrn,
                "time": (start + timedelta(minutes=2 * (sent + index))).isoformat(),
                "lat": round(43.24 - 0.001 * (sent + index), 5),
                "lon": round(76.89 - 0.004 * (sent + index), 5),
                "speed": 60.0,
                "seal_state": "closed",
            }
            for index in range(size)
        ]
        sent += size
        with counting(_engines(corridor)) as tally:
            posted = await kz.client.post("/v1/tracking/positions", json={"pings": pings}, headers=device)
        assert posted.status_code == 200, posted.text
        assert posted.json()["stored"] == size, posted.text
        batches[size] = tally["KZ"]
    _round("ping batch", batches[5], batches[50], dialect=dialect)


async def test_a_page_of_movements_costs_the_same_for_5_as_for_50(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], dialect: str
) -> None:
    """The departure's list, a route post's expected movements and a forwarder's consignments: a query for the
    page, one for its journeys or latest events, one for its tracking codes (not two or three more per movement).
    The movements are written as a release leaves them."""
    kz, uz = corridor["KZ"], corridor["UZ"]
    await _released_movements(corridor, customs, count=50)
    forwarder = await client_for(corridor, "KZ", role="forwarder", party_id="230340000126")
    listed: dict[int, Tally] = {}
    expected: dict[int, Tally] = {}
    followed: dict[int, Tally] = {}
    for entry, headers in ((kz, customs["KZ"]), (uz, customs["UZ"]), (kz, forwarder)):  # known to the node now
        assert (await entry.client.get("/v1/consignments", headers=headers)).status_code == 200
    for size in (5, 50):
        with counting(_engines(corridor)) as tally:
            page = await kz.client.get("/v1/declarations", params={"limit": size}, headers=customs["KZ"])
        assert page.status_code == 200, page.text
        assert len(page.json()["items"]) == size and all(item["tracking_code"] for item in page.json()["items"])
        listed[size] = tally["KZ"]
        with counting(_engines(corridor)) as tally:
            page = await uz.client.get(
                "/v1/movements/expected", params={"office": "UZGIS001", "limit": size}, headers=customs["UZ"]
            )
        assert page.status_code == 200, page.text
        assert len(page.json()["items"]) == size
        expected[size] = tally["UZ"]
        with counting(_engines(corridor)) as tally:
            page = await kz.client.get("/v1/consignments", params={"limit": size}, headers=forwarder)
        assert page.status_code == 200, page.text
        items = page.json()["items"]
        assert len(items) == size and all(item["tracking_code"] and item["last_event"] for item in items)
        followed[size] = tally["KZ"]
    _round("page of consignments", followed[5], followed[50], dialect=dialect)
    _round("page of movements", listed[5], listed[50], dialect=dialect)
    _round("page of expected movements", expected[5], expected[50], dialect=dialect)


async def _released_movements(corridor: InProcessCorridor, customs: dict[str, dict[str, str]], *, count: int) -> None:
    """`count` movements declared and released at KZ on one guarantee large enough, delivered along the route."""
    kz = corridor["KZ"]
    await provide_papers(corridor, declaration(), trips=count)
    registered = await kz.client.post(
        "/v1/guarantees",
        json={"grn": GRN, "holder_id": "230340000126", "reference_amount": "1000000.00", "currency": "USD"},
        headers=customs["KZ"],
    )
    assert registered.status_code == 201, registered.text
    for _ in range(count):
        mrn = (await kz.client.post("/v1/declarations", json=declaration(), headers=customs["KZ"])).json()["mrn"]
        released = await kz.client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])
        assert released.status_code == 200, released.text
    await corridor.deliver_all()


def test_readme_lists_these_budgets() -> None:
    """README's Performance section shows the budgets this file holds the code to."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    listed = {}
    for line in readme.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1].isdigit() and cells[2].isdigit() and cells[3].isdigit():
            listed[cells[0].split(" (")[0]] = (int(cells[1]), int(cells[2]), int(cells[3]))
    written = {
        name: (budget["sqlite"], budget["postgresql"], commits)
        for table, commit_table in ((BUDGETS, COMMITS), (ROUND_BUDGETS, ROUND_COMMITS))
        for name, budget in table.items()
        for commits in [commit_table[name]]
    }
    assert listed == written
