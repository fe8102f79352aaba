"""Who may call what: the node's access policy as a table, and the app's routes as the code declares them.

`ACCESS` is the policy, written down by hand on purpose: a new endpoint is not covered until someone decides who may
call it (tests/security/test_authorization.py fails until then). Each (method, path template) maps to the client
roles allowed, or to PUBLIC (no credential needed) or PEER (a corridor node: a `DTC-Signature` request signature,
or for the inbox a signed envelope in the body). `app_routes` walks the app as FastAPI serves it — included routers
are expanded lazily, so `app.routes` alone shows `_IncludedRouter` placeholders — and the mounted HTML pages.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, Mount, Route

from transit_window.codes.identifiers import generate_mrn

PUBLIC = "public"
PEER = "peer"
ROLES = ("customs", "permits", "forwarder", "device", "admin")
Key = tuple[str, str]

CUSTOMS = ("customs",)
PERMITS = ("permits",)
BORDER_OR_AUTHORITY = ("customs", "permits")
FOLLOWERS = ("customs", "forwarder")  # tracking and webhooks: a forwarder sees only its party's consignments
SUBSCRIBERS = ("customs", "forwarder", "admin")  # existing subscriptions: the operator may read and act on them too
HOLDERS = ("customs", "forwarder")  # a guarantee's authorisations: its holder's forwarder, or its registering customs

ACCESS: dict[Key, tuple[str, ...]] = {
    # FastAPI's own documents and the operations endpoints (the metrics port is for the operator's network)
    ("GET", "/"): (PUBLIC,),  # the landing page: what this node is, links to /docs, /track and the trust list
    ("GET", "/openapi.json"): (PUBLIC,),
    ("GET", "/docs"): (PUBLIC,),
    ("GET", "/docs/oauth2-redirect"): (PUBLIC,),
    ("GET", "/redoc"): (PUBLIC,),
    ("GET", "/docs/static/{path}"): (PUBLIC,),  # Swagger UI and ReDoc assets: the node's own copy
    ("GET", "/healthz"): (PUBLIC,),
    ("GET", "/readyz"): (PUBLIC,),
    ("GET", "/metrics"): (PUBLIC,),  # with TW_METRICS_TOKEN unset; set: tests/security/test_metrics_token.py
    # transit: customs offices only
    ("POST", "/v1/declarations"): CUSTOMS,
    ("GET", "/v1/declarations"): CUSTOMS,
    ("GET", "/v1/declarations/{mrn}"): CUSTOMS,
    ("POST", "/v1/declarations/{mrn}/release"): CUSTOMS,
    ("POST", "/v1/declarations/{mrn}/cancel"): CUSTOMS,
    ("GET", "/v1/movements/expected"): CUSTOMS,
    ("GET", "/v1/movements/{mrn}"): CUSTOMS,
    ("POST", "/v1/movements/{mrn}/crossings"): CUSTOMS,
    ("POST", "/v1/movements/{mrn}/arrival"): CUSTOMS,
    ("POST", "/v1/movements/{mrn}/control-results"): CUSTOMS,
    ("POST", "/v1/movements/{mrn}/status-requests"): CUSTOMS,
    ("POST", "/v1/guarantees"): CUSTOMS,
    ("GET", "/v1/guarantees/{grn}"): CUSTOMS,
    ("POST", "/v1/guarantees/{grn}/authorisations"): HOLDERS,
    ("GET", "/v1/guarantees/{grn}/authorisations"): HOLDERS,
    ("DELETE", "/v1/guarantees/{grn}/authorisations/{authorisation_id}"): HOLDERS,
    # documents: issued by the competent authority (role permits), read by it and by customs
    ("POST", "/v1/documents"): PERMITS,
    ("GET", "/v1/documents"): BORDER_OR_AUTHORITY,
    ("GET", "/v1/documents/{document_id}"): BORDER_OR_AUTHORITY,
    ("PUT", "/v1/documents/{document_id}/pdf"): PERMITS,
    ("GET", "/v1/documents/{document_id}/pdf"): BORDER_OR_AUTHORITY,
    ("POST", "/v1/documents/{document_id}/withdraw"): PERMITS,
    ("POST", "/v1/documents/{document_id}/replace"): PERMITS,
    ("POST", "/v1/documents/{document_id}/acknowledge"): BORDER_OR_AUTHORITY,
    # permits: the authority grants, applies and revokes; border posts verify and record use
    ("POST", "/v1/permits/quotas"): PERMITS,
    ("GET", "/v1/permits/quotas"): PERMITS,
    ("POST", "/v1/permits/applications"): PERMITS,
    ("GET", "/v1/permits/applications/{application_id}"): PERMITS,
    ("GET", "/v1/permits/revocations"): (PUBLIC,),  # signed; offline checkers fetch it
    ("POST", "/v1/permits/verify"): BORDER_OR_AUTHORITY,
    ("GET", "/v1/permits"): BORDER_OR_AUTHORITY,
    ("GET", "/v1/permits/{permit_id}"): BORDER_OR_AUTHORITY,
    ("GET", "/v1/permits/{permit_id}/qr"): BORDER_OR_AUTHORITY,
    ("POST", "/v1/permits/{permit_id}/use"): BORDER_OR_AUTHORITY,
    ("POST", "/v1/permits/{permit_id}/revoke"): PERMITS,
    # tracking
    ("GET", "/v1/consignments"): FOLLOWERS,
    ("GET", "/v1/consignments/{mrn}"): FOLLOWERS,
    ("GET", "/v1/consignments/{mrn}/timeline"): FOLLOWERS,
    ("GET", "/v1/events"): FOLLOWERS,
    ("POST", "/v1/consignments/{mrn}/grants"): ("forwarder",),
    ("POST", "/v1/consignments/{mrn}/tracking-code"): FOLLOWERS,
    ("GET", "/v1/track/{code}"): (PUBLIC,),  # the code is the credential; the view shows no value, party or plate
    ("POST", "/v1/tracking/positions"): ("device",),  # and only for the client's own devices: DEVICE_BOUND
    ("PUT", "/v1/devices/{device_id}"): ("admin",),  # the operator says which device client owns which e-seal
    ("GET", "/v1/devices"): ("admin",),
    ("DELETE", "/v1/devices/{device_id}"): ("admin",),
    ("GET", "/v1/alerts"): CUSTOMS,
    ("POST", "/v1/alerts/{alert_id}/acknowledge"): CUSTOMS,
    ("POST", "/v1/alerts/{alert_id}/close"): CUSTOMS,
    # webhooks
    ("POST", "/v1/subscriptions"): FOLLOWERS,
    ("GET", "/v1/subscriptions"): SUBSCRIBERS,
    ("GET", "/v1/subscriptions/{subscription_id}"): SUBSCRIBERS,
    ("DELETE", "/v1/subscriptions/{subscription_id}"): SUBSCRIBERS,
    ("POST", "/v1/subscriptions/{subscription_id}/secret"): SUBSCRIBERS,
    ("POST", "/v1/subscriptions/{subscription_id}/enable"): SUBSCRIBERS,
    ("GET", "/v1/subscriptions/{subscription_id}/deliveries"): SUBSCRIBERS,
    ("POST", "/v1/subscriptions/{subscription_id}/deliveries/{delivery_id}/redeliver"): SUBSCRIBERS,
    # the corridor protocol: nodes only
    ("POST", "/v1/corridor/messages"): (PEER,),  # each envelope in the body is signed and checked on its own
    ("GET", "/v1/corridor/messages"): (PEER,),
    ("GET", "/v1/corridor/trust-list"): (PUBLIC,),  # threshold-signed; anyone may check it against the genesis
    ("GET", "/v1/corridor/secretariat"): (PUBLIC,),  # computed from the public trust list
    ("GET", "/v1/corridor/trust-list/{version}"): (PUBLIC,),  # every version as signed: the chain from the genesis
    ("GET", "/v1/corridor/checkpoints"): (PEER,),
    # trust-list proposals: each member's admin decides for its country
    ("POST", "/v1/corridor/proposals"): ("admin",),
    ("GET", "/v1/corridor/proposals"): ("admin",),
    ("GET", "/v1/corridor/proposals/{proposal_id}"): ("admin",),
    ("POST", "/v1/corridor/proposals/{proposal_id}/approve"): ("admin",),
    ("POST", "/v1/corridor/proposals/{proposal_id}/object"): ("admin",),
    ("POST", "/v1/corridor/proposals/{proposal_id}/signatures"): ("admin",),
    # the operator
    ("POST", "/v1/admin/trust-list"): ("admin",),
    ("GET", "/v1/admin/outbox"): ("admin",),
    ("POST", "/v1/admin/outbox/retry"): ("admin",),
    ("POST", "/v1/admin/pings"): ("admin",),
    ("GET", "/v1/admin/audit"): ("admin",),
    ("GET", "/v1/admin/status"): ("admin",),
    ("POST", "/v1/admin/checkpoints"): ("admin",),
    # the tracking page (HTML, mounted outside the API document)
    ("GET", "/track/"): (PUBLIC,),
    ("GET", "/track/{code}"): (PUBLIC,),
    ("GET", "/track/static/{path}"): (PUBLIC,),
}

# Ownership on top of the role: of the clients whose role a route admits, which may act on a given guarantee or
# subscription. Another client of an allowed role is refused with 403 (a forwarder of another party: 404, the thing
# does not exist for it). Proven for every route listed by test_owned_routes_answer_only_their_owners.
HOLDER = "the guarantee's holder (a forwarder of its party) or the customs client that registered it"
SUBSCRIBER = "the client that made the subscription, or an admin"
READER = "any client that may read the subscription (the node's customs clients, the party's forwarders, admin)"
OWNERSHIP: dict[Key, str] = {
    ("POST", "/v1/guarantees/{grn}/authorisations"): HOLDER,
    ("GET", "/v1/guarantees/{grn}/authorisations"): HOLDER,
    ("DELETE", "/v1/guarantees/{grn}/authorisations/{authorisation_id}"): HOLDER,
    ("GET", "/v1/subscriptions/{subscription_id}"): READER,
    ("DELETE", "/v1/subscriptions/{subscription_id}"): SUBSCRIBER,
    ("POST", "/v1/subscriptions/{subscription_id}/secret"): SUBSCRIBER,
    ("POST", "/v1/subscriptions/{subscription_id}/enable"): SUBSCRIBER,
    ("GET", "/v1/subscriptions/{subscription_id}/deliveries"): SUBSCRIBER,
    ("POST", "/v1/subscriptions/{subscription_id}/deliveries/{delivery_id}/redeliver"): SUBSCRIBER,
}

# Plausible values nobody has created: an allowed caller gets 404 (or 409/422), never 401/403.
PATH_VALUES = {
    "mrn": generate_mrn(year=26, country="KZ", serial=987654),
    "grn": "26KZ0000000009876",
    "authorisation_id": "0190a000-0000-7000-8000-0000000000e1",
    "document_id": "0190a000-0000-7000-8000-00000000d0c1",
    "application_id": "0190a000-0000-7000-8000-0000000000a1",
    "permit_id": "UZ-KZ-2026-2-987654",
    "code": "Zq7RkT2pWm9xVb4nLc8sHd",
    "subscription_id": "0190a000-0000-7000-8000-0000000005b1",
    "delivery_id": "0190a000-0000-7000-8000-0000000000d1",
    "alert_id": "0190a000-0000-7000-8000-0000000000a7",
    "device_id": "ESEAL-NOBODY-1",
    "path": "track.js",
    "version": "987654",
    "proposal_id": "0190a000-0000-7000-8000-0000000007a1",  # a trust-list version nobody adopted
}


def fill(path: str) -> str:
    """The path template with every parameter replaced by its plausible unknown value."""
    return path.format(**PATH_VALUES)


def _walk(routes: list[BaseRoute], prefix: str) -> Iterator[Key]:
    for context in iter_route_contexts(routes):
        route = context.original_route
        if isinstance(route, Mount):
            inner = route.routes
            if inner:
                yield from _walk(list(inner), prefix + route.path)
            else:  # an app such as StaticFiles: it serves every GET below its path
                yield ("GET", prefix + route.path + "/{path}")
            continue
        path = context.path
        assert isinstance(route, Route) or path is not None, f"unexpected route {route!r}"
        for method in sorted(context.methods or ()):
            if method != "HEAD":  # Starlette answers HEAD wherever it answers GET
                yield (method, prefix + str(path))


def app_routes(app: FastAPI) -> set[Key]:
    """Every (method, path template) the app answers, included routers and mounted pages too."""
    return set(_walk(list(app.router.routes), ""))


def allowed(key: Key) -> tuple[str, ...]:
    return ACCESS[key]
