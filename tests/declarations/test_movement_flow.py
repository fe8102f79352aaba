"""A movement end to end across three in-process nodes: declared and released in Kazakhstan, crossing into and out
of Uzbekistan, arriving in Turkmenistan, written off in Kazakhstan."""

from __future__ import annotations

from datetime import timedelta, timezone

from sqlalchemy import delete

from tests.declarations.conftest import declaration
from tests.support.inprocess import InProcessCorridor
from transit_window import clock
from transit_window.declarations.models import MovementStep

ASHGABAT = timezone(timedelta(hours=5))


async def journey_of(
    corridor: InProcessCorridor, node: str, mrn: str, headers: dict[str, str]
) -> list[tuple[str, str, str]]:
    response = await corridor[node].client.get(f"/v1/movements/{mrn}", headers=headers)
    assert response.status_code == 200, response.text
    return [(step["kind"], step["office"], step["signed_by"]) for step in response.json()["journey"]]


async def test_apples_from_almaty_to_ashgabat_are_closed_on_every_node(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    kz, uz, tm = corridor["KZ"], corridor["UZ"], corridor["TM"]
    created = await kz.client.post("/v1/declarations", json=declaration(), headers=customs["KZ"])
    assert created.status_code == 201, created.text
    mrn = created.json()["mrn"]
    assert created.json()["status"] == "accepted"

    released = await kz.client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])
    assert released.status_code == 200, released.text
    await corridor.deliver_all()

    expected = await uz.client.get("/v1/movements/expected", params={"office": "UZGIS001"}, headers=customs["UZ"])
    assert [item["mrn"] for item in expected.json()["items"]] == [mrn]

    steps = [
        (kz, "KZ", "crossings", {"office": "KZZHZ001", "direction": "exit"}),
        (uz, "UZ", "crossings", {"office": "UZGIS001", "direction": "entry"}),
        (uz, "UZ", "crossings", {"office": "UZALT001", "direction": "exit"}),
        (tm, "TM", "crossings", {"office": "TMFAR001", "direction": "entry"}),
        (tm, "TM", "arrival", {"office": "TMASB001"}),
        (tm, "TM", "control-results", {"code": "A1"}),
    ]
    for entry, country, path, body in steps:
        body["at"] = clock.utcnow().astimezone(ASHGABAT).isoformat()
        response = await entry.client.post(f"/v1/movements/{mrn}/{path}", json=body, headers=customs[country])
        assert response.status_code == 201, response.text
        await corridor.deliver_all()

    journeys = {node: await journey_of(corridor, node, mrn, customs[node]) for node in ("KZ", "UZ", "TM")}
    assert journeys["KZ"] == journeys["UZ"] == journeys["TM"]
    assert [kind for kind, _, _ in journeys["KZ"]] == [
        "released",
        "exit",
        "entry",
        "exit",
        "entry",
        "arrived",
        "control-results",
        "closed",
    ]
    for node in ("KZ", "UZ", "TM"):
        movement = (await corridor[node].client.get(f"/v1/movements/{mrn}", headers=customs[node])).json()
        assert movement["status"] == "closed", (node, movement["status"])
    held = (await kz.client.get(f"/v1/guarantees/{guarantee}", headers=customs["KZ"])).json()
    assert held["reserved"] == "0.00"


async def test_a_node_that_lost_a_step_gets_it_back_by_asking_the_route(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """Turkmenistan's node was restored from an older backup and lacks Uzbekistan's entry record; a status request
    to the route brings the step back, still attributed to Uzbekistan."""
    kz, uz, tm = corridor["KZ"], corridor["UZ"], corridor["TM"]
    mrn = (await kz.client.post("/v1/declarations", json=declaration(), headers=customs["KZ"])).json()["mrn"]
    await kz.client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])
    await corridor.deliver_all()
    at = clock.utcnow().astimezone(ASHGABAT).isoformat()
    entry = {"office": "UZGIS001", "direction": "entry", "at": at}
    assert (
        await uz.client.post(f"/v1/movements/{mrn}/crossings", json=entry, headers=customs["UZ"])
    ).status_code == 201
    await corridor.deliver_all()
    async with tm.node.sessionmaker() as session:
        await session.execute(delete(MovementStep).where(MovementStep.mrn == mrn, MovementStep.kind == "entry"))
        await session.commit()
    assert ("entry", "UZGIS001", "UZ") not in await journey_of(corridor, "TM", mrn, customs["TM"])

    asked = await tm.client.post(f"/v1/movements/{mrn}/status-requests", headers=customs["TM"])
    assert asked.status_code == 202, asked.text
    assert sorted(asked.json()["asked"]) == ["KZ", "UZ"]
    await corridor.deliver_all()

    assert ("entry", "UZGIS001", "UZ") in await journey_of(corridor, "TM", mrn, customs["TM"])
    assert await journey_of(corridor, "TM", mrn, customs["TM"]) == await journey_of(corridor, "KZ", mrn, customs["KZ"])


async def test_a_step_dated_before_the_release_or_the_arrival_is_refused_with_both_times(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """A UZ entry dated two days before the release was once accepted, and the journey then began with an entry."""
    del guarantee
    kz, uz, tm = corridor["KZ"], corridor["UZ"], corridor["TM"]
    mrn = (await kz.client.post("/v1/declarations", json=declaration(), headers=customs["KZ"])).json()["mrn"]
    released = await kz.client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])
    assert released.status_code == 200, released.text
    released_at = clock.parse(released.json()["journey"][0]["at"])
    await corridor.deliver_all()

    early = (released_at - timedelta(days=2)).astimezone(ASHGABAT).isoformat()
    for node, path, body in (
        (uz, "crossings", {"office": "UZGIS001", "direction": "entry", "at": early}),
        (tm, "arrival", {"office": "TMASB001", "at": early}),
    ):
        refused = await node.client.post(f"/v1/movements/{mrn}/{path}", json=body, headers=customs[node.node.id])
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert problem["errors"][0]["pointer"] == "/body/at" and problem["errors"][0]["code"] == "14", problem
        assert clock.isoformat(clock.parse(early)) in problem["detail"], problem["detail"]
        assert f"the release of {mrn} at KZALA001, {clock.isoformat(released_at)}" in problem["detail"]
    assert [kind for kind, _, _ in await journey_of(corridor, "UZ", mrn, customs["UZ"])] == ["released"]

    now = clock.utcnow()
    arrived = await tm.client.post(
        f"/v1/movements/{mrn}/arrival", json={"office": "TMASB001", "at": clock.isoformat(now)}, headers=customs["TM"]
    )
    assert arrived.status_code == 201, arrived.text
    before = clock.isoformat(now - timedelta(hours=1))
    refused = await tm.client.post(
        f"/v1/movements/{mrn}/control-results", json={"code": "A1", "at": before}, headers=customs["TM"]
    )
    assert refused.status_code == 422, refused.text
    assert f"before the arrival of {mrn} at TMASB001" in refused.json()["detail"]


async def test_a_crossing_dated_before_one_earlier_on_the_itinerary_is_refused_with_both_times(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """Released three hours ago, out of Kazakhstan one hour ago: Uzbekistan cannot have seen the truck come in two
    hours ago, nor Turkmenistan's destination receive it before it left Kazakhstan."""
    del guarantee
    kz, uz, tm = corridor["KZ"], corridor["UZ"], corridor["TM"]
    clock.set_offset(-timedelta(hours=3))
    try:
        mrn = (await kz.client.post("/v1/declarations", json=declaration(), headers=customs["KZ"])).json()["mrn"]
        assert (await kz.client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])).status_code == 200
    finally:
        clock.set_offset(timedelta(0))
    now = clock.utcnow()
    exit_at = clock.isoformat(now - timedelta(hours=1))
    left = await kz.client.post(
        f"/v1/movements/{mrn}/crossings",
        json={"office": "KZZHZ001", "direction": "exit", "at": exit_at},
        headers=customs["KZ"],
    )
    assert left.status_code == 201, left.text
    await corridor.deliver_all()

    early = clock.isoformat(now - timedelta(hours=2))
    for node, path, body in (
        (uz, "crossings", {"office": "UZGIS001", "direction": "entry", "at": early}),
        (tm, "arrival", {"office": "TMASB001", "at": early}),
    ):
        refused = await node.client.post(f"/v1/movements/{mrn}/{path}", json=body, headers=customs[node.node.id])
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert problem["errors"][0]["pointer"] == "/body/at" and problem["errors"][0]["code"] == "14", problem
        assert f"before the exit of {mrn} at KZZHZ001, {exit_at}" in problem["detail"], problem["detail"]
    entered = await uz.client.post(
        f"/v1/movements/{mrn}/crossings",
        json={"office": "UZGIS001", "direction": "entry", "at": clock.isoformat(now - timedelta(minutes=50))},
        headers=customs["UZ"],
    )
    assert entered.status_code == 201, entered.text
