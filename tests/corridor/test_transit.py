"""The apples truck from Almaty to Baku, on four real node processes (KZ, UZ, TM, AZ), each on its own PostgreSQL
database, driven through HTTP only — as four customs administrations' systems would drive their own nodes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.support.calendar import limit_date, quota_year
from transit_window import clock
from transit_window.corridor.demo import APPLE_STEPS, APPLES_TO_BAKU, Api, obtain_papers

if TYPE_CHECKING:
    from tests.corridor.conftest import ProcessCorridor, StartCorridor

pytestmark = pytest.mark.corridor

ROUTE = ["KZ", "UZ", "TM", "AZ"]


def customs(corridor: ProcessCorridor, node: str, method: str, path: str, *, expect: int = 200, **kwargs: Any) -> Any:
    spec = corridor.local.spec(node)
    headers = {"Authorization": f"Bearer {corridor.local.token(node, 'customs')}"}
    response = corridor.http.request(method, f"{spec.url}{path}", headers=headers, **kwargs)
    assert response.status_code == expect, f"{node} {method} {path}: {response.status_code} {response.text}"
    return response.json()


def settled(corridor: ProcessCorridor) -> bool:
    return all(not any(states.get("pending") for states in corridor.status(node)["outbox"].values()) for node in ROUTE)


def test_apples_almaty_to_baku_end_to_end_over_http(start_corridor: StartCorridor) -> None:
    corridor = start_corridor(ROUTE, extra_env={"TZ": "Asia/Almaty"})  # the host's zone never leaks into times
    grn = APPLES_TO_BAKU["guarantee"]["grn"]
    customs(
        corridor,
        "KZ",
        "POST",
        "/v1/guarantees",
        expect=201,
        json={"grn": grn, "holder_id": "230340000126", "reference_amount": "20000.00", "currency": "USD"},
    )
    declaration = {**APPLES_TO_BAKU, "limit_date": limit_date(14)}
    for issuer, kind in (("UZ", "transit"), ("TM", "transit"), ("AZ", "bilateral")):
        quota = {"holder": "KZ", "year": quota_year(), "type": kind, "quantity": 10}
        headers = {"Authorization": f"Bearer {corridor.local.token(issuer, 'permits')}"}
        granted = corridor.http.post(
            f"{corridor.local.spec(issuer).url}/v1/permits/quotas", json=quota, headers=headers
        )
        assert granted.status_code == 200, granted.text
    corridor.wait_until("the quotas reached KZ", lambda: settled(corridor))
    papers = Api(corridor.local)  # the certificate and one application for the three permits, as in the demo
    assert sorted(obtain_papers(papers, declaration)) == ["AZ", "TM", "UZ"]
    papers.http.close()
    mrn = customs(corridor, "KZ", "POST", "/v1/declarations", expect=201, json=declaration)["mrn"]
    released = customs(corridor, "KZ", "POST", f"/v1/declarations/{mrn}/release")
    assert released["status"] == "released"
    assert customs(corridor, "KZ", "GET", f"/v1/guarantees/{grn}")["reserved"] == "5000.00"

    corridor.wait_until("the anticipated record reached UZ, TM and AZ", lambda: settled(corridor))
    for node, office in (("UZ", "UZGIS001"), ("TM", "TMFAR001"), ("AZ", "AZALA001")):
        expected = customs(corridor, node, "GET", "/v1/movements/expected", params={"office": office})
        assert [item["mrn"] for item in expected["items"]] == [mrn], node

    for node, path, step in APPLE_STEPS:
        answer = customs(
            corridor,
            node,
            "POST",
            f"/v1/movements/{mrn}/{path}",
            expect=201,
            json={**step, "at": clock.isoformat(clock.utcnow())},
        )
        assert answer["mrn"] == mrn
        corridor.wait_until(f"{node}'s {path} reached the route", lambda: settled(corridor))

    journeys = {}
    for node in ROUTE:
        movement = customs(corridor, node, "GET", f"/v1/movements/{mrn}")
        assert movement["status"] == "closed", node
        journeys[node] = [(step["kind"], step["office"], step["signed_by"]) for step in movement["journey"]]
    assert journeys["KZ"] == journeys["UZ"] == journeys["TM"] == journeys["AZ"]
    assert journeys["KZ"] == [
        ("released", "KZALA001", "KZ"),
        ("exit", "KZZHZ001", "KZ"),
        ("entry", "UZGIS001", "UZ"),
        ("exit", "UZALT001", "UZ"),
        ("entry", "TMFAR001", "TM"),
        ("exit", "TMKRW001", "TM"),
        ("entry", "AZALA001", "AZ"),
        ("arrived", "AZBAK001", "AZ"),
        ("control-results", "AZBAK001", "AZ"),
        ("closed", "KZALA001", "KZ"),
    ]
    guarantee = customs(corridor, "KZ", "GET", f"/v1/guarantees/{grn}")
    assert (guarantee["reserved"], guarantee["available"]) == ("0.00", "20000.00")

    # Issue 4: the timeline read from Azerbaijan equals the one read from Kazakhstan, event for event.
    timelines = {}
    for node in ("KZ", "AZ"):
        events = customs(corridor, node, "GET", f"/v1/consignments/{mrn}/timeline")["events"]
        timelines[node] = [
            (e["step"], e["bizLocation"]["office"], e["signedBy"], e["eventTime"], e["bizStep"], e["eventID"])
            for e in events
        ]
    assert timelines["KZ"] == timelines["AZ"]
    signer_by_office = {office: signer for _, office, signer, *_ in timelines["AZ"]}
    assert signer_by_office["UZGIS001"] == "UZ" and signer_by_office["AZALA001"] == "AZ"
    assert signer_by_office["TMKRW001"] == "TM" and signer_by_office["KZZHZ001"] == "KZ"
