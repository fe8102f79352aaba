"""The authorization matrix: every route the app serves, for every client role (and no token), against the policy
table in tests/security/routes.py. A route missing from the table fails the coverage test, so nobody adds an
endpoint without deciding who may call it.

A role the table does not allow gets 403 problem+json, no token gets 401; an allowed role gets past authorization
(its 404/409/422 for the made-up ids and empty bodies are fine, a 5xx never is). Party scoping — a forwarder sees
only consignments it is a party to, and another party's things do not exist for it (404, not 403) — is proven
route by route in the tests named in `PARTY_SCOPED`; this module checks that every route a forwarder may call has
such a proof, and adds the one case nobody covered (following another party's consignment by subscribing to it).
Ownership — of the clients of an allowed role, only a guarantee's holder (or the customs client that registered it)
manages its authorisations, and only a subscription's maker (or an admin) acts on it — is the `OWNERSHIP` table,
proven here for each of its routes on both dialects.

The matrix runs on both dialects (the token lookup differs: SQLite authenticates in a short session of its own);
the other checks here run on SQLite only.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from tests.declarations.conftest import declaration
from tests.security.proofs import missing
from tests.security.routes import ACCESS, OWNERSHIP, PEER, PUBLIC, ROLES, SUBSCRIBER, Key, app_routes, fill
from tests.support.inprocess import InProcessCorridor, InProcessNode
from tests.tracking.conftest import DECLARANT, DEVICE, SEAL, client_for, device_for, travel
from transit_window import clock
from transit_window.app import create_app
from transit_window.protocol.peer_auth import SCHEME, PeerAuth
from transit_window.settings import Settings
from transit_window.tracking.models import TrackingPosition

PROBLEM = "application/problem+json"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
TRACKING = "tests/tracking/test_access_matrix.py::test_tracking_access_matrix"
SUBSCRIPTIONS = (
    "tests/webhooks/test_subscriptions.py::test_another_forwarders_subscription_is_not_found_and_roles_are_enforced"
)
FOLLOW = "tests/security/test_authorization.py::test_a_forwarder_cannot_subscribe_to_another_partys_consignment"
SEALS = "tests/security/test_authorization.py::test_a_device_reports_only_its_own_seal_on_a_movement_on_the_road"

HOLDING = (
    "tests/declarations/test_guarantee_ownership.py::"
    "test_only_the_holder_or_the_registering_customs_client_manages_who_may_use_a_guarantee"
)

# Where each route a forwarder may call is shown to keep another party's consignments (and webhooks) out of reach.
PARTY_SCOPED: dict[Key, str] = {
    ("GET", "/v1/consignments"): TRACKING,
    ("GET", "/v1/consignments/{mrn}"): TRACKING,
    ("GET", "/v1/consignments/{mrn}/timeline"): TRACKING,
    ("GET", "/v1/events"): TRACKING,
    ("POST", "/v1/consignments/{mrn}/grants"): TRACKING,
    ("POST", "/v1/consignments/{mrn}/tracking-code"): TRACKING,
    ("POST", "/v1/guarantees/{grn}/authorisations"): HOLDING,
    ("GET", "/v1/guarantees/{grn}/authorisations"): HOLDING,
    ("DELETE", "/v1/guarantees/{grn}/authorisations/{authorisation_id}"): HOLDING,
    ("POST", "/v1/subscriptions"): FOLLOW,
    ("GET", "/v1/subscriptions"): SUBSCRIPTIONS,
    ("GET", "/v1/subscriptions/{subscription_id}"): SUBSCRIPTIONS,
    ("DELETE", "/v1/subscriptions/{subscription_id}"): SUBSCRIPTIONS,
    ("POST", "/v1/subscriptions/{subscription_id}/secret"): SUBSCRIPTIONS,
    ("POST", "/v1/subscriptions/{subscription_id}/enable"): SUBSCRIPTIONS,
    ("GET", "/v1/subscriptions/{subscription_id}/deliveries"): SUBSCRIPTIONS,
    ("POST", "/v1/subscriptions/{subscription_id}/deliveries/{delivery_id}/redeliver"): SUBSCRIPTIONS,
}


# Where each route a device may call is shown to hear a device only from its client, on the movement it seals, at
# the departure node, while the movement is on the road (issue 13: devices belong to what they seal).
DEVICE_BOUND: dict[Key, str] = {("POST", "/v1/tracking/positions"): SEALS}


def default_app_routes() -> set[Key]:
    return app_routes(create_app(Settings(), background=False))


def test_the_access_table_names_exactly_the_routes_the_app_serves() -> None:
    served = default_app_routes()
    missing = sorted(served - set(ACCESS))
    assert not missing, f"routes without an entry in tests/security/routes.py ACCESS (who may call them?): {missing}"
    stale = sorted(set(ACCESS) - served)
    assert not stale, f"ACCESS names routes the app no longer serves: {stale}"

    # The walk sees at least what the API document sees (a second, independent listing of the routes).
    document = create_app(Settings(), background=False).openapi()["paths"]
    in_spec = {(method.upper(), path) for path, item in document.items() for method in item if method in HTTP_METHODS}
    assert in_spec <= served, sorted(in_spec - served)

    for key, who in ACCESS.items():
        assert who, key
        assert set(who) <= {*ROLES, PUBLIC, PEER}, key
        assert len(who) == 1 or not {PUBLIC, PEER} & set(who), f"{key}: public and peer stand alone"
        fill(key[1])  # every path parameter has a made-up value


def test_the_benchmark_floor_is_the_only_route_a_setting_adds_and_it_is_off_by_default() -> None:
    assert Settings().bench_floor_endpoint is False
    with_floor = app_routes(create_app(Settings(bench_floor_endpoint=True), background=False))
    assert with_floor - default_app_routes() == {("POST", "/v1/_floor")}


def test_every_route_a_forwarder_may_call_has_a_party_scoping_proof() -> None:
    forwarder_routes = {key for key, who in ACCESS.items() if "forwarder" in who}
    assert forwarder_routes == set(PARTY_SCOPED), sorted(forwarder_routes ^ set(PARTY_SCOPED))
    gone = missing(sorted(set(PARTY_SCOPED.values())))
    assert not gone, f"{gone} are gone: point PARTY_SCOPED at the tests that prove the scoping now"


def test_every_route_a_device_may_call_has_a_device_seal_movement_proof() -> None:
    device_routes = {key for key, who in ACCESS.items() if "device" in who}
    assert device_routes == set(DEVICE_BOUND), sorted(device_routes ^ set(DEVICE_BOUND))
    gone = missing(sorted(set(DEVICE_BOUND.values())))
    assert not gone, f"{gone} are gone: point DEVICE_BOUND at the tests that prove the binding now"


async def call(node: InProcessNode, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    body: dict[str, object] | None = {} if method in ("POST", "PUT", "PATCH") else None
    return await node.client.request(method, fill(path), headers=headers, json=body)


def verdict(key: Key, caller: str | None, response: httpx.Response) -> str | None:
    """What is wrong with this answer to this caller, or None."""
    method, path = key
    who = ACCESS[key]
    status = response.status_code
    if status >= 500 and (key, status) != (("GET", "/readyz"), 503):  # 503: no worker loop runs in tests
        return f"server error {status}: {response.text[:200]}"
    if status in (401, 403) and response.headers.get("content-type") != PROBLEM:
        return f"{status} is not problem+json"
    if PUBLIC in who:
        return f"public route answered {status}" if status in (401, 403) else None
    if PEER in who:
        if path == "/v1/corridor/messages" and method == "POST":
            # no request signature here: each envelope is checked; an empty body is refused whoever sends it
            return None if 400 <= status < 500 else f"unsigned inbox post answered {status}"
        if status != 401:
            return f"a peer-only route answered {status} to a client token or none"
        if response.headers.get("www-authenticate") != SCHEME:
            return f"401 without the {SCHEME} challenge"
        return None
    if caller is None:
        return None if status == 401 and response.headers.get("www-authenticate") == "Bearer" else f"{status}"
    if caller in who:
        return f"allowed role refused with {status}" if status in (401, 403) else None
    return None if status == 403 else f"{status}, expected 403"


async def test_every_route_answers_every_role_as_the_access_table_says(corridor: InProcessCorridor) -> None:
    kz = corridor["KZ"]
    headers: dict[str | None, dict[str, str]] = {None: {}}
    for role in ROLES:
        party = DECLARANT if role == "forwarder" else None
        headers[role] = await client_for(corridor, "KZ", role=role, party_id=party)
    wrong = []
    for key in sorted(ACCESS):
        for caller, sent in headers.items():
            response = await call(kz, *key, sent)
            problem = verdict(key, caller, response)
            if problem:
                wrong.append(f"{key[0]} {key[1]} as {caller or 'no token'}: {problem}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
async def test_peer_routes_take_a_node_signature_and_never_a_client_token(corridor: InProcessCorridor) -> None:
    """The positive half of the PEER rows: Uzbekistan's signed request is served; the same request with KZ's admin
    token is not; a node may pull only its own messages; and envelopes reach the inbox signed (a ping's receipt)."""
    kz, uz = corridor["KZ"], corridor["UZ"]
    as_uz = PeerAuth(key=uz.node.key, iss="UZ", aud="KZ")
    for path, params in (("/v1/corridor/messages", {"to": "UZ"}), ("/v1/corridor/checkpoints", {"node": "UZ"})):
        assert (await kz.client.get(path, params=params, auth=as_uz)).status_code == 200, path
        refused = await kz.client.get(path, params=params, headers=kz.admin)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == SCHEME, path
    others = await kz.client.get("/v1/corridor/messages", params={"to": "TM"}, auth=as_uz)
    assert others.status_code == 403 and others.headers["content-type"] == PROBLEM

    sent = await uz.client.post("/v1/admin/pings", json={"to": ["KZ"]}, headers=uz.admin)
    assert sent.status_code == 200, sent.text
    await corridor.deliver_all()
    outbox = (await uz.client.get("/v1/admin/outbox", headers=uz.admin)).json()["items"]
    assert [(item["peer"], item["receipt_status"]) for item in outbox] == [("KZ", "accepted")]


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
async def test_a_forwarder_cannot_subscribe_to_another_partys_consignment(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """Another party's released consignment does not exist for a forwarder (404, as for an unknown MRN), so it
    cannot be followed through a webhook; its own party can subscribe to it."""
    del guarantee
    kz = corridor["KZ"]
    kz.node.settings.webhook_allow_private_targets = True  # the URL is never called: the loops are off in tests
    created = await kz.client.post("/v1/declarations", json=declaration(), headers=customs["KZ"])
    mrn = created.json()["mrn"]
    assert (await kz.client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])).status_code == 200
    hook = {"url": "http://127.0.0.1:9/hook", "mrn": mrn}

    other = await client_for(corridor, "KZ", role="forwarder", party_id="990140000385")
    refused = await kz.client.post("/v1/subscriptions", json=hook, headers=other)
    assert refused.status_code == 404 and refused.headers["content-type"] == PROBLEM, refused.text
    unknown = await kz.client.post("/v1/subscriptions", json={**hook, "mrn": fill("{mrn}")}, headers=other)
    assert refused.json()["detail"] == unknown.json()["detail"].replace(fill("{mrn}"), mrn), "no existence leak"

    own = await client_for(corridor, "KZ", role="forwarder", party_id=DECLARANT)
    assert (await kz.client.post("/v1/subscriptions", json=hook, headers=own)).status_code == 201


async def test_a_device_reports_only_its_own_seal_on_a_movement_on_the_road(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """The device ↔ seal ↔ movement rule as a matrix: who sends (the device's client or another), which device,
    which movement (on the road here, closed, or held as a route copy), and the answer. Nothing refused is stored."""
    del guarantee
    on_road = (await travel(corridor, customs, until="entry-uz")).mrn
    closed = (await travel(corridor, customs)).mrn
    owner = await device_for(corridor, "KZ", devices={DEVICE: SEAL})
    stranger = await device_for(corridor, "KZ", devices={"ESEAL-KZ-9999": "KZ-SEAL-999999"})
    at_uz = await device_for(corridor, "UZ", devices={DEVICE: SEAL})
    cases = [
        # (node, sender, device, movement) -> status, the refused ping's code
        ("KZ", owner, DEVICE, on_road, 200, None),
        ("KZ", stranger, DEVICE, on_road, 403, "not-your-device"),  # another client's device
        ("KZ", owner, "ESEAL-KZ-9999", on_road, 403, "not-your-device"),  # the client borrows a device
        ("KZ", owner, "ATTACKER-1", on_road, 403, "not-your-device"),  # a device nobody registered
        ("KZ", stranger, "ESEAL-KZ-9999", on_road, 422, "not-this-movement"),  # its own device, not this seal
        ("KZ", owner, DEVICE, closed, 409, "not-on-the-road"),
        ("UZ", at_uz, DEVICE, on_road, 409, "not-departure"),  # a route country's copy
    ]
    wrong = []
    for minute, (node, sender, device, mrn, status, code) in enumerate(cases):
        at = (clock.utcnow() - timedelta(minutes=60 - minute)).isoformat()
        ping = {"device_id": device, "mrn": mrn, "time": at, "lat": 43.0, "lon": 76.0, "seal_state": "tampered"}
        response = await corridor[node].client.post("/v1/tracking/positions", json={"pings": [ping]}, headers=sender)
        got = response.json()["errors"][0]["code"] if response.status_code != 200 else None
        if (response.status_code, got) != (status, code):
            wrong.append(f"{node} {device} on {mrn}: {response.status_code} {got}, expected {status} {code}")
        elif status != 200 and response.headers["content-type"] != PROBLEM:
            wrong.append(f"{node} {device} on {mrn}: {status} is not problem+json")
    assert not wrong, "\n".join(wrong)
    async with corridor["UZ"].node.sessionmaker() as session:
        assert not (await session.scalars(select(TrackingPosition))).all()
    async with corridor["KZ"].node.sessionmaker() as session:
        assert [(row.device_id, row.mrn) for row in await session.scalars(select(TrackingPosition))] == [
            (DEVICE, on_road)
        ]


def test_every_route_on_a_guarantees_authorisations_or_one_subscription_has_an_ownership_rule() -> None:
    owned = {
        key
        for key in ACCESS
        if "/authorisations" in key[1]
        or (key[1].startswith("/v1/subscriptions/") and key[0] != "GET")
        or key[1].endswith("/deliveries")
    }
    assert owned <= set(OWNERSHIP), sorted(owned - set(OWNERSHIP))
    assert set(OWNERSHIP) <= set(ACCESS), sorted(set(OWNERSHIP) - set(ACCESS))


async def test_owned_routes_answer_only_their_owners(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]]
) -> None:
    """Customs client A registers a guarantee held by party 990140000384 and subscribes to the node's events. For
    every route of `OWNERSHIP`: customs client B (same role, same node) is refused with a 403 problem that says
    why, except where the rule shares reading; a forwarder of another party does not see the guarantee (404); the
    owners (A, the holder's forwarder, an admin for subscriptions) get past the rule (no 401/403)."""
    kz = corridor["KZ"]
    kz.node.settings.webhook_allow_private_targets = True  # the URL is never called: the loops are off in tests
    holder_party = "990140000384"
    grn = "26KZ0000000004321"
    first = customs["KZ"]
    second = await client_for(corridor, "KZ", role="customs", party_id=None)
    holder = await client_for(corridor, "KZ", role="forwarder", party_id=holder_party)
    stranger = await client_for(corridor, "KZ", role="forwarder", party_id=DECLARANT)
    admin = kz.admin
    body = {"grn": grn, "holder_id": holder_party, "reference_amount": "1000.00", "currency": "USD"}
    assert (await kz.client.post("/v1/guarantees", json=body, headers=first)).status_code == 201

    async def subscription() -> str:
        made = await kz.client.post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/hook"}, headers=first)
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    def request_for(key: Key, values: dict[str, str]) -> tuple[str, str, dict[str, object] | None]:
        method, path = key
        body: dict[str, object] | None = None
        if method == "POST" and path.endswith("/authorisations"):
            body = {"declarant_id": DECLARANT}
        return method, fill(path).replace(fill("{grn}"), grn).replace(fill("{subscription_id}"), values["sub"]), body

    values = {"sub": await subscription()}
    wrong = []
    # DELETE last, so the thing is still there for the other routes
    for key in sorted(OWNERSHIP, key=lambda key: (key[0] == "DELETE", key)):
        method, path, sent = request_for(key, values)
        is_guarantee = "/v1/guarantees/" in key[1]
        intruder = await kz.client.request(method, path, json=sent, headers=second)
        if OWNERSHIP[key] == SUBSCRIBER or is_guarantee:
            if intruder.status_code != 403 or intruder.headers["content-type"] != PROBLEM:
                wrong.append(f"{method} {key[1]} as another customs client: {intruder.status_code}")
            elif "only" not in intruder.json()["detail"]:
                wrong.append(f"{method} {key[1]}: the 403 does not say who may: {intruder.text}")
        elif intruder.status_code != 200:
            wrong.append(f"{method} {key[1]}: reading is shared, got {intruder.status_code}")
        if is_guarantee:
            hidden = await kz.client.request(method, path, json=sent, headers=stranger)
            if hidden.status_code != 404:
                wrong.append(f"{method} {key[1]} as another party's forwarder: {hidden.status_code}")
            owners = [first, holder]
        else:
            owners = [admin, first]
        for owner in owners:
            if key[0] == "DELETE" and owner is admin:
                method, path, sent = request_for(key, {"sub": await subscription()})
            elif key[0] == "DELETE":
                method, path, sent = request_for(key, values)
            answer = await kz.client.request(method, path, json=sent, headers=owner)
            if answer.status_code in (401, 403) or answer.status_code >= 500:
                wrong.append(f"{method} {key[1]} as an owner: {answer.status_code} {answer.text[:200]}")
    assert not wrong, "\n".join(wrong)
