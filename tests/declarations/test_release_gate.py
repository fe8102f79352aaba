"""Release checks the papers: each certificate the goods need and each permit the carrier needs on the route,
present at the node, valid for the dates and the truck, not withdrawn or revoked. A refusal is one 409 problem
listing everything missing, and leaves nothing behind (no reservation, no message, status unchanged)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.declarations.conftest import GRN, declaration
from tests.support.calendar import limit_date, today
from tests.support.inprocess import InProcessCorridor
from tests.support.papers import provide_papers
from transit_window import clock
from transit_window.clients.service import add_client
from transit_window.codes import permit_rules as rules
from transit_window.db.session import unit_of_work
from transit_window.permits.years import start_of


@pytest.fixture
async def registered(corridor: InProcessCorridor, customs: dict[str, dict[str, str]]) -> str:
    """The guarantee alone: the papers are up to each test."""
    response = await corridor["KZ"].client.post(
        "/v1/guarantees",
        json={"grn": GRN, "holder_id": "230340000126", "reference_amount": "25000.00", "currency": "USD"},
        headers=customs["KZ"],
    )
    assert response.status_code == 201, response.text
    return GRN


@pytest.fixture
async def authority(corridor: InProcessCorridor) -> dict[str, dict[str, str]]:
    headers = {}
    for node in corridor.nodes:
        async with unit_of_work(corridor[node].node) as session:
            _, token = await add_client(session, name=f"permits {node}", role="permits")
        headers[node] = {"Authorization": f"Bearer {token}"}
    return headers


async def _declare(corridor: InProcessCorridor, customs: dict[str, dict[str, str]], body: dict[str, Any]) -> str:
    created = await corridor["KZ"].client.post("/v1/declarations", json=body, headers=customs["KZ"])
    assert created.status_code == 201, created.text
    return str(created.json()["mrn"])


async def _refused(corridor: InProcessCorridor, customs: dict[str, dict[str, str]], mrn: str) -> list[dict[str, str]]:
    kz = corridor["KZ"]
    response = await kz.client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["detail"].startswith(f"{mrn} cannot be released")
    movement = (await kz.client.get(f"/v1/declarations/{mrn}", headers=customs["KZ"])).json()
    assert movement["status"] == "accepted" and [step["kind"] for step in movement["journey"]] == []
    held = (await kz.client.get(f"/v1/guarantees/{GRN}", headers=customs["KZ"])).json()
    assert held["reserved"] == "0.00"
    outbox = (await kz.client.get("/v1/admin/outbox", params={"peer": "UZ"}, headers=kz.admin)).json()["items"]
    assert [item for item in outbox if item["subject"] == mrn] == []
    missing: list[dict[str, str]] = problem["missing"]
    return missing


async def test_the_apples_without_their_phytosanitary_certificate_are_refused_and_with_it_released(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], registered: str
) -> None:
    body = declaration()
    without_certificate = {**body, "documents": []}
    await provide_papers(corridor, without_certificate)  # the permits only
    mrn = await _declare(corridor, customs, without_certificate)
    missing = await _refused(corridor, customs, mrn)
    assert [(item["kind"], item["type"]) for item in missing] == [("certificate", "phytosanitary")]
    assert "HS 080810" in missing[0]["detail"] and "plants" in missing[0]["detail"]

    named = await _declare(corridor, customs, body)  # names KZ-PHY-2026-004417, not issued yet
    missing = await _refused(corridor, customs, named)
    assert "KZ-PHY-2026-004417" in missing[0]["detail"] and "not known at KZ" in missing[0]["detail"]

    await provide_papers(corridor, body)  # KZ's plant-protection service issues it
    released = await corridor["KZ"].client.post(f"/v1/declarations/{named}/release", headers=customs["KZ"])
    assert released.status_code == 200, released.text
    await corridor.deliver_all()
    copy = await corridor["TM"].client.get(
        "/v1/documents", params={"number": "KZ-PHY-2026-004417"}, headers=customs["TM"]
    )
    assert copy.status_code == 200, copy.text
    assert [item["received_from"] for item in copy.json()["items"]] == ["KZ"]  # shared with the route at release


async def test_without_the_uz_transit_permit_the_problem_names_it(
    corridor: InProcessCorridor,
    customs: dict[str, dict[str, str]],
    registered: str,
    authority: dict[str, dict[str, str]],
) -> None:
    body = declaration()
    mrn = await _declare(corridor, customs, body)
    missing = await _refused(corridor, customs, mrn)
    kinds = {(item["kind"], item["type"], item["country"]) for item in missing}
    assert kinds == {("certificate", "phytosanitary", "KZ"), ("permit", "transit", "UZ")}
    permit = next(item for item in missing if item["kind"] == "permit")
    assert "carrier 230340000126" in permit["detail"] and "123ABC02" in permit["detail"]


async def test_a_revoked_permit_a_withdrawn_certificate_and_another_truck_do_not_pass(
    corridor: InProcessCorridor,
    customs: dict[str, dict[str, str]],
    registered: str,
    authority: dict[str, dict[str, str]],
) -> None:
    body = declaration()
    [permit_id] = await provide_papers(corridor, body)
    revoked = await corridor["UZ"].client.post(
        f"/v1/permits/{permit_id}/revoke", json={"reason": "licence suspended"}, headers=authority["UZ"]
    )
    assert revoked.status_code == 200, revoked.text
    certificate = (
        await corridor["KZ"].client.get(
            "/v1/documents", params={"number": "KZ-PHY-2026-004417"}, headers=authority["KZ"]
        )
    ).json()["items"][0]
    withdrawn = await corridor["KZ"].client.post(
        f"/v1/documents/{certificate['id']}/withdraw", json={"reason": "wrong lot"}, headers=authority["KZ"]
    )
    assert withdrawn.status_code == 200, withdrawn.text
    await corridor.deliver_all()

    missing = await _refused(corridor, customs, await _declare(corridor, customs, body))
    details = " | ".join(item["detail"] for item in missing)
    assert f"{permit_id} is revoked" in details and "was withdrawn: wrong lot" in details

    other_truck = declaration(vehicle={"plate": "777ZZZ02", "country": "KZ"})
    missing = await _refused(corridor, customs, await _declare(corridor, customs, other_truck))
    assert any("is for truck 123ABC02, not 777ZZZ02" in item["detail"] for item in missing)


async def test_a_permit_over_before_the_truck_reaches_its_country_does_not_pass(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], registered: str
) -> None:
    """Release asks for permits valid when they will be used, not through the limit date: the UZ transit permit
    must cover the time the truck may enter Uzbekistan (Almaty → the Zhibek Zholy post → Gisht-Kuprik, ≈ 700 km at the
    expected 40 km/h, plus the crossing grace). Two hours before the permit ends, that entry is too late."""
    [permit_id] = await provide_papers(corridor, declaration(), valid_until=today("KZ") + timedelta(days=1))
    permit = (await corridor["KZ"].client.get(f"/v1/permits/{permit_id}", headers=customs["KZ"])).json()
    ends = clock.parse(permit["expires_at"])
    assert ends == start_of("UZ", today("KZ") + timedelta(days=2))  # midnight in Tashkent, not in UTC
    mrn = await _declare(corridor, customs, declaration(limit_date=limit_date(10)))
    clock.set_offset(ends - timedelta(hours=2) - clock.utcnow())
    try:
        missing = await _refused(corridor, customs, mrn)
    finally:
        clock.set_offset(timedelta(0))
    assert [(item["kind"], item["country"]) for item in missing] == [("permit", "UZ")]
    detail = missing[0]["detail"]
    assert f"{permit_id} is valid from" in detail and "valid when the truck may enter UZ, from" in detail, detail
    needed = clock.parse(missing[0]["needed_at"])
    assert needed > ends - timedelta(hours=2) + timedelta(hours=4), missing[0]  # at least the crossing grace

    released = await corridor["KZ"].client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])
    assert released.status_code == 200, released.text  # today, the same permit covers the entry


async def test_a_destination_rule_in_the_operators_rules_file_asks_for_more(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], registered: str, tmp_path: Path
) -> None:
    """Rules are data: an operator's TW_PERMIT_RULES_FILE can add that Turkmenistan wants a certificate of origin
    for fruit (chapter 08); the apples, with their phytosanitary certificate and permit, are then refused for it."""
    await provide_papers(corridor, declaration())
    bundled = orjson.loads((Path(rules.__file__).with_name("permit_rules.json")).read_bytes())
    bundled["document_rules"] = [
        {
            "destination": "TM",
            "first_chapter": "08",
            "last_chapter": "08",
            "certificate": "origin",
            "reason": "fruit needs a certificate of origin (test rule)",
        }
    ]
    operator_file = tmp_path / "rules.json"
    operator_file.write_bytes(orjson.dumps(bundled))
    settings = corridor["KZ"].node.settings
    settings.permit_rules_file = operator_file
    try:
        missing = await _refused(corridor, customs, await _declare(corridor, customs, declaration()))
    finally:
        settings.permit_rules_file = None
    assert [(item["kind"], item["type"]) for item in missing] == [("certificate", "origin")]
    assert "fruit needs a certificate of origin" in missing[0]["detail"]


async def test_a_permit_with_no_trip_left_does_not_pass(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], registered: str
) -> None:
    """A one-trip permit whose truck has entered Uzbekistan on it is spent for any other movement: its ENTRY would be
    refused at the border, so release says so now (it passed while the permit was `in_use`)."""
    [permit_id] = await provide_papers(corridor, declaration(), trips=1)
    entered = await corridor["UZ"].client.post(
        f"/v1/permits/{permit_id}/use",
        json={"activity": "ENTRY", "office": "UZGIS001", "plate": "123ABC02"},
        headers=customs["UZ"],
    )
    assert entered.status_code == 200 and entered.json()["permit"]["status"] == "in_use", entered.text
    await corridor.deliver_all()
    missing = await _refused(corridor, customs, await _declare(corridor, customs, declaration()))
    assert [(item["kind"], item["country"]) for item in missing] == [("permit", "UZ")]
    assert f"{permit_id} has no trip left (1 of 1 entered)" in missing[0]["detail"], missing
