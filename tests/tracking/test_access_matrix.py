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
    assert events.json()["items"] == []
    own = await kz.client.get("/v1/consignments", headers=headers["own"])
    assert [item["mrn"] for item in own.json()["items"]] == [travelled.mrn]


async def test_subscription_position_and_alert_access_matrix(
    corridor: InProcessCorridor, travelled: Travelled, customs: dict[str, dict[str, str]]
) -> None:
    """Webhook subscriptions belong to their party (others get 404; the operator, an admin, reads and acts on every
    one), positions come from devices only, alerts are worked by customs only; no token is always 401, and a
    refusal is always problem+json."""
    kz = corridor["KZ"]
    kz.node.settings.webhook_allow_private_targets = True  # the URL is never called: the loops are off in tests
    headers = {
        "customs": customs["KZ"],
        "own": await client_for(corridor, "KZ", role="forwarder", party_id=DECLARANT),
        "other": await client_for(corridor, "KZ", role="forwarder", party_id="990140000385"),
        "device": await client_for(corridor, "KZ", role="device", party_id=None),
        "permits": await client_for(corridor, "KZ", role="permits", party_id=None),
        "admin": kz.admin,
        "anonymous": {},
    }
    hook = {"url": "http://127.0.0.1:9/hook"}
    created = await kz.client.post("/v1/subscriptions", json=hook, headers=headers["own"])
    assert created.status_code == 201, created.text
    sub = created.json()["id"]
    ping = {
        "pings": [
            {"device_id": "ESEAL-1", "mrn": travelled.mrn, "time": "2026-01-01T00:00:00Z", "lat": 43.0, "lon": 76.0}
        ]
    }
    nobody = "00000000-0000-7000-8000-000000000000"
    forbidden = {"device": 403, "permits": 403, "anonymous": 401}
    rows: list[tuple[str, str, object, dict[str, set[int]]]] = [
        (
            "POST",
            "/v1/subscriptions",
            hook,
            {"customs": {201}, "own": {201}, "other": {201}, "admin": {403}, **{k: {v} for k, v in forbidden.items()}},
        ),
        (
            "GET",
            "/v1/subscriptions",
            None,
            {"customs": {200}, "own": {200}, "other": {200}, "admin": {200}, **{k: {v} for k, v in forbidden.items()}},
        ),
        (
            "GET",
            f"/v1/subscriptions/{sub}",
            None,
            {"customs": {404}, "own": {200}, "other": {404}, "admin": {200}, **{k: {v} for k, v in forbidden.items()}},
        ),
        (
            "GET",
            f"/v1/subscriptions/{sub}/deliveries",
            None,
            {"customs": {404}, "own": {200}, "other": {404}, "admin": {200}, **{k: {v} for k, v in forbidden.items()}},
        ),
        (
            "POST",
            f"/v1/subscriptions/{sub}/deliveries/{nobody}/redeliver",
            None,
            {"customs": {404}, "own": {404}, "other": {404}, "admin": {404}, **{k: {v} for k, v in forbidden.items()}},
        ),
        (
            "POST",
            "/v1/tracking/positions",
            ping,
            {
                "customs": {403},
                "own": {403},
                "other": {403},
                "device": {403},  # ESEAL-1 is registered to nobody
                "permits": {403},
                "admin": {403},
                "anonymous": {401},
            },
        ),
        (
            "GET",
            "/v1/alerts",
            None,
            {
                "customs": {200},
                "own": {403},
                "other": {403},
                "device": {403},
                "permits": {403},
                "admin": {403},
                "anonymous": {401},
            },
        ),
        (
            "POST",
            f"/v1/alerts/{nobody}/close",
            {"note": "checked"},
            {
                "customs": {404},
                "own": {403},
                "other": {403},
                "device": {403},
                "permits": {403},
                "admin": {403},
                "anonymous": {401},
            },
        ),
        (  # callers go in CALLERS order: the owner deletes it, so the admin after it finds nothing
            "DELETE",
            f"/v1/subscriptions/{sub}",
            None,
            {"customs": {404}, "own": {204}, "other": {404}, "admin": {404}, **{k: {v} for k, v in forbidden.items()}},
        ),
    ]
    mismatches = []
    for method, path, body, expected in rows:
        for caller in CALLERS:
            if method == "DELETE" and caller != "own" and expected[caller] == {204}:
                continue
            response = await kz.client.request(method, path, headers=headers[caller], json=body)
            if response.status_code not in expected[caller]:
                mismatches.append(f"{method} {path} as {caller}: {response.status_code}, expected {expected[caller]}")
            if response.status_code >= 400:
                assert response.headers["content-type"] == "application/problem+json", (method, path, caller)
    assert not mismatches, "\n".join(mismatches)
