"""What the node fills in when a request leaves it out, so that a body written once (README's tour, the examples in
`openapi/examples/` and `/docs`) never goes stale: the office of departure sets the limit date from the itinerary
(NCTS: it prescribes the time limit), and a border post's crossing, the destination's arrival and its control results
happen now. Given, each is checked as before."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from tests.declarations.conftest import declaration
from tests.support.inprocess import InProcessCorridor
from transit_window import clock
from transit_window.codes import OfficeDirectory
from transit_window.codes.geo import haversine_km
from transit_window.declarations.validation import MAX_TRANSIT_DAYS, default_limit_date

OFFICES = OfficeDirectory()


def test_the_limit_date_is_the_day_after_the_truck_is_due_in_the_destinations_calendar() -> None:
    almaty, baku = OFFICES.require("KZALA001"), OFFICES.require("AZBAK001")
    hours = haversine_km(almaty.lat, almaty.lon, baku.lat, baku.lon) / 40
    due = datetime(2030, 3, 10, 21, 0, tzinfo=UTC)  # at the expected speed, with the grace
    now = due - timedelta(hours=hours, minutes=240)
    limit = default_limit_date([almaty, baku], now=now, speed_kmh=40, grace=timedelta(minutes=240))
    assert limit == date(2030, 3, 12)  # 01:00 on 11 March in Baku, and one day to present the goods

    crawling = default_limit_date([almaty, baku], now=now, speed_kmh=0.1, grace=timedelta(0))
    assert crawling == now.date() + timedelta(days=MAX_TRANSIT_DAYS)


async def test_a_declaration_without_a_limit_date_gets_one_from_its_itinerary(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    del guarantee
    kz = corridor["KZ"]
    body = declaration()
    del body["limit_date"]
    created = await kz.client.post("/v1/declarations", json=body, headers=customs["KZ"])
    assert created.status_code == 201, created.text
    movement = (await kz.client.get(f"/v1/movements/{created.json()['mrn']}", headers=customs["KZ"])).json()
    itinerary = [OFFICES.require(code) for code in body["itinerary"]]
    settings = kz.node.settings
    expected = default_limit_date(
        itinerary,
        now=clock.utcnow(),
        speed_kmh=settings.expected_speed_kmh,
        grace=timedelta(minutes=settings.crossing_grace_minutes),
    )
    assert date.fromisoformat(movement["limit_date"]) == expected
    assert movement["declaration"]["limit_date"] == expected.isoformat()  # as the route receives it
    assert clock.utcnow().date() < expected <= clock.utcnow().date() + timedelta(days=7)  # Almaty to Ashgabat

    past = declaration(limit_date=(clock.utcnow().date() - timedelta(days=1)).isoformat())
    refused = await kz.client.post("/v1/declarations", json=past, headers=customs["KZ"])
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["pointer"] == "/body/limit_date"


async def test_steps_without_a_time_happen_now_and_a_given_time_is_checked_as_before(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    del guarantee
    kz, uz, tm = corridor["KZ"], corridor["UZ"], corridor["TM"]
    mrn = (await kz.client.post("/v1/declarations", json=declaration(), headers=customs["KZ"])).json()["mrn"]
    assert (await kz.client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])).status_code == 200
    await corridor.deliver_all()

    ahead = clock.isoformat(clock.utcnow() + timedelta(hours=1))
    future = await kz.client.post(
        f"/v1/movements/{mrn}/crossings",
        json={"office": "KZZHZ001", "direction": "exit", "at": ahead},
        headers=customs["KZ"],
    )
    assert future.status_code == 422 and future.json()["errors"][0]["pointer"] == "/body/at"

    before = clock.utcnow()
    steps = [
        (kz, "KZ", "crossings", {"office": "KZZHZ001", "direction": "exit"}),
        (uz, "UZ", "crossings", {"office": "UZGIS001", "direction": "entry"}),
        (uz, "UZ", "crossings", {"office": "UZALT001", "direction": "exit"}),
        (tm, "TM", "crossings", {"office": "TMFAR001", "direction": "entry"}),
        (tm, "TM", "arrival", {"office": "TMASB001"}),
        (tm, "TM", "control-results", {"code": "A1"}),
    ]
    for entry, country, path, body in steps:
        response = await entry.client.post(f"/v1/movements/{mrn}/{path}", json=body, headers=customs[country])
        assert response.status_code == 201, response.text
        await corridor.deliver_all()
    after = clock.utcnow()
    journey = (await tm.client.get(f"/v1/movements/{mrn}", headers=customs["TM"])).json()["journey"]
    recorded = {step["kind"]: clock.parse(step["at"]) for step in journey}
    for kind in ("exit", "entry", "arrived", "control-results"):
        assert before <= recorded[kind] <= after, (kind, recorded[kind])
