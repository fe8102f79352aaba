"""Steps that reach a node before the movement's record: kept, the record pulled from the country of departure
(`transit.record-request` → `transit.record-response`), the kept step applied when it comes, and the journey ends
the same on every node.

KZ here waits days before retrying a delivery that failed, so a message a story lets fail stays undelivered (as
behind a long outage) until the operator retries it with `POST /v1/admin/outbox/retry`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import NODES
from tests.declarations.conftest import declaration
from tests.support import databases
from tests.support.inprocess import InProcessCorridor
from tests.support.keys import TestMember as Member
from transit_window import clock


@pytest.fixture
async def corridor(
    node_databases: dict[str, str], members: dict[str, Member], genesis: tuple[Path, str]
) -> AsyncIterator[InProcessCorridor]:
    """KZ, UZ and TM on clean databases; KZ retries a failed delivery only after days."""
    await asyncio.gather(*(databases.truncate(url) for url in node_databases.values()))
    trust_file, sha = genesis
    corridor = InProcessCorridor()
    try:
        for node in NODES:
            patient: dict[str, Any] = {"backoff_base_seconds": 1e6, "backoff_cap_seconds": 1e7} if node == "KZ" else {}
            await corridor.add_node(
                members[node], database_url=node_databases[node], trust_file=trust_file, genesis_sha256=sha, **patient
            )
        yield corridor
    finally:
        await corridor.close()


class Story:
    """One movement KZ → UZ → TM and what the test does to it."""

    def __init__(self, corridor: InProcessCorridor, customs: dict[str, dict[str, str]]) -> None:
        self.corridor = corridor
        self.customs = customs
        self.mrn = ""

    def host(self, node: str) -> str:
        return str(httpx.URL(self.corridor[node].member.endpoint).host)

    def down(self, node: str) -> None:
        self.corridor.transport.down.add(self.host(node))

    def up(self, node: str) -> None:
        self.corridor.transport.down.discard(self.host(node))

    async def release(self) -> None:
        kz = self.corridor["KZ"]
        created = await kz.client.post("/v1/declarations", json=declaration(), headers=self.customs["KZ"])
        assert created.status_code == 201, created.text
        self.mrn = created.json()["mrn"]
        released = await kz.client.post(f"/v1/declarations/{self.mrn}/release", headers=self.customs["KZ"])
        assert released.status_code == 200, released.text

    async def step(self, node: str, path: str, body: dict[str, Any], *, status: int = 201) -> dict[str, Any]:
        response = await self.corridor[node].client.post(
            f"/v1/movements/{self.mrn}/{path}",
            json={**body, "at": clock.utcnow().isoformat()},
            headers=self.customs[node],
        )
        assert response.status_code == status, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def movement(self, node: str) -> httpx.Response:
        return await self.corridor[node].client.get(f"/v1/movements/{self.mrn}", headers=self.customs[node])

    async def journey(self, node: str) -> list[tuple[str, str, str, str]]:
        response = await self.movement(node)
        assert response.status_code == 200, response.text
        return [(s["kind"], s["office"], s["signed_by"], s["at"]) for s in response.json()["journey"]]

    async def kinds(self, node: str) -> list[tuple[str, str]]:
        return [(kind, signer) for kind, _, signer, _ in await self.journey(node)]

    async def outbox(self, node: str, peer: str) -> list[tuple[str, str, str | None]]:
        """(type, state, receipt status) of what `node` sent or is sending to `peer` about this movement, oldest
        first, read through the operator's API."""
        entry = self.corridor[node]
        page = await entry.client.get("/v1/admin/outbox", params={"peer": peer}, headers=entry.admin)
        assert page.status_code == 200, page.text
        items = [item for item in page.json()["items"] if item["subject"] == self.mrn]
        return [(item["type"], item["state"], item["receipt_status"]) for item in reversed(items)]

    async def retry_waiting(self, node: str) -> int:
        entry = self.corridor[node]
        response = await entry.client.post("/v1/admin/outbox/retry", json={"state": "pending"}, headers=entry.admin)
        assert response.status_code == 200, response.text
        retried: int = response.json()["retried"]
        return retried

    async def finish(self) -> None:
        """The rest of the route, each step delivered before the next: UZ exit, TM entry, arrival, results."""
        for node, path, body in (
            ("UZ", "crossings", {"office": "UZALT001", "direction": "exit"}),
            ("TM", "crossings", {"office": "TMFAR001", "direction": "entry"}),
            ("TM", "arrival", {"office": "TMASB001"}),
            ("TM", "control-results", {"code": "A1"}),
        ):
            await self.step(node, path, body)
            await self.corridor.deliver_all()

    async def assert_closed_and_equal_everywhere(self) -> list[tuple[str, str, str, str]]:
        journeys = {node: await self.journey(node) for node in NODES}
        assert journeys["KZ"] == journeys["UZ"] == journeys["TM"], journeys
        assert [(kind, signer) for kind, _, signer, _ in journeys["KZ"]] == [
            ("released", "KZ"),
            ("exit", "KZ"),
            ("entry", "UZ"),
            ("exit", "UZ"),
            ("entry", "TM"),
            ("arrived", "TM"),
            ("control-results", "TM"),
            ("closed", "KZ"),
        ]
        for node in NODES:
            assert (await self.movement(node)).json()["status"] == "closed", node
        return journeys["KZ"]


async def test_uz_records_entry_before_the_record_then_pulls_it_from_kazakhstan(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """The Uzbek node was unreachable when Kazakhstan released the movement and when the truck left Zhibek Zholy.
    The truck is at Gishtkuprik before Kazakhstan retries: the Uzbek officer records the entry all the same. It is
    kept (202), the Uzbek node asks Kazakhstan for the record, applies the entry when the record comes, and the
    movement ends closed with the same journey on every node, also after the late messages finally arrive."""
    story = Story(corridor, customs)
    kz, uz = corridor["KZ"], corridor["UZ"]
    await story.release()
    story.down("UZ")
    await kz.deliver()
    await story.step("KZ", "crossings", {"office": "KZZHZ001", "direction": "exit"})
    await kz.deliver()
    story.up("UZ")
    assert await story.outbox("KZ", "UZ") == [
        ("transit.anticipated", "pending", None),
        ("transit.crossed", "pending", None),
    ]
    assert await story.kinds("TM") == [("released", "KZ"), ("exit", "KZ")]

    expected = await uz.client.get("/v1/movements/expected", params={"office": "UZGIS001"}, headers=customs["UZ"])
    assert expected.json()["items"] == []
    assert (await story.movement("UZ")).status_code == 404
    kept = await story.step("UZ", "crossings", {"office": "UZGIS001", "direction": "entry"}, status=202)
    assert kept == {"mrn": story.mrn, "status": "pending-record", "step": "entry", "pending": True}
    assert (await story.movement("UZ")).status_code == 404
    assert await story.outbox("UZ", "KZ") == [("transit.record-request", "pending", None)]

    await uz.deliver()
    assert await story.outbox("UZ", "KZ") == [("transit.record-request", "delivered", "accepted")]
    assert (await story.outbox("KZ", "UZ"))[-1] == ("transit.record-response", "pending", None)
    await kz.deliver()
    assert await story.outbox("KZ", "UZ") == [
        ("transit.anticipated", "pending", None),  # still waiting for KZ's retry: the record came by the pull
        ("transit.crossed", "pending", None),
        ("transit.record-response", "delivered", "accepted"),
    ]
    movement = (await story.movement("UZ")).json()
    assert (movement["status"], movement["role"]) == ("in_transit", "route")
    assert await story.kinds("UZ") == [("released", "KZ"), ("exit", "KZ"), ("entry", "UZ")]

    await corridor.deliver_all()  # the kept entry, now applied, goes to KZ and TM like any other
    assert await story.kinds("KZ") == [("released", "KZ"), ("exit", "KZ"), ("entry", "UZ")]
    await story.finish()
    journey = await story.assert_closed_and_equal_everywhere()

    assert await story.retry_waiting("KZ") == 3  # with the certificate shared at release (document.issued)
    await corridor.deliver_all()
    assert [state for _, state, _ in await story.outbox("KZ", "UZ")] == ["delivered"] * len(
        await story.outbox("KZ", "UZ")
    )
    assert await story.assert_closed_and_equal_everywhere() == journey


async def test_tm_keeps_a_crossing_reported_by_uz_until_it_has_the_record(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """Turkmenistan missed the record and the exit from Kazakhstan (unreachable then; Kazakhstan retries later).
    Uzbekistan's `transit.crossed` for the entry at Gishtkuprik reaches Turkmenistan first: it is accepted and
    kept, Turkmenistan asks Kazakhstan for the record, and applies the kept crossing when the record comes, even
    though Kazakhstan had not heard of that entry yet when it answered."""
    story = Story(corridor, customs)
    kz, uz, tm = corridor["KZ"], corridor["UZ"], corridor["TM"]
    await story.release()
    story.down("TM")
    await kz.deliver()
    await story.step("KZ", "crossings", {"office": "KZZHZ001", "direction": "exit"})
    await kz.deliver()
    story.up("TM")
    story.down("KZ")
    await story.step("UZ", "crossings", {"office": "UZGIS001", "direction": "entry"})
    await uz.deliver()
    story.up("KZ")
    assert await story.outbox("UZ", "TM") == [("transit.crossed", "delivered", "accepted")]
    assert await story.outbox("UZ", "KZ") == [("transit.crossed", "pending", None)]
    assert (await story.movement("TM")).status_code == 404
    assert await story.outbox("TM", "KZ") == [("transit.record-request", "pending", None)]

    await tm.deliver()
    await kz.deliver()
    assert await story.outbox("KZ", "TM") == [
        ("transit.anticipated", "pending", None),
        ("transit.crossed", "pending", None),
        ("transit.record-response", "delivered", "accepted"),
    ]
    assert await story.kinds("KZ") == [("released", "KZ"), ("exit", "KZ")]  # the record had no entry in it
    assert await story.kinds("TM") == [("released", "KZ"), ("exit", "KZ"), ("entry", "UZ")]
    assert (await story.movement("TM")).json()["status"] == "in_transit"
    assert await story.journey("TM") == await story.journey("UZ")

    assert await story.retry_waiting("UZ") == 1
    await corridor.deliver_all()
    assert await story.kinds("KZ") == [("released", "KZ"), ("exit", "KZ"), ("entry", "UZ")]
    await story.finish()
    journey = await story.assert_closed_and_equal_everywhere()
    assert await story.retry_waiting("KZ") == 3  # with the certificate shared at release (document.issued)
    await corridor.deliver_all()
    assert await story.assert_closed_and_equal_everywhere() == journey
