"""Issue 13, findings 5 and 8, on both databases: times at and past the ends of the calendar, and free text carrying
NUL, bidi or zero-width characters, are refused with a 422 naming the field. Before, a year-1 or year-9999 time
with an offset was a 500 (an OverflowError converting it to UTC), a crossing in 1900 was recorded, and an alert's
note with a NUL was a 500 on PostgreSQL."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.support.inprocess import InProcessCorridor
from tests.tracking.conftest import DECLARANT, client_for, travel
from tests.tracking.test_positions import ping
from transit_window import clock
from transit_window.db.session import unit_of_work
from transit_window.declarations.models import Movement
from transit_window.tracking import alerts

START_OF_TIME = "0001-01-01T00:00:00+14:00"
END_OF_TIME = "9999-12-31T23:59:59-14:00"
OUT_OF_RANGE = [START_OF_TIME, END_OF_TIME, "0001-01-01T00:00:00Z", "1900-01-01T00:00:00Z", "2100-01-01T00:00:00Z"]
# The ends of the range, as far as they go each way with an offset.
EDGES = ["2000-01-01T00:00:00Z", "2000-01-01T14:00:00+14:00", "2099-12-31T23:59:59Z", "2099-12-31T09:59:59-14:00"]
HIDDEN = ["note\x00", "Driver called \u202eTLL", "seal\u200bintact", "\ufeffBOM", "left\u2066isolate\u2069", "a\u061cb"]


def refused(response: httpx.Response, pointer: str) -> None:
    assert response.status_code == 422, (pointer, response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert pointer in [error["pointer"] for error in response.json()["errors"]], response.json()


def cursor_at(moment: str) -> str:
    return base64.urlsafe_b64encode(f"{moment}|00000000-0000-0000-0000-000000000000".encode()).decode().rstrip("=")


async def test_times_outside_the_corridor_range_are_422s_naming_the_field(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    mrn = (await travel(corridor, customs, until="exit-kz")).mrn
    kz = corridor["KZ"].client
    forwarder = await client_for(corridor, "KZ", role="forwarder", party_id=DECLARANT)
    device = await client_for(corridor, "KZ", role="device", party_id=None)
    for moment in OUT_OF_RANGE:
        for name in ("GE_eventTime", "LT_eventTime"):
            refused(await kz.get("/v1/events", params={name: moment}, headers=forwarder), f"/query/{name}")
        refused(await kz.get("/v1/events", params={"cursor": cursor_at(moment)}, headers=forwarder), "/query/cursor")
        refused(
            await kz.post(
                "/v1/tracking/positions", json={"pings": [ping(clock.utcnow(), 0.1, time=moment)]}, headers=device
            ),
            "/body/pings/0/time",
        )
        crossing = {"office": "UZGIS001", "direction": "entry", "at": moment}
        uz = corridor["UZ"].client
        refused(await uz.post(f"/v1/movements/{mrn}/crossings", json=crossing, headers=customs["UZ"]), "/body/at")
    for moment in EDGES:
        for name in ("GE_eventTime", "LT_eventTime"):
            answer = await kz.get("/v1/events", params={name: moment}, headers=forwarder)
            assert answer.status_code == 200, (name, moment, answer.text)
        answer = await kz.get("/v1/events", params={"cursor": cursor_at(moment)}, headers=forwarder)
        assert answer.status_code == 200, (moment, answer.text)
    # Inside the range, the domain's own window still holds: a crossing a day ahead is refused as in the future.
    ahead = {"office": "UZGIS001", "direction": "entry", "at": clock.isoformat(clock.utcnow() + timedelta(days=1))}
    refused(
        await corridor["UZ"].client.post(f"/v1/movements/{mrn}/crossings", json=ahead, headers=customs["UZ"]),
        "/body/at",
    )


async def test_free_text_with_control_bidi_or_zero_width_characters_is_refused(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    mrn = (await travel(corridor, customs, until="exit-kz")).mrn
    kz = corridor["KZ"]
    async with unit_of_work(kz.node) as session:
        movement = await session.get(Movement, mrn)
        assert movement is not None
        alert = await alerts.raise_alert(
            session, kz.node, movement, rule="long-stop", at=clock.utcnow(), details={"minutes": 90}
        )
        assert alert is not None
    acknowledge = f"/v1/alerts/{alert.id}/acknowledge"
    for text in HIDDEN:
        refused(await kz.client.post(acknowledge, json={"note": text}, headers=customs["KZ"]), "/body/note")
        refused(
            await kz.client.post(f"/v1/alerts/{alert.id}/close", json={"note": text}, headers=customs["KZ"]),
            "/body/note",
        )
        cancel: dict[str, Any] = {"reason": text}
        refused(
            await kz.client.post(f"/v1/declarations/{mrn}/cancel", json=cancel, headers=customs["KZ"]), "/body/reason"
        )
        step = {"office": "UZGIS001", "direction": "entry", "at": clock.isoformat(clock.utcnow()), "remarks": text}
        refused(
            await corridor["UZ"].client.post(f"/v1/movements/{mrn}/crossings", json=step, headers=customs["UZ"]),
            "/body/remarks",
        )
    # Plain text in any script is welcome.
    note = {"note": "Водитель позвонил: объезд у Тараза (road works) — ok"}  # noqa: RUF001
    answer = await kz.client.post(acknowledge, json=note, headers=customs["KZ"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["acknowledged_note"] == note["note"]


@pytest.mark.parametrize("text", HIDDEN, ids=["nul", "rlo", "zwsp", "bom", "isolates", "alm"])
def test_the_one_validator_refuses_each_hidden_character(text: str) -> None:
    from transit_window.text import printable

    with pytest.raises(ValueError, match="U\\+"):
        printable(text)
