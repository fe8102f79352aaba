"""A guarantee covers its reference amount and no more: releases that would overdraw it are refused, also when
they all arrive at once, and what a movement reserved comes back when it is cancelled."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import func, select

from tests.declarations.conftest import declaration
from tests.support.inprocess import InProcessCorridor
from transit_window.declarations.models import Movement
from transit_window.protocol.models import OutboxMessage

SMALL_GRN = "26KZ0000000005678"


async def test_twenty_concurrent_releases_against_a_guarantee_for_five_release_exactly_five(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], papers: list[str]
) -> None:
    """A forwarder's guarantee of 5,000 USD covers five trucks of 1,000 USD each. Twenty declarations are released
    at the same moment (on PostgreSQL the node really serves them concurrently): five go, fifteen are refused with
    a problem that names the guarantee and what is left of it; the guarantee is then reserved exactly five times
    1,000."""
    kz = corridor["KZ"]
    registered = await kz.client.post(
        "/v1/guarantees",
        json={"grn": SMALL_GRN, "holder_id": "230340000126", "reference_amount": "5000.00", "currency": "USD"},
        headers=customs["KZ"],
    )
    assert registered.status_code == 201, registered.text
    body = declaration(guarantee={"grn": SMALL_GRN, "amount": "1000.00", "currency": "USD"})
    created = await asyncio.gather(
        *(kz.client.post("/v1/declarations", json=body, headers=customs["KZ"]) for _ in range(20))
    )
    assert [response.status_code for response in created] == [201] * 20
    mrns = [response.json()["mrn"] for response in created]

    releases = await asyncio.gather(
        *(kz.client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"]) for mrn in mrns)
    )
    assert Counter(response.status_code for response in releases) == {200: 5, 409: 15}
    for response in releases:
        if response.status_code == 409:
            problem = response.json()
            assert response.headers["content-type"] == "application/problem+json"
            assert problem["type"] == "urn:dtc:problem:conflict"
            assert (problem["grn"], problem["available"]) == (SMALL_GRN, "0.00")
            assert SMALL_GRN in problem["detail"] and "0.00 is still available" in problem["detail"]
        else:
            assert response.json()["status"] == "released"
    released = [mrn for mrn, response in zip(mrns, releases, strict=True) if response.status_code == 200]
    refused = [mrn for mrn, response in zip(mrns, releases, strict=True) if response.status_code == 409]

    held = (await kz.client.get(f"/v1/guarantees/{SMALL_GRN}", headers=customs["KZ"])).json()
    assert (held["reserved"], held["available"]) == ("5000.00", "0.00")
    async with kz.node.sessionmaker() as session:
        statuses = {mrn: status for mrn, status in await session.execute(select(Movement.mrn, Movement.status))}
        announced = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.type == "transit.anticipated")
        )
    assert sorted(mrn for mrn, status in statuses.items() if status == "released") == sorted(released)
    assert all(statuses[mrn] == "accepted" for mrn in refused)
    assert announced == 5 * 2  # each released movement is announced to UZ and TM; the refused ones to nobody

    # One truck is cancelled before it leaves: its 1,000 come back and one of the refused can go.
    cancelled = await kz.client.post(
        f"/v1/declarations/{released[0]}/cancel", json={"reason": "the truck broke down"}, headers=customs["KZ"]
    )
    assert cancelled.status_code == 200, cancelled.text
    held = (await kz.client.get(f"/v1/guarantees/{SMALL_GRN}", headers=customs["KZ"])).json()
    assert (held["reserved"], held["available"]) == ("4000.00", "1000.00")
    retried = await kz.client.post(f"/v1/declarations/{refused[0]}/release", headers=customs["KZ"])
    assert retried.status_code == 200, retried.text
    again = await kz.client.post(f"/v1/declarations/{refused[1]}/release", headers=customs["KZ"])
    assert again.status_code == 409, again.text
    held = (await kz.client.get(f"/v1/guarantees/{SMALL_GRN}", headers=customs["KZ"])).json()
    assert (held["reserved"], held["available"]) == ("5000.00", "0.00")
