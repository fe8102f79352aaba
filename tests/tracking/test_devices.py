"""Devices belong to what they seal (issue 13, finding 2): an e-seal's pings are taken only from the client the
device is registered to, for a movement whose declaration lists the device's seal, at the node the movement
departs, while it is on the road. Alerts raised from pings name the device and the client; the public tracking
view shows the last office passed, never a position from a ping."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import func, select

from tests.support.inprocess import InProcessCorridor
from tests.tracking.conftest import DEVICE, SEAL, device_client, device_for, travel
from transit_window import clock
from transit_window.db.session import unit_of_work
from transit_window.tracking import devices
from transit_window.tracking.models import TrackingAlert, TrackingPosition

ALMATY = (43.24, 76.89)
FORGED = (45.0, 60.0)  # the forged position: far off the road, in the Aral desert


def ping(mrn: str, *, device: str = DEVICE, minutes_ago: int = 30, **fields: Any) -> dict[str, Any]:
    at = clock.utcnow() - timedelta(minutes=minutes_ago)
    body: dict[str, Any] = {"device_id": device, "mrn": mrn, "time": at.isoformat(), "lat": ALMATY[0], "lon": ALMATY[1]}
    body.update(fields)
    return body


def forged(mrn: str, *, device: str) -> dict[str, Any]:
    """The issue's attack: a tampered seal reported far off the route, now (after every step recorded so far)."""
    return ping(mrn, device=device, minutes_ago=0, lat=FORGED[0], lon=FORGED[1], seal_state="tampered")


async def counts(corridor: InProcessCorridor, node: str = "KZ") -> tuple[int, int]:
    async with corridor[node].node.sessionmaker() as session:
        pings = await session.scalar(select(func.count()).select_from(TrackingPosition))
        alerts = await session.scalar(select(func.count()).select_from(TrackingAlert))
    return int(pings or 0), int(alerts or 0)


def refused(response: Any, status: int) -> list[tuple[str, str]]:
    """The (pointer, code) of each refused ping of a refused batch."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert "nothing stored" in body["detail"]
    return [(error["pointer"], error["code"]) for error in body["errors"]]


async def test_a_device_token_cannot_report_for_a_device_or_movement_that_is_not_its_own(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """The issue's attack, three ways: the legitimate device client naming a device it does not own, another client
    naming the legitimate device, and another client's own registered e-seal naming a movement it does not seal."""
    mrn = (await travel(corridor, customs, until="exit-kz")).mrn
    kz = corridor["KZ"].client
    owner = await device_for(corridor, "KZ", devices={DEVICE: SEAL})
    attacker = await device_for(corridor, "KZ", devices={"ATTACKER-1": "KZ-SEAL-666666"})

    unregistered = await kz.post(
        "/v1/tracking/positions", json={"pings": [forged(mrn, device="ESEAL-NOBODY")]}, headers=owner
    )
    assert refused(unregistered, 403) == [("/body/pings/0/device_id", "not-your-device")]
    assert "PUT /v1/devices/ESEAL-NOBODY" in unregistered.json()["detail"]
    borrowed = await kz.post("/v1/tracking/positions", json={"pings": [forged(mrn, device=DEVICE)]}, headers=attacker)
    assert refused(borrowed, 403) == [("/body/pings/0/device_id", "not-your-device")]
    wrong_seal = await kz.post(
        "/v1/tracking/positions", json={"pings": [forged(mrn, device="ATTACKER-1")]}, headers=attacker
    )
    assert refused(wrong_seal, 422) == [("/body/pings/0/device_id", "not-this-movement")]
    assert "KZ-SEAL-666666" in wrong_seal.json()["detail"] and mrn in wrong_seal.json()["detail"]
    assert await counts(corridor) == (0, 0)  # nothing stored, no alert raised, nothing shared
    await corridor.deliver_all()
    assert await counts(corridor, "UZ") == (0, 0)


async def test_a_batch_names_every_refused_ping_and_the_strongest_reason_sets_the_status(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """One batch, four pings: the device's own (fine), a foreign device (403), the device with a seal it does not
    carry (422), a time in the future (422). The batch is refused whole with a 403 naming the three bad pings."""
    mrn = (await travel(corridor, customs, until="exit-kz")).mrn
    device = await device_for(corridor, "KZ", devices={DEVICE: SEAL})
    await device_for(corridor, "KZ", devices={"OTHER-7": None})
    pings = [
        ping(mrn),
        ping(mrn, device="OTHER-7", minutes_ago=29),
        ping(mrn, minutes_ago=28, seal_id="KZ-SEAL-000732"),
        ping(mrn, minutes_ago=-120),
    ]
    response = await corridor["KZ"].client.post("/v1/tracking/positions", json={"pings": pings}, headers=device)
    assert refused(response, 403) == [
        ("/body/pings/1/device_id", "not-your-device"),
        ("/body/pings/2/seal_id", "14"),
        ("/body/pings/3/time", "future"),
    ]
    assert response.json()["error_count"] == 3
    assert await counts(corridor) == (0, 0)


async def test_a_closed_movement_takes_no_pings(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    mrn = (await travel(corridor, customs)).mrn  # to Ashgabat and closed
    device = await device_for(corridor, "KZ", devices={DEVICE: SEAL})
    response = await corridor["KZ"].client.post(
        "/v1/tracking/positions", json={"pings": [forged(mrn, device=DEVICE)]}, headers=device
    )
    assert refused(response, 409) == [("/body/pings/0/mrn", "not-on-the-road")]
    assert "released or in transit" in response.json()["detail"]
    assert await counts(corridor) == (0, 0)


async def test_a_route_country_takes_no_pings_for_a_movement_it_does_not_depart(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """Uzbekistan holds the movement as a route country; even a device registered there with the declaration's
    seal is sent to the departure node (Kazakhstan's alerts are the ones shared with the route)."""
    mrn = (await travel(corridor, customs, until="entry-uz")).mrn
    device = await device_for(corridor, "UZ", devices={DEVICE: SEAL})
    response = await corridor["UZ"].client.post(
        "/v1/tracking/positions", json={"pings": [forged(mrn, device=DEVICE)]}, headers=device
    )
    assert refused(response, 409) == [("/body/pings/0/mrn", "not-departure")]
    assert "departure node (KZ)" in response.json()["detail"]
    assert await counts(corridor, "UZ") == (0, 0)


async def test_the_registered_device_is_heard_and_its_alerts_name_the_device_and_the_client(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """A gateway client with two e-seals: one naming the movement by MRN, one by its seal number only (a device id
    that is its seal). Its detour and opened seal raise alerts that name the device and the client, here and in
    the message Uzbekistan receives."""
    mrn = (await travel(corridor, customs, until="exit-kz")).mrn
    client_id, gateway = await device_client(corridor, "KZ", devices={DEVICE: SEAL, "KZ-SEAL-000731": None})
    pings = [
        ping(mrn, minutes_ago=40),
        {**ping(mrn, device="KZ-SEAL-000731", minutes_ago=35, seal_id=SEAL), "mrn": None},
        forged(mrn, device=DEVICE),
    ]
    response = await corridor["KZ"].client.post("/v1/tracking/positions", json={"pings": pings}, headers=gateway)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["stored"] == 3
    assert sorted(alert["rule"] for alert in result["alerts"]) == ["route-deviation", "seal-opened"]
    assert {(alert["device_id"], alert["client_id"]) for alert in result["alerts"]} == {(DEVICE, client_id)}

    listed = await corridor["KZ"].client.get("/v1/alerts", params={"mrn": mrn}, headers=customs["KZ"])
    assert {(alert["device_id"], alert["client_id"]) for alert in listed.json()["items"]} == {(DEVICE, client_id)}
    await corridor.deliver_all()
    shared = await corridor["UZ"].client.get("/v1/alerts", params={"mrn": mrn}, headers=customs["UZ"])
    items = shared.json()["items"]
    assert len(items) == 2 and {(alert["raised_by"], alert["device_id"]) for alert in items} == {("KZ", DEVICE)}
    assert {alert["client_id"] for alert in items} == {client_id}


async def test_the_public_view_shows_the_last_office_passed_never_a_ping_position(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """A detour with the seal opened on the road is on the public timeline, but `current_place` stays at the last
    office passed (Zhibek Zholy, Kazakhstan), and neither the JSON nor the page carries the ping's coordinates."""
    moving = await travel(corridor, customs, until="exit-kz")
    device = await device_for(corridor, "KZ", devices={DEVICE: SEAL})
    kz = corridor["KZ"].client
    posted = await kz.post(
        "/v1/tracking/positions", json={"pings": [forged(moving.mrn, device=DEVICE)]}, headers=device
    )
    assert posted.status_code == 200, posted.text
    assert len(posted.json()["alerts"]) == 2

    public = await kz.get(f"/v1/track/{moving.tracking_code}")
    assert public.status_code == 200, public.text
    track = public.json()
    assert [step["alert"] for step in track["timeline"]][-2:] == [True, True]
    current = track["current_place"]
    assert (current["office"], current["country"]) == ("KZZHZ001", "KZ")
    assert (current["lat"], current["lon"]) != FORGED
    assert b"45.0" not in orjson.dumps(track["current_place"])
    page = await kz.get(f"/track/{moving.tracking_code}")
    assert page.status_code == 200
    position = re.search(r'id="position"[^>]*>([^<]*)<', page.text)
    assert position is not None and position.group(1).split() == ["Zhibek", "Zholy,", "Kazakhstan"]
    assert 'class="alert-marker"' not in page.text  # the alerts on the road are listed, not drawn
    assert 'data-office="KZZHZ001"' in page.text.split('id="truck"', 1)[1].split(">", 1)[0]


async def test_an_admin_registers_moves_and_retires_devices(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """`PUT /v1/devices/{id}` registers a device to a device client (again: changes its seal); a device of one
    client is not moved to another until retired; a retired device is not heard."""
    mrn = (await travel(corridor, customs, until="exit-kz")).mrn
    kz = corridor["KZ"]
    first_id, first = await device_client(corridor, "KZ", devices={})
    second_id, _ = await device_client(corridor, "KZ", devices={})
    url = f"/v1/devices/{DEVICE}"

    registered = await kz.client.put(url, json={"client_id": first_id, "seal_id": "KZ-SEAL-000000"}, headers=kz.admin)
    assert registered.status_code == 200, registered.text
    assert registered.json()["seal_id"] == "KZ-SEAL-000000"
    wrong_seal = await kz.client.post("/v1/tracking/positions", json={"pings": [ping(mrn)]}, headers=first)
    assert refused(wrong_seal, 422) == [("/body/pings/0/device_id", "not-this-movement")]
    again = await kz.client.put(url, json={"client_id": first_id, "seal_id": SEAL}, headers=kz.admin)
    assert again.status_code == 200 and again.json()["seal_id"] == SEAL
    heard = await kz.client.post("/v1/tracking/positions", json={"pings": [ping(mrn)]}, headers=first)
    assert heard.status_code == 200, heard.text

    taken = await kz.client.put(url, json={"client_id": second_id}, headers=kz.admin)
    assert taken.status_code == 409 and "retire it" in taken.json()["detail"]
    not_device = await kz.client.put("/v1/devices/X-1", json={"client_id": "no-such-client"}, headers=kz.admin)
    assert not_device.status_code == 422 and not_device.json()["errors"][0]["pointer"] == "/body/client_id"
    listed = await kz.client.get("/v1/devices", headers=kz.admin)
    assert [(item["device_id"], item["client_id"]) for item in listed.json()["items"]] == [(DEVICE, first_id)]
    assert (await kz.client.put(url, json={"client_id": first_id}, headers=customs["KZ"])).status_code == 403

    assert (await kz.client.delete(url, headers=kz.admin)).status_code == 204
    assert (await kz.client.delete(url, headers=kz.admin)).status_code == 404
    retired = await kz.client.post("/v1/tracking/positions", json={"pings": [ping(mrn, minutes_ago=5)]}, headers=first)
    assert refused(retired, 403) == [("/body/pings/0/device_id", "not-your-device")]


async def test_two_registrations_of_one_device_at_once_both_succeed(corridor: InProcessCorridor) -> None:
    """Found by the chaos run: a gateway's retried PUT racing its first made the loser a 500 (primary key). Here the
    second registration reads before the first commits and inserts while it is still open (PostgreSQL: it waits on
    the first's key, then must not fail; SQLite takes one writer at a time, so there it simply comes second)."""
    kz = corridor["KZ"]
    owner_id, _ = await device_client(corridor, "KZ", devices={})

    async def second() -> str | None:
        async with unit_of_work(kz.node) as session:
            registered = await devices.register(
                session, device_id="ESEAL-KZ-RACE", client_id=owner_id, seal_id=SEAL, registered_by="test"
            )
            return registered.seal_id

    async with unit_of_work(kz.node) as session:
        await devices.register(
            session, device_id="ESEAL-KZ-RACE", client_id=owner_id, seal_id="KZ-SEAL-000000", registered_by="test"
        )
        racing = asyncio.create_task(second())
        await asyncio.sleep(0.5)  # the second has looked, found nothing, and waits on the first's uncommitted row
    assert await racing == SEAL  # the same owner: it only changed the seal
    listed = await kz.client.get("/v1/devices", headers=kz.admin)
    assert [(item["device_id"], item["seal_id"]) for item in listed.json()["items"]] == [("ESEAL-KZ-RACE", SEAL)]
