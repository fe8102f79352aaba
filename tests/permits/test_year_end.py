"""Permits across the turn of the year, with the project's clock moved to the days that matter (the node processes
run the demo story under libfaketime at the same days: tests/corridor/test_calendar.py).

A year-Y permit stays valid into Y+1 as the rules file says (31 January for bilateral and transit permits, none for
multilateral ones), next year's quotas and applications open on 1 December, every day is the issuer's own calendar,
and release asks for permits valid when the truck will use them. The days are computed from the current year, so
the tests mean the same on any day they run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.declarations.conftest import GRN, declaration
from tests.support import keys
from tests.support.calendar import (
    THIS_YEAR,
    YEAR_END_INSTANTS,
    at,
    limit_date,
    next_leap_day,
    quota_year,
    today,
)
from tests.support.inprocess import InProcessCorridor
from tests.support.papers import provide_papers
from transit_window import clock
from transit_window.clients.service import add_client
from transit_window.codes.permit_rules import PermitRules, RulesFile
from transit_window.db.session import unit_of_work
from transit_window.permits.verify import verify_permit
from transit_window.permits.years import PermitYears, local_today, start_of

Headers = dict[str, dict[str, str]]
NODES = ("KZ", "UZ", "TM")
INSTANTS = YEAR_END_INSTANTS


@pytest.fixture
def when(request: pytest.FixtureRequest) -> Iterator[datetime]:
    """Move the project's clock to `request.param` before the corridor, its keys and trust list are made."""
    target: datetime = request.param
    clock.set_offset(target - datetime.now(UTC))
    try:
        yield target
    finally:
        clock.set_offset(timedelta(0))


def move_to(moment: datetime) -> None:
    clock.set_offset(moment - datetime.now(UTC))


@pytest.fixture
def genesis(when: datetime, members: dict[str, keys.TestMember], tmp_path: Path) -> tuple[Path, str]:
    """As the suite's genesis, issued at the moved clock and valid long enough for the tests' jumps."""
    del when
    chosen = [members[node] for node in NODES]
    trust = keys.signed(keys.trust_body(chosen, threshold=2, valid_for=timedelta(days=800)), chosen)
    path = tmp_path / "genesis.json"
    path.write_bytes(trust.to_json())
    return path, trust.sha256


async def _clients(corridor: InProcessCorridor, role: str) -> Headers:
    headers = {}
    for node in corridor.nodes:
        async with unit_of_work(corridor[node].node) as session:
            _, token = await add_client(session, name=f"{role} {node}", role=role)  # type: ignore[arg-type]
        headers[node] = {"Authorization": f"Bearer {token}"}
    return headers


async def _guarantee(corridor: InProcessCorridor, customs: Headers) -> None:
    response = await corridor["KZ"].client.post(
        "/v1/guarantees",
        json={"grn": GRN, "holder_id": "230340000126", "reference_amount": "25000.00", "currency": "USD"},
        headers=customs["KZ"],
    )
    assert response.status_code == 201, response.text


async def _declare(corridor: InProcessCorridor, customs: Headers, **changes: Any) -> str:
    created = await corridor["KZ"].client.post(
        "/v1/declarations", json=declaration(limit_date=limit_date(14), **changes), headers=customs["KZ"]
    )
    assert created.status_code == 201, created.text
    return str(created.json()["mrn"])


async def _permit(corridor: InProcessCorridor, headers: Headers, permit_id: str) -> dict[str, Any]:
    response = await corridor["KZ"].client.get(f"/v1/permits/{permit_id}", headers=headers["KZ"])
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.parametrize("when", INSTANTS.values(), ids=INSTANTS.keys(), indirect=True)
async def test_papers_release_use_and_verify_on_the_days_around_the_year_end(
    when: datetime, corridor: InProcessCorridor
) -> None:
    customs = await _clients(corridor, "customs")
    await _guarantee(corridor, customs)
    [permit_id] = await provide_papers(corridor, declaration())
    permit = await _permit(corridor, customs, permit_id)
    year = local_today("KZ").year  # the carrier's today decides the quota year
    assert permit["year"] == year and permit_id == f"UZ-KZ-{year}-2-1"
    # no valid_until asked: as long as UZ's year allows, 31 January of the next year, ending at midnight in Tashkent
    assert clock.parse(permit["expires_at"]) == start_of("UZ", date(year + 1, 2, 1))

    mrn = await _declare(corridor, customs)
    released = await corridor["KZ"].client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])
    assert released.status_code == 200, released.text

    entry = await corridor["UZ"].client.post(
        f"/v1/permits/{permit_id}/use",
        json={"activity": "ENTRY", "office": "UZGIS001", "plate": "123ABC02", "token": permit["token"]},
        headers=customs["UZ"],
    )
    assert entry.status_code == 200, entry.text
    online = await corridor["TM"].client.post(
        "/v1/permits/verify", json={"token": permit["token"]}, headers=customs["TM"]
    )
    assert online.json()["result"] == "valid", online.text
    offline = verify_permit(permit["token"], trust=corridor["TM"].node.trust, revocations={})
    assert offline.result == "valid", offline.reasons


@pytest.mark.parametrize("when", [INSTANTS["dec-20"]], ids=["dec-20"], indirect=True)
async def test_a_permit_is_valid_through_its_grace_and_not_a_minute_more(
    when: datetime, corridor: InProcessCorridor
) -> None:
    customs = await _clients(corridor, "customs")
    authority = await _clients(corridor, "permits")
    first, second = await provide_papers(corridor, declaration()), await provide_papers(corridor, declaration())
    [kept], [revoked] = first, second
    token = (await _permit(corridor, customs, kept))["token"]
    revoke = await corridor["UZ"].client.post(
        f"/v1/permits/{revoked}/revoke", json={"reason": "carrier licence suspended"}, headers=authority["UZ"]
    )
    assert revoke.status_code == 200, revoke.text
    await corridor.deliver_all()
    grace_ends = start_of("UZ", date(THIS_YEAR + 1, 2, 1))

    move_to(grace_ends - timedelta(minutes=30))  # 23:30 on 31 January in Tashkent: still valid
    entry = await corridor["UZ"].client.post(
        f"/v1/permits/{kept}/use",
        json={"activity": "ENTRY", "office": "UZGIS001", "plate": "123ABC02"},
        headers=customs["UZ"],
    )
    assert entry.status_code == 200, entry.text
    assert verify_permit(token, trust=corridor["KZ"].node.trust, revocations={}).result == "valid"
    listed = (await corridor["UZ"].client.get("/v1/permits/revocations")).json()
    assert [entry["id"] for entry in listed["revoked"]] == [revoked]  # still within its validity: listed

    move_to(grace_ends + timedelta(minutes=30))  # 00:30 on 1 February in Tashkent: over
    exit_ = await corridor["UZ"].client.post(
        f"/v1/permits/{kept}/use",
        json={"activity": "EXIT", "office": "UZALT001", "plate": "123ABC02"},
        headers=customs["UZ"],
    )
    assert exit_.status_code == 409, exit_.text
    detail = exit_.json()["detail"]
    assert f"{kept} expired at" in detail and f"{THIS_YEAR + 1}-02-01 00:00 Asia/Tashkent" in detail, detail
    assert "31 January" in detail or f"{THIS_YEAR + 1}-01-31" in detail, detail  # the rule that set the end
    verdict = verify_permit(token, trust=corridor["KZ"].node.trust, revocations={})
    assert verdict.result == "expired", verdict.reasons
    online = await corridor["KZ"].client.post("/v1/permits/verify", json={"token": token}, headers=customs["KZ"])
    assert online.json()["result"] == "expired", online.text
    listed = (await corridor["UZ"].client.get("/v1/permits/revocations")).json()
    assert listed["revoked"] == [] and listed["version"] == 1  # past its validity: no longer listed


@pytest.mark.parametrize(
    "when", [at(date(THIS_YEAR, 11, 30), 23, 0, "Asia/Tashkent")], ids=["nov-30-23h00-tashkent"], indirect=True
)
async def test_next_years_quotas_and_applications_open_on_the_first_of_december(
    when: datetime, corridor: InProcessCorridor
) -> None:
    authority = await _clients(corridor, "permits")
    next_year = THIS_YEAR + 1
    quota = {"holder": "KZ", "year": next_year, "type": "transit", "quantity": 5}
    early = await corridor["UZ"].client.post("/v1/permits/quotas", json=quota, headers=authority["UZ"])
    assert early.status_code == 422, early.text
    problem = early.json()
    assert problem["errors"][0]["pointer"] == "/body/year" and problem["errors"][0]["code"] == "14"
    assert f"applied for from {THIS_YEAR}-12-01 in Asia/Tashkent (today is {THIS_YEAR}-11-30)" in problem["detail"]
    application = {
        "carrier": {"id": "230340000126", "name": "Almaty Fruit Export LLP"},
        "plate": "123ABC02",
        "route": ["KZ", "UZ", "TM"],
        "valid_from": date(next_year, 1, 2).isoformat(),
    }
    refused = await corridor["KZ"].client.post("/v1/permits/applications", json=application, headers=authority["KZ"])
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["pointer"] == "/body/valid_from"
    assert f"transit permits of UZ for {next_year} are granted and applied for from {THIS_YEAR}-12-01" in refused.text

    move_to(at(date(THIS_YEAR, 12, 1), 0, 30, "Asia/Tashkent"))
    granted = await corridor["UZ"].client.post("/v1/permits/quotas", json=quota, headers=authority["UZ"])
    assert granted.status_code == 200, granted.text
    await corridor.deliver_all()
    created = await corridor["KZ"].client.post("/v1/permits/applications", json=application, headers=authority["KZ"])
    assert created.status_code == 201, created.text
    await corridor.deliver_all()
    answered = (await corridor["KZ"].client.get(created.headers["location"], headers=authority["KZ"])).json()
    [uz] = [request for request in answered["requests"] if request["country"] == "UZ"]
    assert uz["status"] == "issued" and uz["permit_id"] == f"UZ-KZ-{next_year}-2-1", answered
    permit = await _permit(corridor, authority, uz["permit_id"])
    assert clock.parse(permit["valid_from"]) == start_of("UZ", date(next_year, 1, 2))
    assert clock.parse(permit["expires_at"]) == start_of("UZ", date(next_year + 1, 2, 1))


@pytest.mark.parametrize(
    "when", [at(date(THIS_YEAR, 12, 31), 12, 0, "Asia/Tashkent")], ids=["dec-31-noon-tashkent"], indirect=True
)
async def test_a_multilateral_permit_ends_with_its_year_and_release_names_the_uncovered_entry(
    when: datetime, corridor: InProcessCorridor
) -> None:
    customs = await _clients(corridor, "customs")
    authority = await _clients(corridor, "permits")
    await _guarantee(corridor, customs)
    for year in (THIS_YEAR, THIS_YEAR + 1):
        quota = {"holder": "*", "year": year, "type": "transit", "quantity": 5}
        granted = await corridor["UZ"].client.post("/v1/permits/quotas", json=quota, headers=authority["UZ"])
        assert granted.status_code == 200, granted.text
    await provide_papers(corridor, declaration(), grant_quotas=False)  # drawn on the multilateral quota
    permits = (await corridor["KZ"].client.get("/v1/permits", headers=authority["KZ"])).json()
    [multilateral] = [item for item in permits["items"] if item["id"].endswith("-M1")]
    assert multilateral["id"] == f"UZ-KZ-{THIS_YEAR}-2-M1"
    # asked for no end: the multilateral quota gives no grace, so it ends at midnight in Tashkent on 31 December
    assert clock.parse(multilateral["expires_at"]) == start_of("UZ", date(THIS_YEAR + 1, 1, 1))

    mrn = await _declare(corridor, customs)
    refused = await corridor["KZ"].client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])
    assert refused.status_code == 409, refused.text
    [missing] = refused.json()["missing"]
    assert (missing["kind"], missing["country"], missing["next_year"]) == ("permit", "UZ", str(THIS_YEAR + 1))
    assert missing["next_year_opens"] == f"{THIS_YEAR}-12-01"
    # the truck may reach UZ before midnight (at a lorry's top speed) or after it (at the expected speed, plus grace)
    assert clock.parse(missing["needed_from"]) < start_of("UZ", date(THIS_YEAR + 1, 1, 1))
    assert clock.parse(missing["needed_at"]) > start_of("UZ", date(THIS_YEAR + 1, 1, 1))
    assert "valid when the truck may enter UZ, from" in missing["detail"]
    assert f"{multilateral['id']} from" in missing["detail"] and "not the whole of that time" in missing["detail"]
    assert f"the truck may enter in {THIS_YEAR + 1}: UZ's {THIS_YEAR + 1} quotas are open" in missing["detail"]

    application = {
        "carrier": {"id": "230340000126", "name": "Almaty Fruit Export LLP"},
        "plate": "123ABC02",
        "trailer_plate": "45TRL02",
        "route": ["KZ", "UZ", "TM"],
        "valid_from": date(THIS_YEAR + 1, 1, 1).isoformat(),
    }
    applied = await corridor["KZ"].client.post("/v1/permits/applications", json=application, headers=authority["KZ"])
    assert applied.status_code == 201, applied.text
    await corridor.deliver_all()
    released = await corridor["KZ"].client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])
    assert released.status_code == 200, released.text  # this year's permit, then next year's, cover the window


def test_the_issuers_calendar_decides_the_day_and_the_year() -> None:
    years = PermitYears(PermitRules(RulesFile.model_validate({})))
    moment = at(date(THIS_YEAR, 12, 31), 23, 30, "Asia/Tashkent")
    assert local_today("UZ", moment) == date(THIS_YEAR, 12, 31)
    assert local_today("KG", moment) == date(THIS_YEAR + 1, 1, 1)  # Bishkek is an hour ahead
    assert local_today("AZ", moment) == date(THIS_YEAR, 12, 31)
    assert years.open_years(issuer="UZ", type="transit", quota="partner", now=moment) == [THIS_YEAR, THIS_YEAR + 1]
    assert years.open_years(issuer="KG", type="transit", quota="partner", now=moment) == [THIS_YEAR + 1]
    for country, zone in (("KZ", "Asia/Almaty"), ("KG", "Asia/Bishkek"), ("AZ", "Asia/Baku")):
        assert start_of(country, date(THIS_YEAR, 6, 1)) == at(date(THIS_YEAR, 6, 1), 0, 0, zone)


def test_a_grace_to_the_leap_day_ends_on_the_28th_in_other_years() -> None:
    rules = RulesFile.model_validate(
        {"year_end": [{"issuer": "UZ", "valid_into_next_year_until": "02-29", "reason": "test: to the leap day"}]}
    )
    years = PermitYears(PermitRules(rules))
    leap = next_leap_day(THIS_YEAR)
    assert years.terms(issuer="UZ", type="transit", year=leap.year - 1, quota="partner").last_day == leap
    assert years.terms(issuer="UZ", type="transit", year=leap.year, quota="partner").last_day == date(
        leap.year + 1, 2, 28
    )
    assert years.terms(issuer="TM", type="transit", year=leap.year, quota="partner").last_day == date(leap.year, 12, 31)
    with pytest.raises(ValueError, match="02-30 is not a day of the year"):
        RulesFile.model_validate({"year_end": [{"valid_into_next_year_until": "02-30", "reason": "x"}]})


def test_today_helpers_follow_the_moved_clock() -> None:
    move_to(at(date(THIS_YEAR + 1, 1, 1), 0, 30, "Asia/Almaty"))
    try:
        assert today("KZ") == date(THIS_YEAR + 1, 1, 1) and quota_year("AZ") == THIS_YEAR
    finally:
        clock.set_offset(timedelta(0))
