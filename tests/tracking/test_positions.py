"""E-seal devices post batches of pings: up to 10,000 at once, each stored once however often the batch is sent;
a batch with any bad ping is refused whole with a problem naming the ping, and nothing of it is stored."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from tests.support.inprocess import InProcessCorridor
from tests.tracking.conftest import client_for, travel
from transit_window import clock
from transit_window.tracking.models import TrackingPosition, TrackingPositionState

SEAL = "KZ-SEAL-000731"  # the seal in the test declaration
ALMATY = (43.24, 76.89)
ZHIBEK_ZHOLY = (41.38, 69.12)


def ping(at: datetime, fraction: float, **fields: Any) -> dict[str, Any]:
    """A ping on the road from Almaty (0) to the Zhibek Zholy crossing (1), naming the movement by its seal."""
    body: dict[str, Any] = {
        "device_id": "ESEAL-KZ-0042",
        "seal_id": SEAL,
        "time": at.isoformat(),
        "lat": round(ALMATY[0] + (ZHIBEK_ZHOLY[0] - ALMATY[0]) * fraction, 6),
        "lon": round(ALMATY[1] + (ZHIBEK_ZHOLY[1] - ALMATY[1]) * fraction, 6),
        "speed": 72.0,
        "seal_state": "closed",
    }
    body.update(fields)
    return body


async def stored(corridor: InProcessCorridor, node: str = "KZ") -> int:
    async with corridor[node].node.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(TrackingPosition)) or 0)


async def test_a_batch_of_10000_pings_is_stored_once_however_often_it_is_sent(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    mrn = (await travel(corridor, customs, until="exit-kz")).mrn
    device = await client_for(corridor, "KZ", role="device", party_id=None)
    kz = corridor["KZ"].client
    start = clock.utcnow() - timedelta(hours=4)
    # Every second for 10,000 s, half naming the seal and half the MRN (and the seal: it must be this movement's).
    pings = [ping(start + timedelta(seconds=i), 0.5 * i / 10_000) for i in range(10_000)]
    for item in pings[1::2]:
        item["mrn"] = mrn
    first = await kz.post("/v1/tracking/positions", json={"pings": pings}, headers=device)
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 10_000, "stored": 10_000, "duplicates": 0, "alerts": []}
    assert await stored(corridor) == 10_000

    again = await kz.post("/v1/tracking/positions", json={"pings": pings[:1000]}, headers=device)
    assert again.json() == {"received": 1000, "stored": 0, "duplicates": 1000, "alerts": []}
    # A batch that overlaps: 500 old pings, 500 new, and one ping repeated inside the batch.
    later = [ping(start + timedelta(seconds=10_000 + i), 0.5 + 0.0001 * i) for i in range(500)]
    mixed = await kz.post("/v1/tracking/positions", json={"pings": pings[-500:] + later + later[:1]}, headers=device)
    assert mixed.json() == {"received": 1001, "stored": 500, "duplicates": 501, "alerts": []}
    assert await stored(corridor) == 10_500

    async with corridor["KZ"].node.sessionmaker() as session:
        last = await session.get(TrackingPositionState, mrn)
        row = await session.get(TrackingPosition, ("ESEAL-KZ-0042", mrn, start + timedelta(seconds=3)))
    assert last is not None and last.last_time == start + timedelta(seconds=10_499)
    assert (last.lat, last.lon) == (later[-1]["lat"], later[-1]["lon"])
    assert row is not None and (row.seal_id, row.seal_state, row.speed) == (SEAL, "closed", 72.0)


async def test_a_batch_with_one_bad_ping_is_refused_whole_and_nothing_is_stored(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    mrn = (await travel(corridor, customs, until="exit-kz")).mrn
    device = await client_for(corridor, "KZ", role="device", party_id=None)
    kz = corridor["KZ"].client
    start = clock.utcnow() - timedelta(hours=1)

    def batch(index: int, **bad: Any) -> list[dict[str, Any]]:
        good = [ping(start + timedelta(minutes=i), 0.01 * i) for i in range(20)]
        good[index].update(bad)
        return good

    future = (clock.utcnow() + timedelta(hours=1)).isoformat()
    cases = [
        (batch(3, lat=91.0), "/body/pings/3/lat"),
        (batch(4, lon=-180.5), "/body/pings/4/lon"),
        (batch(5, time=future), "/body/pings/5/time"),
        (batch(6, time="2026-05-04T08:15:00"), "/body/pings/6/time"),  # no offset
        (batch(12, seal_id="KZ-SEAL-999999"), "/body/pings/12/seal_id"),  # not a seal this node knows
        (batch(13, mrn="26KZ55020T999999J1"), "/body/pings/13/mrn"),  # not a movement this node holds
        (batch(14, mrn=mrn, seal_id="KZ-SEAL-999999"), "/body/pings/14/seal_id"),  # not this movement's seal
        (batch(15, seal_id=None), "/body/pings/15/mrn"),  # names no movement at all
        (batch(16, seal_state="unknown"), "/body/pings/16/seal_state"),
        (batch(17, speed=-3), "/body/pings/17/speed"),
    ]
    for pings, pointer in cases:
        response = await kz.post("/v1/tracking/positions", json={"pings": pings}, headers=device)
        assert response.status_code == 422, (pointer, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert [error["pointer"] for error in response.json()["errors"]] == [pointer]
    assert await stored(corridor) == 0

    every = [ping(start, 0.0, seal_id="KZ-SEAL-999999", time=future) for _ in range(3)]
    many = await kz.post("/v1/tracking/positions", json={"pings": every}, headers=device)
    assert len(many.json()["errors"]) == 6

    too_many = [ping(start + timedelta(seconds=i), 0.0) for i in range(10_001)]
    refused = await kz.post("/v1/tracking/positions", json={"pings": too_many}, headers=device)
    assert refused.status_code == 422 and refused.json()["errors"][0]["pointer"] == "/body/pings"
    assert (await kz.post("/v1/tracking/positions", json={"pings": []}, headers=device)).status_code == 422
    oversized = await kz.post("/v1/tracking/positions", content=b"[" + b" " * (5 * 1024 * 1024) + b"]", headers=device)
    assert oversized.status_code == 413

    forwarder = await client_for(corridor, "KZ", role="forwarder", party_id="230340000126")
    good = {"pings": batch(0)}
    assert (await kz.post("/v1/tracking/positions", json=good, headers=forwarder)).status_code == 403
    assert (await kz.post("/v1/tracking/positions", json=good, headers=customs["KZ"])).status_code == 403
    assert (await kz.post("/v1/tracking/positions", json=good)).status_code == 401
    assert await stored(corridor) == 0
    assert (await kz.post("/v1/tracking/positions", json=good, headers=device)).json()["stored"] == 20
