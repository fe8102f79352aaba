"""A quota and an application that name no date: the quota is for this year of the issuer's calendar, and the
permits start today in the carrier's (README's tour and the examples in `openapi/examples/` send them so)."""

from __future__ import annotations

from tests.permits.conftest import CARRIER
from tests.support.calendar import today
from tests.support.inprocess import InProcessCorridor
from transit_window.permits.years import local_today


async def test_a_quota_and_an_application_without_dates_take_todays(
    corridor: InProcessCorridor, authority: dict[str, dict[str, str]]
) -> None:
    granted = await corridor["UZ"].client.post(
        "/v1/permits/quotas", json={"holder": "KZ", "type": "transit", "quantity": 5}, headers=authority["UZ"]
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["year"] == local_today("UZ").year
    await corridor.deliver_all()

    applied = await corridor["KZ"].client.post(
        "/v1/permits/applications",
        json={"carrier": CARRIER, "plate": "123ABC02", "route": ["KZ", "UZ", "TM"]},
        headers=authority["KZ"],
    )
    assert applied.status_code == 201, applied.text
    assert applied.json()["valid_from"] == today("KZ").isoformat()
    await corridor.deliver_all()
    answer = (await corridor["KZ"].client.get(applied.headers["location"], headers=authority["KZ"])).json()
    [uz] = [request for request in answer["requests"] if request["country"] == "UZ"]
    assert uz["status"] == "issued", uz
