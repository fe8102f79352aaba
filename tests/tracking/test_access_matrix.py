"""Every tracking endpoint, role and own/other party: allowed, 404 (no existence leak), 401 or 403 as specified."""

from __future__ import annotations

from tests.support.inprocess import InProcessCorridor
from tests.tracking.conftest import DECLARANT, Travelled, client_for

# expected status per (endpoint, caller); "own" is the declarant's forwarder, "other" a forwarder of another party.
CALLERS = ("customs", "own", "other", "device", "permits", "admin", "anonymous")


def matrix(mrn: str) -> list[tuple[str, str, str, dict[str, int]]]:
    base = {"device": 403, "permits": 403, "admin": 403, "anonymous": 401}
    return [
        ("GET", "/v1/consignments", "", {"customs": 200, "own": 200, "other": 200, **base}),
        ("GET", f"/v1/consignments/{mrn}", "", {"customs": 200, "own": 200, "other": 404, **base}),
        ("GET", f"/v1/consignments/{mrn}/timeline", "", {"customs": 200, "own": 200, "other": 404, **base}),
        ("GET", f"/v1/events?MATCH_mrn={mrn}", "", {"customs": 200, "own": 200, "other": 200, **base}),
        ("POST", f"/v1/consignments/{mrn}/grants", "grant", {"customs": 403, "own": 201, "other": 404, **base}),
        ("POST", f"/v1/consignments/{mrn}/tracking-code", "", {"customs": 200, "own": 200, "other": 404, **base}),
    ]


async def test_tracking_access_matrix(
    corridor: InProcessCorridor, travelled: Travelled, customs: dict[str, dict[str, str]]
) -> None:
    kz = corridor["KZ"]
    headers = {
        "customs": customs["KZ"],
        "own": await client_for(corridor, "KZ", role="forwarder", party_id=DECLARANT),
        "other": await client_for(corridor, "KZ", role="forwarder", party_id="990140000385"),
        "device": await client_for(corridor, "KZ", role="device", party_id=None),
        "permits": await client_for(corridor, "KZ", role="permits", party_id=None),
        "admin": kz.admin,
        "anonymous": {},
    }
    code = travelled.tracking_code
    mismatches = []
    for method, path, body, expected in matrix(travelled.mrn):
        for caller in CALLERS:
            json = {"party_id": "990140000777"} if body == "grant" else None
            response = await kz.client.request(method, path, headers=headers[caller], json=json)
            if response.status_code != expected[caller]:
                mismatches.append(f"{method} {path} as {caller}: {response.status_code}, expected {expected[caller]}")
            if response.status_code >= 400:
                assert response.headers["content-type"] == "application/problem+json", (method, path, caller)
            if path.endswith("/tracking-code") and response.status_code == 200:
                code = response.json()["tracking_code"]  # rotation: later rows use the newest code
    for caller in CALLERS:  # the public view needs no token, and every token works too
        response = await kz.client.get(f"/v1/track/{code}", headers=headers[caller])
        if response.status_code != 200:
            mismatches.append(f"GET /v1/track/{{code}} as {caller}: {response.status_code}, expected 200")
    assert not mismatches, "\n".join(mismatches)

    listed = await kz.client.get("/v1/consignments", headers=headers["other"])
    assert listed.json()["items"] == []
    events = await kz.client.get("/v1/events", params={"MATCH_mrn": travelled.mrn}, headers=headers["other"])
    assert events.json()["events"] == []
    own = await kz.client.get("/v1/consignments", headers=headers["own"])
    assert [item["mrn"] for item in own.json()["items"]] == [travelled.mrn]
