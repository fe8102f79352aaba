"""Limits a hostile or careless client meets on every route: list endpoints page with a bounded `limit` and a cursor,
and a request body over the route's limit is refused with 413 problem+json, before authentication when it declares
its length and while streaming when it does not. tests/documents/test_body_limits.py checks which limit each path
gets; this module checks that every route that takes a body is behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.security.routes import ACCESS, ROLES, Key, fill
from tests.support.inprocess import InProcessCorridor
from tests.tracking.conftest import DECLARANT, client_for
from transit_window.api.middleware import BodyLimit
from transit_window.app import create_app
from transit_window.settings import Settings

PROBLEM = "application/problem+json"
CURSORS = {"cursor", "after_seq"}  # after_seq: the pull of missed corridor messages pages by sequence number
LARGEST_PAGE = 10_000

# Lists that are whole on purpose, each with what bounds it.
UNPAGED: dict[str, str] = {
    "/v1/admin/status": "members: the trust list's members, at most the six corridor countries",
    "/v1/consignments/{mrn}/timeline": "one consignment's journey: its steps and alerts",
    "/v1/permits/revocations": "a signed revocation list is complete or useless to an offline checker; it holds "
    "only revoked permits still within their validity",
    "/v1/permits/quotas": "one row per issuer, holder, year and permit type (at most 30 country pairs by 4 types a "
    "year); the service returns at most 1000, newest year first",
    "/v1/corridor/checkpoints": "newest first with a bounded limit and no cursor: a witnessed checkpoint covers every "
    "entry before it, so the audit needs only the recent ones",
}


def resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def is_array(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    options = [schema, *schema.get("anyOf", []), *schema.get("oneOf", [])]
    return any(resolve(option, components).get("type") == "array" for option in options)


def list_endpoints(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """GET operations on a collection (the path ends in a name, not a parameter) whose JSON answer has an array."""
    components = document.get("components", {}).get("schemas", {})
    found = {}
    for path, item in document["paths"].items():
        operation = item.get("get")
        if operation is None or path.endswith("}"):
            continue
        content = operation["responses"].get("200", {}).get("content", {}).get("application/json")
        if content is None:
            continue
        schema = resolve(content["schema"], components)
        properties = schema.get("properties", {}).values()
        if schema.get("type") == "array" or any(is_array(value, components) for value in properties):
            found[path] = operation
    return found


def test_every_list_endpoint_pages_with_a_bounded_limit_and_a_cursor() -> None:
    document = create_app(Settings(), background=False).openapi()
    lists = list_endpoints(document)
    assert "/v1/declarations" in lists and "/v1/subscriptions" in lists, "the list detection is broken"
    assert set(UNPAGED) <= set(lists), f"stale exemptions: {sorted(set(UNPAGED) - set(lists))}"
    wrong = []
    for path, operation in sorted(lists.items()):
        query = {param["name"]: param.get("schema", {}) for param in operation.get("parameters", [])}
        limit = query.get("limit")
        if limit is not None and not (limit.get("minimum", 0) >= 1 and limit.get("maximum", 1e18) <= LARGEST_PAGE):
            wrong.append(f"{path}: limit {limit} needs a minimum of 1 and a maximum of at most {LARGEST_PAGE}")
        if path in UNPAGED:
            continue
        if limit is None:
            wrong.append(f"{path}: no limit")
        if not CURSORS & set(query):
            wrong.append(f"{path}: no cursor")
    assert not wrong, "\n".join(wrong)


def with_body(key: Key) -> bool:
    return key[0] in ("POST", "PUT", "PATCH")


def body_limit() -> BodyLimit:
    app = create_app(Settings(), background=False)
    [middleware] = [entry for entry in app.user_middleware if entry.cls is BodyLimit]
    return BodyLimit(app, **middleware.kwargs)


def takes_body(document: dict[str, Any], key: Key) -> bool:
    return "requestBody" in document["paths"].get(key[1], {}).get(key[0].lower(), {})


async def chunks(size: int) -> AsyncIterator[bytes]:
    piece = b" " * 65536
    while size > 0:
        yield piece[:size]
        size -= len(piece)


def assert_too_large(response: Any, *, limit: int, what: str) -> None:
    assert response.status_code == 413, f"{what}: {response.status_code} {response.text[:200]}"
    assert response.headers["content-type"] == PROBLEM, what
    assert f"exceeds {limit} bytes" in response.json()["detail"], what


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
async def test_an_over_limit_body_is_refused_with_413_on_every_route_that_takes_one(
    corridor: InProcessCorridor,
) -> None:
    """Declared too long: refused by the length alone, before any token is looked at. Streamed without a length:
    refused once the limit is passed, for the right caller too (the PDF upload reads its body after authorizing)."""
    kz = corridor["KZ"]
    limits = body_limit()
    document = create_app(Settings(), background=False).openapi()
    tokens = {
        role: await client_for(corridor, "KZ", role=role, party_id=DECLARANT if role == "forwarder" else None)
        for role in ROLES
    }
    routes = sorted(key for key in ACCESS if with_body(key))
    assert ("PUT", "/v1/documents/{document_id}/pdf") in routes and ("POST", "/v1/corridor/messages") in routes
    for method, path in routes:
        url = fill(path)
        limit = limits.limit_for(url)
        declared = await kz.client.request(
            method, url, content=b" " * (limit + 1), headers={"content-type": "application/json"}
        )
        assert_too_large(declared, limit=limit, what=f"{method} {path} with Content-Length")
        if not takes_body(document, (method, path)):
            continue  # nothing reads the body of these, so a stream is never taken in
        role = next((who for who in ACCESS[(method, path)] if who in tokens), "")  # none: public or peer
        content_type = "application/pdf" if path.endswith("/pdf") else "application/json"
        streamed = await kz.client.request(
            method, url, content=chunks(limit + 1), headers={"content-type": content_type, **tokens.get(role, {})}
        )
        assert_too_large(streamed, limit=limit, what=f"{method} {path} streamed")
