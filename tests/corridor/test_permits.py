"""Permits on real node processes (KZ, UZ, TM), each on its own PostgreSQL database, driven over HTTP only.

- One application at KZ yields a UZ permit signed by UZ and a TM permit signed by TM; the TM border records the
  trip, UZ revokes its permit, and both facts reach KZ (issue 5, "must show 1").
- A multilateral quota of 50 and 200 concurrent applications from two countries: exactly 50 issued, 150 refused
  with the reason; two border posts entering one permit at once: one wins (issue 5, "must show 3").
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest

from tests.support.calendar import quota_year, today
from transit_window import clock
from transit_window.codes.identifiers import bin_iin_check_digit
from transit_window.protocol import jws
from transit_window.protocol.trust import TrustList

if TYPE_CHECKING:
    from tests.corridor.conftest import ProcessCorridor, StartCorridor

pytestmark = pytest.mark.corridor

NODES = ["KZ", "UZ", "TM"]
APPLES = {"id": "230340000126", "name": "Almaty Fruit Export LLP"}


def call(
    corridor: ProcessCorridor, node: str, role: str, method: str, path: str, *, expect: int = 200, **kwargs: Any
) -> Any:
    """One request to `node` as its demo client of `role` (`customs` is the border post, `permits` the authority)."""
    response = corridor.http.request(
        method, f"{corridor.local.spec(node).url}{path}", headers=auth(corridor, node, role), **kwargs
    )
    assert response.status_code == expect, f"{node} {method} {path}: {response.status_code} {response.text}"
    return response.json()


def auth(corridor: ProcessCorridor, node: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {corridor.local.token(node, role)}"}


def grant(corridor: ProcessCorridor, issuer: str, *, holder: str, type: str, quantity: int) -> dict[str, Any]:
    body = {"holder": holder, "year": quota_year(), "type": type, "quantity": quantity}
    quota: dict[str, Any] = call(corridor, issuer, "permits", "POST", "/v1/permits/quotas", json=body)
    return quota


def application(carrier: dict[str, str], plate: str, route: list[str], **changes: Any) -> dict[str, Any]:
    start = today()
    body = {
        "carrier": carrier,
        "plate": plate,
        "route": route,
        "valid_from": start.isoformat(),
        "valid_until": (start + timedelta(days=20)).isoformat(),
        "trips": 1,
    }
    return {**body, **changes}


def answers(app: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {request["country"]: request for request in app["requests"]}


def kz_carriers(count: int) -> list[dict[str, str]]:
    """Kazakh carriers whose BINs have the right check digit (the node checks it)."""
    carriers = []
    for serial in range(10_000):
        first11 = f"2303400{serial:04d}"
        digit = bin_iin_check_digit(first11)
        if digit is not None:
            carriers.append({"id": f"{first11}{digit}", "name": f"Almaty Haulage {serial} LLP"})
        if len(carriers) == count:
            return carriers
    raise AssertionError(f"fewer than {count} BINs")


def header_of(token: str) -> dict[str, Any]:
    header: dict[str, Any] = orjson.loads(jws.b64url_decode(token.split(".")[0]))
    return header


def test_one_application_at_kz_yields_a_uz_and_a_tm_permit_each_signed_by_its_issuer(
    start_corridor: StartCorridor,
) -> None:
    # Farap to the Turkmenbashi port is 915 km, a ten-hour drive this test makes in a fraction of a second: the
    # impossible-travel bound (checked by TM, and by KZ on its copies) is raised so the real trip is no fraud alert.
    corridor = start_corridor(NODES, extra_env={"TW_PERMIT_MAX_SPEED_KMH": "1e12"})
    year = quota_year()
    for issuer in ("UZ", "TM"):
        grant(corridor, issuer, holder="KZ", type="transit", quantity=10)
    corridor.wait_until(
        "KZ shows the quotas UZ and TM granted it",
        lambda: (
            {
                (q["issuer"], q["remaining"])
                for q in call(corridor, "KZ", "permits", "GET", "/v1/permits/quotas")["items"]
            }
            == {("UZ", 10), ("TM", 10)}
        ),
    )

    body = application(APPLES, "123ABC02", ["KZ", "UZ", "TM", "AZ"], trailer_plate="45TRL02")
    created = call(corridor, "KZ", "permits", "POST", "/v1/permits/applications", expect=201, json=body)
    first = answers(created)
    assert [(c, first[c]["type"], first[c]["status"]) for c in ("UZ", "TM", "AZ")] == [
        ("UZ", "transit", "requested"),
        ("TM", "transit", "requested"),
        ("AZ", "bilateral", "refused"),
    ]
    assert "not connected" in first["AZ"]["reason"]
    path = f"/v1/permits/applications/{created['id']}"

    def both_issued() -> bool:
        states = answers(call(corridor, "KZ", "permits", "GET", path))
        return states["UZ"]["status"] == states["TM"]["status"] == "issued"

    corridor.wait_until("UZ and TM issued their permits to KZ", both_issued)
    shown = call(corridor, "KZ", "permits", "GET", path)
    assert shown["status"] == "partly-refused"  # AZ is not connected: the carrier applies there directly
    permit_ids = {country: answers(shown)[country]["permit_id"] for country in ("UZ", "TM")}
    assert permit_ids == {"UZ": f"UZ-KZ-{year}-2-1", "TM": f"TM-KZ-{year}-2-1"}

    trust = TrustList.from_document(call(corridor, "KZ", "customs", "GET", "/v1/corridor/trust-list"))
    kids = {member.node: {key.kid for key in member.keys} for member in trust.body.members}
    assert set(kids) == set(NODES) and not kids["UZ"] & kids["TM"]
    tokens = {}
    for issuer, permit_id in permit_ids.items():
        kept = call(corridor, "KZ", "permits", "GET", f"/v1/permits/{permit_id}")
        assert (kept["issuer"], kept["holder"], kept["type"], kept["status"]) == (issuer, "KZ", "transit", "active")
        assert (kept["carrier"], kept["plate"], kept["trailer_plate"]) == (APPLES, "123ABC02", "45TRL02")
        header = header_of(kept["token"])
        assert header["typ"] == "dtc-permit+jws" and header["kid"] in kids[issuer], (issuer, header)
        verdict = call(
            corridor,
            "KZ",
            "permits",
            "POST",
            "/v1/permits/verify",
            json={"token": kept["token"], "plate": "123 ABC 02"},
        )
        assert (verdict["result"], verdict["valid"], verdict["kid"]) == ("valid", True, header["kid"]), verdict
        assert verdict["permit"]["iss"] == issuer and verdict["permit"]["id"] == permit_id
        tokens[issuer] = kept["token"]

    # The Turkmen border: in at Farap, out at the Turkmenbashi port (the ferry to Baku).
    tm_permit = permit_ids["TM"]
    entry = call(
        corridor,
        "TM",
        "customs",
        "POST",
        f"/v1/permits/{tm_permit}/use",
        json={"activity": "ENTRY", "office": "TMFAR001", "plate": "123ABC02", "token": tokens["TM"]},
    )
    assert (entry["permit"]["status"], entry["permit"]["entries"], entry["alerts"]) == ("in_use", 1, [])
    leave = call(
        corridor,
        "TM",
        "customs",
        "POST",
        f"/v1/permits/{tm_permit}/use",
        json={"activity": "EXIT", "office": "TMKRW001", "plate": "45 TRL 02"},
    )
    assert (leave["permit"]["status"], leave["permit"]["exits"], leave["alerts"]) == ("consumed", 1, [])

    def trip_at_kz() -> bool:
        permit = call(corridor, "KZ", "permits", "GET", f"/v1/permits/{tm_permit}")
        return (permit["entries"], permit["exits"]) == (1, 1)

    corridor.wait_until("KZ shows TM's ENTRY and EXIT", trip_at_kz)
    at_home = call(corridor, "KZ", "permits", "GET", f"/v1/permits/{tm_permit}")
    assert at_home["status"] == "consumed"
    assert [(a["activity"], a["office"], a["country"], a["recorded_by"]) for a in at_home["activities"]] == [
        ("ENTRY", "TMFAR001", "TM", "TM"),
        ("EXIT", "TMKRW001", "TM", "TM"),
    ]
    assert at_home["alerts"] == []

    # UZ revokes its permit: KZ learns it, the UZ border refuses it.
    uz_permit = permit_ids["UZ"]
    reason = "carrier licence suspended"
    revoked = call(corridor, "UZ", "permits", "POST", f"/v1/permits/{uz_permit}/revoke", json={"reason": reason})
    assert revoked["status"] == "revoked"
    corridor.wait_until(
        "KZ shows the UZ permit revoked",
        lambda: call(corridor, "KZ", "permits", "GET", f"/v1/permits/{uz_permit}")["status"] == "revoked",
    )
    assert call(corridor, "KZ", "permits", "GET", f"/v1/permits/{uz_permit}")["revoke_reason"] == reason
    for node in ("UZ", "KZ"):
        verdict = call(corridor, node, "customs", "POST", "/v1/permits/verify", json={"token": tokens["UZ"]})
        assert (verdict["result"], verdict["valid"]) == ("revoked", False), (node, verdict)
        assert reason in verdict["reasons"][0]
    refused = call(
        corridor,
        "UZ",
        "customs",
        "POST",
        f"/v1/permits/{uz_permit}/use",
        expect=409,
        json={"activity": "ENTRY", "office": "UZGIS001", "plate": "123ABC02", "token": tokens["UZ"]},
    )
    assert "revoked" in refused["detail"] and reason in refused["detail"]
    listed = call(corridor, "UZ", "customs", "GET", "/v1/permits/revocations")
    assert [item["id"] for item in listed["revoked"]] == [uz_permit]


# -- "must show 3": no quota is overdrawn, no permit entered twice ---------------------------------------------------


async def _post_all(requests: list[tuple[str, str, dict[str, str], dict[str, Any]]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=len(requests))
    async with httpx.AsyncClient(timeout=120.0, limits=limits) as client:
        return list(
            await asyncio.gather(*(client.post(url, headers=headers, json=body) for _, url, headers, body in requests))
        )


async def _get_all(urls: list[tuple[str, dict[str, str]]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60.0, limits=httpx.Limits(max_connections=20)) as client:
        return list(await asyncio.gather(*(client.get(url, headers=headers) for url, headers in urls)))


def answered(corridor: ProcessCorridor, node: str) -> int:
    return int(
        corridor.scalar(
            node, "SELECT count(*) FROM permit_requests WHERE country = 'UZ' AND status IN ('issued', 'refused')"
        )
    )


def test_a_multilateral_quota_of_50_issues_exactly_50_of_200_concurrent_applications_from_two_countries(
    start_corridor: StartCorridor,
) -> None:
    corridor = start_corridor(NODES)
    year = quota_year()
    quota = grant(corridor, "UZ", holder="*", type="transit", quantity=50)
    assert (quota["holder"], quota["remaining"]) == ("*", 50)

    requests = []
    for index, carrier in enumerate(kz_carriers(100)):
        kz = application(carrier, f"{100 + index:03d}KZA02", ["KZ", "UZ", "TM"])
        tm = application(
            {"id": f"TM{index:010d}", "name": f"Ashgabat Logistics {index}"}, f"AG{index:04d}LB", ["TM", "UZ", "KZ"]
        )
        for node, body in (("KZ", kz), ("TM", tm)):
            url = f"{corridor.local.spec(node).url}/v1/permits/applications"
            requests.append((node, url, auth(corridor, node, "permits"), body))
    responses = asyncio.run(_post_all(requests))
    assert [response.status_code for response in responses] == [201] * 200, [
        response.text for response in responses if response.status_code != 201
    ][:3]
    for (node, *_), response in zip(requests, responses, strict=True):
        states = answers(response.json())
        assert states["UZ"]["status"] == "requested", (node, states)
        other = "TM" if node == "KZ" else "KZ"
        assert states[other]["status"] == "not-required"  # TM and KZ are permit-free for each other's carriers

    corridor.wait_until(
        "all 200 answers of UZ reached KZ and TM",
        lambda: answered(corridor, "KZ") == 100 and answered(corridor, "TM") == 100,
        timeout=60,
        interval=0.5,
    )
    urls = [
        (
            f"{corridor.local.spec(node).url}/v1/permits/applications/{response.json()['id']}",
            auth(corridor, node, "permits"),
        )
        for (node, *_), response in zip(requests, responses, strict=True)
    ]
    shown = asyncio.run(_get_all(urls))
    assert all(response.status_code == 200 for response in shown)
    uz_answers = [answers(response.json())["UZ"] for response in shown]
    for (node, *_), answer in zip(requests, uz_answers, strict=True):
        assert answer["permit_id"] is None or answer["permit_id"].startswith(f"UZ-{node}-{year}-2-M"), answer
    issued = [answer for answer in uz_answers if answer["status"] == "issued"]
    refused = [answer for answer in uz_answers if answer["status"] == "refused"]
    assert (len(issued), len(refused)) == (50, 150)
    for answer in refused:
        assert answer["permit_id"] is None
        assert re.fullmatch(
            rf"all 50 transit permits of UZ for {year} available to (KZ|TM) carriers are issued", answer["reason"]
        ), answer["reason"]

    at_uz = corridor.query("UZ", "SELECT id, holder, issuer FROM permits")
    assert len(at_uz) == 50 and {row.issuer for row in at_uz} == {"UZ"}
    ids = sorted(row.id for row in at_uz)
    assert sorted(answer["permit_id"] for answer in issued) == ids  # each issued answer names its own permit
    pattern = re.compile(rf"UZ-(KZ|TM)-{year}-2-M([0-9]+)")
    numbers = []
    for row in at_uz:
        match = pattern.fullmatch(row.id)
        assert match is not None and match.group(1) == row.holder, row.id
        numbers.append(int(match.group(2)))
    assert sorted(numbers) == list(range(1, 51))
    quotas = call(corridor, "UZ", "permits", "GET", "/v1/permits/quotas")["items"]
    assert [(q["holder"], q["type"], q["quantity"], q["issued"], q["remaining"]) for q in quotas] == [
        ("*", "transit", 50, 50, 0)
    ]

    # Two UZ border posts enter one bilateral permit at the same moment: one wins, the other is told why.
    grant(corridor, "UZ", holder="KZ", type="bilateral", quantity=5)
    created = call(
        corridor,
        "KZ",
        "permits",
        "POST",
        "/v1/permits/applications",
        expect=201,
        json=application(APPLES, "123ABC02", ["KZ", "UZ"]),
    )
    path = f"/v1/permits/applications/{created['id']}"
    corridor.wait_until(
        "UZ issued the bilateral permit to KZ",
        lambda: answers(call(corridor, "KZ", "permits", "GET", path))["UZ"]["status"] == "issued",
    )
    permit_id = answers(call(corridor, "KZ", "permits", "GET", path))["UZ"]["permit_id"]
    assert permit_id == f"UZ-KZ-{year}-1-1"
    url = f"{corridor.local.spec('UZ').url}/v1/permits/{permit_id}/use"
    at = clock.isoformat(clock.utcnow())
    both = asyncio.run(
        _post_all(
            [
                (
                    "UZ",
                    url,
                    auth(corridor, "UZ", "customs"),
                    {"activity": "ENTRY", "office": office, "plate": "123ABC02", "at": at},
                )
                for office in ("UZGIS001", "UZDUS001")
            ]
        )
    )
    assert sorted(response.status_code for response in both) == [200, 409], [response.text for response in both]
    winner = next(response for response in both if response.status_code == 200).json()
    loser = next(response for response in both if response.status_code == 409).json()
    assert "already entered" in loser["detail"] and loser["permit_status"] == "in_use", loser
    assert f"at {winner['activity']['office']}" in loser["detail"]
    permit = call(corridor, "UZ", "customs", "GET", f"/v1/permits/{permit_id}")
    assert (permit["entries"], permit["exits"], permit["status"]) == (1, 0, "in_use")
    assert [activity["activity"] for activity in permit["activities"]] == ["ENTRY"]
