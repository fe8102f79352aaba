"""The movement's state machine: a step out of order is refused with a clear problem at the node where a customs
officer records it (409, or 422/403 when the step itself is wrong). A step another country's node signed before it
heard of a cancellation is kept as a fact, and the cancellation still decides the status (openapi/PROTOCOL.md §8)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.declarations.conftest import declaration
from tests.support.inprocess import InProcessCorridor
from tests.support.keys import TestMember as Member
from transit_window import clock
from transit_window.ids import new_id
from transit_window.protocol.envelope import digest_of, seal, verify_receipt

PROBLEM_JSON = "application/problem+json"


class Officers:
    """Customs officers of each country acting on one movement."""

    def __init__(self, corridor: InProcessCorridor, customs: dict[str, dict[str, str]]) -> None:
        self.corridor = corridor
        self.customs = customs
        self.mrn = ""

    async def declare(self) -> None:
        created = await self.corridor["KZ"].client.post(
            "/v1/declarations", json=declaration(), headers=self.customs["KZ"]
        )
        assert created.status_code == 201, created.text
        self.mrn = created.json()["mrn"]

    async def departure(self, action: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return await self.corridor["KZ"].client.post(
            f"/v1/declarations/{self.mrn}/{action}", json=body, headers=self.customs["KZ"]
        )

    async def step(self, node: str, path: str, **body: Any) -> httpx.Response:
        return await self.corridor[node].client.post(
            f"/v1/movements/{self.mrn}/{path}",
            json={**body, "at": clock.utcnow().isoformat()},
            headers=self.customs[node],
        )

    async def cross(self, node: str, office: str, direction: str) -> httpx.Response:
        return await self.step(node, "crossings", office=office, direction=direction)

    async def status(self, node: str) -> str:
        response = await self.corridor[node].client.get(f"/v1/movements/{self.mrn}", headers=self.customs[node])
        assert response.status_code == 200, response.text
        return str(response.json()["status"])

    async def kinds(self, node: str) -> list[str]:
        response = await self.corridor[node].client.get(f"/v1/movements/{self.mrn}", headers=self.customs[node])
        return [step["kind"] for step in response.json()["journey"]]


def refused(response: httpx.Response, status: int, *words: str, pointer: str | None = None, code: str = "") -> None:
    """A problem+json with `status` whose detail says `words`; with `pointer`, the field error there has `code`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    for word in words:
        assert word in problem["detail"], (word, problem["detail"])
    if pointer is not None:
        assert [(error["pointer"], error["code"]) for error in problem["errors"]] == [(pointer, code)], problem


def ok(response: httpx.Response, status: int = 201) -> None:
    assert response.status_code == status, response.text


async def test_the_departure_office_refuses_steps_out_of_order(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """At Almaty and Zhibek Zholy: no exit before release, no second release, the exit recorded once and in the
    right direction, and no cancellation once the goods have left."""
    officers = Officers(corridor, customs)
    await officers.declare()
    mrn = officers.mrn
    refused(await officers.cross("KZ", "KZZHZ001", "exit"), 409, mrn, "has not been released yet")

    ok(await officers.departure("release"), 200)
    refused(await officers.departure("release"), 409, mrn, "is released", "only an accepted declaration")

    refused(
        await officers.cross("KZ", "KZZHZ001", "entry"),
        422,
        "at KZZHZ001 the goods leave KZ",
        "record it as exit",
        pointer="/body/direction",
        code="14",
    )
    ok(await officers.cross("KZ", "KZZHZ001", "exit"))
    refused(await officers.cross("KZ", "KZZHZ001", "exit"), 409, "already recorded")
    refused(
        await officers.departure("cancel", {"reason": "the buyer withdrew"}),
        409,
        "in_transit",
        "only before the goods leave",
    )
    refused(
        await officers.step("KZ", "arrival", office="TMASB001"),
        403,
        "TMASB001 is an office of TM",
        pointer="/body/office",
        code="15",
    )
    assert await officers.kinds("KZ") == ["released", "exit"]
    held = (await corridor["KZ"].client.get(f"/v1/guarantees/{guarantee}", headers=customs["KZ"])).json()
    assert held["reserved"] == "5000.00"  # the refused cancellation released nothing


async def test_border_posts_and_the_destination_refuse_steps_out_of_order(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """Along the route: an Uzbek officer cannot record at a Kazakh post, a crossing is on the itinerary, arrival
    is at the office of destination and recorded once, control results follow arrival, and a closed movement
    takes no further step anywhere."""
    officers = Officers(corridor, customs)
    await officers.declare()
    ok(await officers.departure("release"), 200)
    await corridor.deliver_all()

    refused(
        await officers.cross("UZ", "KZZHZ001", "entry"),
        403,
        "KZZHZ001 is an office of KZ",
        pointer="/body/office",
        code="15",
    )
    refused(
        await officers.cross("UZ", "UZDUS001", "entry"),
        422,
        "UZDUS001 is not on the itinerary",
        pointer="/body/office",
        code="14",
    )
    for node, office, direction in (
        ("KZ", "KZZHZ001", "exit"),
        ("UZ", "UZGIS001", "entry"),
        ("UZ", "UZALT001", "exit"),
        ("TM", "TMFAR001", "entry"),
    ):
        ok(await officers.cross(node, office, direction))
        await corridor.deliver_all()

    refused(
        await officers.step("TM", "arrival", office="TMFAR001"),
        422,
        "bound for TMASB001, not TMFAR001",
        pointer="/body/office",
        code="14",
    )
    refused(
        await officers.step("TM", "control-results", code="A1"),
        409,
        "in_transit",
        "control results follow the arrival",
    )
    ok(await officers.step("TM", "arrival", office="TMASB001"))
    refused(await officers.step("TM", "arrival", office="TMASB001"), 409, "arrival", "already recorded")
    ok(await officers.step("TM", "control-results", code="A1"))
    await corridor.deliver_all()
    assert [await officers.status(node) for node in ("KZ", "UZ", "TM")] == ["closed"] * 3

    refused(await officers.step("TM", "arrival", office="TMASB001"), 409, "already closed")
    refused(await officers.cross("UZ", "UZALT001", "exit"), 409, "already closed")
    refused(await officers.departure("cancel", {"reason": "too late"}), 409, "closed", "only before the goods leave")
    refused(await officers.departure("release"), 409, "is closed")


async def test_a_cancelled_movement_refuses_steps_locally_and_keeps_a_crossing_that_crossed_it(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str, members: dict[str, Member]
) -> None:
    """Kazakhstan cancels a released movement before the truck leaves. Its officers can no longer release, cancel
    or record an exit (409). A `transit.crossed` that Uzbekistan signed before it heard of the cancellation is a fact
    Kazakhstan keeps (an `accepted` receipt; the entry joins the journey) while the movement stays cancelled; once the
    cancellation reaches Uzbekistan, its own officers are refused locally."""
    officers = Officers(corridor, customs)
    kz = corridor["KZ"]
    await officers.declare()
    ok(await officers.departure("release"), 200)
    await corridor.deliver_all()
    assert await officers.status("UZ") == "released"

    ok(await officers.departure("cancel", {"reason": "the buyer withdrew"}), 200)
    held = (await kz.client.get(f"/v1/guarantees/{guarantee}", headers=customs["KZ"])).json()
    assert held["reserved"] == "0.00"
    refused(await officers.departure("cancel", {"reason": "again"}), 409, "is cancelled")
    refused(await officers.departure("release"), 409, "is cancelled")
    refused(await officers.cross("KZ", "KZZHZ001", "exit"), 409, "was cancelled")

    message_id = new_id()
    crossed = seal(
        key=members["UZ"].key,
        message_id=message_id,
        type="transit.crossed",
        iss="UZ",
        aud="KZ",
        iat=clock.utcnow(),
        seq=1,
        subject=officers.mrn,
        trust=1,
        body={
            "mrn": officers.mrn,
            "office": "UZGIS001",
            "country": "UZ",
            "direction": "entry",
            "at": clock.utcnow().isoformat(),
            "seals_intact": True,
        },
    )
    answer = await kz.client.post(
        "/v1/corridor/messages", content=crossed, headers={"Content-Type": "application/jose"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "accepted", answer.text
    receipt = verify_receipt(
        answer.json()["receipt"],
        trust=corridor["UZ"].node.trust,
        expect_from="KZ",
        message_id=message_id,
        digest=digest_of(crossed),
    )
    assert (receipt.status, receipt.iss, receipt.aud) == ("accepted", "KZ", "UZ")
    assert await officers.kinds("KZ") == ["released", "cancelled", "entry"]
    assert await officers.status("KZ") == "cancelled"

    await corridor.deliver_all()
    assert [await officers.status(node) for node in ("KZ", "UZ", "TM")] == ["cancelled"] * 3
    refused(await officers.cross("UZ", "UZGIS001", "entry"), 409, "was cancelled")
    assert await officers.kinds("UZ") == ["released", "cancelled"]
