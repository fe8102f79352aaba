"""Alerts on e-seal tracks: scripted pings along the Almaty → Zhibek Zholy road raise exactly one alert for a
detour, a long stop and a seal opened on the road, none for a clean track; a missing border crossing raises one
alert and a status request to the next country; every alert is an event shared with the route; customs
acknowledge and close alerts with a note."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.declarations.conftest import declaration
from tests.support.inprocess import InProcessCorridor
from tests.tracking.conftest import ASHGABAT, client_for, travel
from transit_window import clock
from transit_window.codes import geo
from transit_window.protocol.models import InboxMessage, OutboxMessage
from transit_window.tracking.crossing_checks import check_overdue, check_unrecorded_crossings

ALMATY = (43.24, 76.89)
ZHIBEK_ZHOLY = (41.38, 69.12)  # the KZ-UZ road crossing, next on the itinerary after Almaty
DEGREE_KM = 111.2


def on_road(fraction: float, *, north_km: float = 0.0) -> tuple[float, float]:
    """A point on the road from Almaty to Zhibek Zholy (0 = Almaty, 1 = the border), moved `north_km` off it."""
    lat = ALMATY[0] + (ZHIBEK_ZHOLY[0] - ALMATY[0]) * fraction + north_km / DEGREE_KM
    lon = ALMATY[1] + (ZHIBEK_ZHOLY[1] - ALMATY[1]) * fraction
    return round(lat, 5), round(lon, 5)


def ping(mrn: str, at: datetime, point: tuple[float, float], *, seal: str = "closed", speed: float = 65.0) -> dict:
    return {
        "device_id": "ESEAL-KZ-0042",
        "mrn": mrn,
        "time": at.isoformat(),
        "lat": point[0],
        "lon": point[1],
        "speed": speed,
        "seal_state": seal,
    }


async def post(corridor: InProcessCorridor, device: dict[str, str], pings: list[dict]) -> dict[str, Any]:
    response = await corridor["KZ"].client.post("/v1/tracking/positions", json={"pings": pings}, headers=device)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def rules(result: dict[str, Any]) -> list[str]:
    return [alert["rule"] for alert in result["alerts"]]


async def test_detour_long_stop_and_seal_opened_each_raise_one_alert_and_a_clean_track_none(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    mrn = (await travel(corridor, customs, until="entry-uz")).mrn
    device = await client_for(corridor, "KZ", role="device", party_id=None)
    start = clock.utcnow() - timedelta(hours=12)

    # A clean track: 30 pings ten minutes apart along the road; the seal opened only at the office of departure.
    clean = [ping(mrn, start, ALMATY, seal="open", speed=0.0)]
    clean += [ping(mrn, start + timedelta(minutes=10 * i), on_road(0.01 * i)) for i in range(1, 30)]
    assert rules(await post(corridor, device, clean)) == []

    # A detour: six pings 110 km north of the road, then back on it. One alert, not six.
    t = start + timedelta(hours=6)
    detour = [ping(mrn, t + timedelta(minutes=10 * i), on_road(0.32 + 0.01 * i, north_km=110)) for i in range(6)]
    detour += [ping(mrn, t + timedelta(minutes=60 + 10 * i), on_road(0.38 + 0.01 * i)) for i in range(3)]
    result = await post(corridor, device, detour)
    assert rules(result) == ["route-deviation"]
    assert result["alerts"][0]["details"]["distance_km"] > 50
    assert clock.parse(result["alerts"][0]["raised_at"]) == t  # the first ping off the road
    assert rules(await post(corridor, device, detour)) == []  # the same batch again: nothing stored, nothing raised

    # A long stop away from any office, reported over three batches: alerts once, when it passes an hour.
    t = start + timedelta(hours=8)
    stop = on_road(0.5)

    def still(minutes: list[int]) -> list[dict]:
        return [ping(mrn, t + timedelta(minutes=m), (stop[0] + 0.0003 * (m % 3), stop[1]), speed=0.0) for m in minutes]

    assert rules(await post(corridor, device, still([0, 10, 20, 30, 40]))) == []
    result = await post(corridor, device, still([50, 60, 70, 80, 90]))
    assert rules(result) == ["long-stop"]
    assert result["alerts"][0]["details"]["minutes"] == 60
    assert rules(await post(corridor, device, still([100, 110, 120]))) == []

    # The seal opened on the road: three pings report it open; one alert.
    t = start + timedelta(hours=11)
    opened = [ping(mrn, t + timedelta(minutes=5 * i), on_road(0.6 + 0.005 * i), seal="open") for i in range(3)]
    assert rules(await post(corridor, device, opened)) == ["seal-opened"]

    kz = corridor["KZ"].client
    listed = (await kz.get("/v1/alerts", params={"status": "open", "mrn": mrn}, headers=customs["KZ"])).json()
    assert sorted(alert["rule"] for alert in listed["items"]) == ["long-stop", "route-deviation", "seal-opened"]
    assert {alert["raised_by"] for alert in listed["items"]} == {"KZ"}

    # Shared with the route: UZ and TM hold the alerts, and their timelines show them signed by KZ.
    await corridor.deliver_all()
    for node in ("UZ", "TM"):
        held = await corridor[node].client.get("/v1/alerts", params={"status": "open"}, headers=customs[node])
        assert sorted((a["rule"], a["raised_by"]) for a in held.json()["items"]) == [
            ("long-stop", "KZ"),
            ("route-deviation", "KZ"),
            ("seal-opened", "KZ"),
        ]
    timeline = await corridor["UZ"].client.get(f"/v1/consignments/{mrn}/timeline", headers=customs["UZ"])
    shown = [
        (e["step"], e["details"].get("rule"), e["signedBy"], e["verification"])
        for e in timeline.json()["events"]
        if e["step"] in ("alert", "seal-opened")
    ]
    assert shown == [
        ("alert", "route-deviation", "KZ", "verified"),
        ("alert", "long-stop", "KZ", "verified"),
        ("seal-opened", "seal-opened", "KZ", "verified"),
    ]
    on_kz = await corridor["KZ"].client.get(f"/v1/consignments/{mrn}/timeline", headers=customs["KZ"])
    alert_ids = {alert["id"] for alert in listed["items"]}
    for events in (timeline.json()["events"], on_kz.json()["events"]):  # one event id per alert on every node
        assert {e["eventID"] for e in events if e["step"] in ("alert", "seal-opened")} == {
            f"urn:uuid:{alert_id}" for alert_id in alert_ids
        }
    seal_event = next(e for e in timeline.json()["events"] if e["step"] == "seal-opened")
    assert seal_event["bizLocation"]["lat"] == opened[0]["lat"]
    assert seal_event["disposition"] == "container_open"


async def test_a_missing_crossing_raises_one_alert_and_asks_the_next_country(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    mrn = (await travel(corridor, customs, until="entry-uz")).mrn
    kz = corridor["KZ"]
    # Entered Uzbekistan at Gishtkuprik just now; the exit at Alat (≈ 500 km) is not due for hours.
    assert await check_overdue(kz.node) == []
    assert await check_overdue(kz.node, now=clock.utcnow() + timedelta(hours=6)) == []

    later = clock.utcnow() + timedelta(days=3)
    raised = await check_overdue(kz.node, now=later)
    assert [(alert.mrn, alert.rule) for alert in raised] == [(mrn, "overdue-crossing")]
    assert raised[0].details["next_office"] == "UZALT001"
    assert raised[0].details["last_office"] == "UZGIS001"
    assert raised[0].details["status_requested_from"] == "UZ"
    assert await check_overdue(kz.node, now=later + timedelta(hours=1)) == []  # still one open alert

    async with kz.node.sessionmaker() as session:
        sent = await session.execute(select(OutboxMessage.peer).where(OutboxMessage.type == "transit.status-request"))
        assert [row.peer for row in sent] == ["UZ"]
    await corridor.deliver_all()
    async with corridor["UZ"].node.sessionmaker() as session:
        asked = await session.scalars(select(InboxMessage.iss).where(InboxMessage.type == "transit.status-request"))
        assert list(asked) == ["KZ"]
    async with kz.node.sessionmaker() as session:
        answered = await session.scalars(select(InboxMessage.iss).where(InboxMessage.type == "transit.status-response"))
        assert list(answered) == ["UZ"]

    # UZ holds KZ's alert, so its own check does not raise a second one.
    assert await check_overdue(corridor["UZ"].node, now=later) == []
    on_uz = await corridor["UZ"].client.get("/v1/alerts", params={"mrn": mrn}, headers=customs["UZ"])
    assert [(a["rule"], a["raised_by"], a["status"]) for a in on_uz.json()["items"]] == [
        ("overdue-crossing", "KZ", "open")
    ]

    # KZ customs work the alert: acknowledge, then close with a note.
    alert_id = raised[0].id
    note = {"note": "UZ customs: truck held for inspection at Alat"}
    acknowledged = await kz.client.post(f"/v1/alerts/{alert_id}/acknowledge", json=note, headers=customs["KZ"])
    assert acknowledged.status_code == 200, acknowledged.text
    assert (acknowledged.json()["status"], acknowledged.json()["acknowledged_note"]) == ("acknowledged", note["note"])
    again = await kz.client.post(f"/v1/alerts/{alert_id}/acknowledge", json=note, headers=customs["KZ"])
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    assert (await kz.client.get("/v1/alerts", params={"status": "open"}, headers=customs["KZ"])).json()["items"] == []
    closed = await kz.client.post(
        f"/v1/alerts/{alert_id}/close", json={"note": "inspected, sent on"}, headers=customs["KZ"]
    )
    assert (closed.status_code, closed.json()["status"], closed.json()["closed_note"]) == (
        200,
        "closed",
        "inspected, sent on",
    )
    assert (await kz.client.post(f"/v1/alerts/{alert_id}/close", json=note, headers=customs["KZ"])).status_code == 409

    # Closed, while the crossing is still missing: the next check raises a new alert.
    reraised = await check_overdue(kz.node, now=later + timedelta(hours=2))
    assert [alert.rule for alert in reraised] == ["overdue-crossing"] and reraised[0].id != alert_id
    first = await kz.client.get("/v1/alerts", params={"limit": 1}, headers=customs["KZ"])
    assert [a["id"] for a in first.json()["items"]] == [alert_id]
    second = await kz.client.get(
        "/v1/alerts", params={"limit": 1, "cursor": first.json()["next"]}, headers=customs["KZ"]
    )
    assert [a["id"] for a in second.json()["items"]] == [reraised[0].id] and second.json()["next"] is None

    # Only customs work alerts.
    forwarder = await client_for(corridor, "KZ", role="forwarder", party_id="230340000126")
    assert (await kz.client.get("/v1/alerts", headers=forwarder)).status_code == 403
    assert (await kz.client.post(f"/v1/alerts/{alert_id}/close", json=note, headers=forwarder)).status_code == 403
    assert (await kz.client.get("/v1/alerts")).status_code == 401
    nobody = "00000000-0000-7000-8000-000000000000"
    missing = await kz.client.post(f"/v1/alerts/{nobody}/close", json=note, headers=customs["KZ"])
    assert missing.status_code == 404


def test_the_corridor_check_measures_great_circle_distance_from_the_route() -> None:
    """A point 100 km off the middle of the Almaty → Zhibek Zholy leg, built on the sphere, is 100 km from the
    route; the fast corridor test used per ping agrees with the exact distance on either side of the limit."""
    a, b = geo.unit(*ALMATY), geo.unit(*ZHIBEK_ZHOLY)
    middle = [x + y for x, y in zip(a, b, strict=True)]
    size = math.sqrt(sum(x * x for x in middle))
    middle = [x / size for x in middle]
    normal = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    size = math.sqrt(sum(x * x for x in normal))
    angle = 100 / geo.EARTH_RADIUS_KM
    off = [math.cos(angle) * m + math.sin(angle) * n / size for m, n in zip(middle, normal, strict=True)]
    point = (math.degrees(math.asin(off[2])), math.degrees(math.atan2(off[1], off[0])))
    route = [ALMATY, ZHIBEK_ZHOLY, (39.17, 63.60)]
    assert geo.distance_to_polyline_km(point, route) == pytest.approx(100.0, abs=0.01)
    assert geo.Route(route, 101.0).within(geo.unit(*point))[0]
    assert not geo.Route(route, 99.0).within(geo.unit(*point))[0]
    # Beyond the ends the distance is to the nearer office: 1° of latitude north of Almaty.
    assert geo.distance_to_polyline_km((ALMATY[0] + 1, ALMATY[1]), route[:2]) == pytest.approx(111.19, abs=0.01)
    # Almaty → Zhibek Zholy by the spherical law of cosines, independently of haversine.
    phi1, phi2 = math.radians(ALMATY[0]), math.radians(ZHIBEK_ZHOLY[0])
    central = math.acos(
        math.sin(phi1) * math.sin(phi2)
        + math.cos(phi1) * math.cos(phi2) * math.cos(math.radians(ZHIBEK_ZHOLY[1] - ALMATY[1]))
    )
    assert geo.haversine_km(*ALMATY, *ZHIBEK_ZHOLY) == pytest.approx(central * geo.EARTH_RADIUS_KM, abs=1e-6)


async def test_an_arrival_without_its_border_crossings_ends_as_usual_and_raises_an_unrecorded_crossings_alert(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """Issue 14: Almaty → Ashgabat with Kazakhstan's exit at Zhibek Zholy and Turkmenistan's entry at Farap never
    recorded (Uzbekistan records both of its crossings). Ashgabat accepts the arrival as NCTS does, and Kazakhstan
    writes the movement off and frees the guarantee as always; Turkmenistan asks Kazakhstan at once what it holds,
    and when the wait has passed with both crossings still missing it raises one `unrecorded-crossings` alert naming
    them, for the departure country and the countries whose crossings are missing (KZ, and TM itself), not for
    Uzbekistan. It is on both timelines and open until customs close it; the check does not raise it twice."""
    kz, uz, tm = corridor["KZ"], corridor["UZ"], corridor["TM"]
    mrn = (await kz.client.post("/v1/declarations", json=declaration(), headers=customs["KZ"])).json()["mrn"]
    assert (await kz.client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])).status_code == 200
    await corridor.deliver_all()
    for node, path, body in (
        (uz, "crossings", {"office": "UZGIS001", "direction": "entry"}),
        (uz, "crossings", {"office": "UZALT001", "direction": "exit"}),
        (tm, "arrival", {"office": "TMASB001"}),
        (tm, "control-results", {"code": "A1"}),
    ):
        at = clock.utcnow().astimezone(ASHGABAT).isoformat()
        step = await node.client.post(
            f"/v1/movements/{mrn}/{path}", json={**body, "at": at}, headers=customs[node.node.id]
        )
        assert step.status_code == 201, step.text
        await corridor.deliver_all()

    movement = (await kz.client.get(f"/v1/movements/{mrn}", headers=customs["KZ"])).json()
    assert movement["status"] == "closed"
    held = (await kz.client.get(f"/v1/guarantees/{guarantee}", headers=customs["KZ"])).json()
    assert held["reserved"] == "0.00" and held["available"] == held["reference_amount"]

    assert await check_unrecorded_crossings(tm.node) == []  # not yet: a crossing may still be on its way
    wait = timedelta(minutes=tm.node.settings.unrecorded_crossings_wait_minutes)
    later = clock.utcnow() + wait + timedelta(seconds=1)
    assert len(await check_unrecorded_crossings(tm.node, now=later)) == 1
    assert await check_unrecorded_crossings(tm.node, now=later + timedelta(minutes=5)) == []
    await corridor.deliver_all()
    on_tm = (await tm.client.get("/v1/alerts", params={"mrn": mrn}, headers=customs["TM"])).json()["items"]
    assert [(a["rule"], a["raised_by"], a["status"], a["office"]) for a in on_tm] == [
        ("unrecorded-crossings", "TM", "open", "TMASB001")
    ]
    details = on_tm[0]["details"]
    assert details["missing"] == [
        {"country": "KZ", "direction": "exit", "office": "KZZHZ001", "name": "Zhibek Zholy"},
        {"country": "TM", "direction": "entry", "office": "TMFAR001", "name": "Farap"},
    ]
    assert details["addressed_to"] == ["KZ", "TM"]
    assert "KZ exit at Zhibek Zholy (KZZHZ001)" in details["summary"]
    assert "TM entry at Farap (TMFAR001)" in details["summary"]
    on_kz = (await kz.client.get("/v1/alerts", params={"status": "open"}, headers=customs["KZ"])).json()["items"]
    assert [(a["id"], a["rule"], a["raised_by"], a["details"]) for a in on_kz] == [
        (on_tm[0]["id"], "unrecorded-crossings", "TM", details)
    ]
    assert (await uz.client.get("/v1/alerts", headers=customs["UZ"])).json()["items"] == []
    async with tm.node.sessionmaker() as session:
        asked = await session.execute(select(OutboxMessage.peer).where(OutboxMessage.type == "transit.status-request"))
        assert [row.peer for row in asked] == ["KZ"]  # the missing exit's country is asked what it holds

    for node in ("KZ", "TM"):
        timeline = (await corridor[node].client.get(f"/v1/consignments/{mrn}/timeline", headers=customs[node])).json()
        shown = [
            (e["step"], e["details"].get("rule"), e["signedBy"], e["eventID"])
            for e in timeline["events"]
            if e["step"] == "alert"
        ]
        assert shown == [("alert", "unrecorded-crossings", "TM", f"urn:uuid:{on_tm[0]['id']}")], (node, shown)

    # The public view names the rule and the missing crossings, in English and in Russian (no KeyError, no "Alert").
    code = (await kz.client.get(f"/v1/movements/{mrn}", headers=customs["KZ"])).json()["tracking_code"]
    for lang, label, crossings in (
        ("en", "Border crossings not recorded", "exit at Zhibek Zholy, entry at Farap"),
        ("ru", "Пересечения границ не зарегистрированы", "выезд — Жибек Жолы, въезд — Фарап"),
    ):
        public = await kz.client.get(f"/v1/track/{code}", params={"lang": lang})
        assert public.status_code == 200, public.text
        [alert] = [step for step in public.json()["timeline"] if step["alert"]]
        assert (alert["rule"], alert["label"]) == ("unrecorded-crossings", label), alert
        assert crossings in alert["detail"], alert

    note = {"note": "KZ exit confirmed from the Zhibek Zholy paper log; TM entry recorded late at Farap"}
    closed = await kz.client.post(f"/v1/alerts/{on_kz[0]['id']}/close", json=note, headers=customs["KZ"])
    assert (closed.status_code, closed.json()["status"], closed.json()["closed_note"]) == (200, "closed", note["note"])
    assert (await kz.client.get("/v1/alerts", params={"status": "open"}, headers=customs["KZ"])).json()["items"] == []


async def test_a_crossing_that_reaches_the_destination_after_the_arrival_raises_no_alert(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """Kazakhstan's exit is recorded, but its message has not reached Ashgabat when the arrival is recorded there
    (a retry, a node down): Turkmenistan asks, the exit comes, and when the wait is over nothing is missing."""
    del guarantee
    kz, uz, tm = corridor["KZ"], corridor["UZ"], corridor["TM"]
    mrn = (await kz.client.post("/v1/declarations", json=declaration(), headers=customs["KZ"])).json()["mrn"]
    assert (await kz.client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])).status_code == 200
    await corridor.deliver_all()
    steps = (
        (kz, "crossings", {"office": "KZZHZ001", "direction": "exit"}),
        (uz, "crossings", {"office": "UZGIS001", "direction": "entry"}),
        (uz, "crossings", {"office": "UZALT001", "direction": "exit"}),
        (tm, "crossings", {"office": "TMFAR001", "direction": "entry"}),
        (tm, "arrival", {"office": "TMASB001"}),
    )
    for node, path, body in steps:
        step = await node.client.post(f"/v1/movements/{mrn}/{path}", json=body, headers=customs[node.node.id])
        assert step.status_code == 201, step.text
        await uz.deliver()
        await tm.deliver()  # Kazakhstan's outbox holds its exit until the end
    async with tm.node.sessionmaker() as session:
        asked = await session.execute(select(OutboxMessage.peer).where(OutboxMessage.type == "transit.status-request"))
        assert [row.peer for row in asked] == ["KZ"]
    await corridor.deliver_all()
    wait = timedelta(minutes=tm.node.settings.unrecorded_crossings_wait_minutes)
    assert await check_unrecorded_crossings(tm.node, now=clock.utcnow() + wait + timedelta(seconds=1)) == []
    assert (await tm.client.get("/v1/alerts", params={"mrn": mrn}, headers=customs["TM"])).json()["items"] == []
