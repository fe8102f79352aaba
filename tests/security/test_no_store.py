"""Every route whose answer can hold a secret or a token declares it (`dependencies=SECRET_BEARING`), so it is sent
with `Cache-Control: no-store` (issue 13.8). Found from the OpenAPI document: a new route answering a field named like
a secret, or a schema that is one, fails here until it declares it."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts

from transit_window.api.deps import carries_secret
from transit_window.app import create_app
from transit_window.settings import Settings

SECRET_FIELDS = {"secret", "tracking_code", "access_code"}
# The permit itself: a signed JWS its carrier presents (also its QR code). Elsewhere a `token` is a signed envelope
# or list meant to be passed on (checkpoints, the revocation list), so the name alone does not count.
SECRET_SCHEMAS = {"PermitOut"}


def secret_bearing(schema: Any, schemas: dict[str, Any], seen: set[str]) -> bool:
    if isinstance(schema, list):
        return any(secret_bearing(item, schemas, seen) for item in schema)
    if not isinstance(schema, dict):
        return False
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in SECRET_SCHEMAS:
            return True
        if name in seen:
            return False
        return secret_bearing(schemas[name], schemas, seen | {name})
    if SECRET_FIELDS & set(schema.get("properties", {})):
        return True
    return any(secret_bearing(value, schemas, seen) for key, value in schema.items() if key != "properties") or any(
        secret_bearing(value, schemas, seen) for value in schema.get("properties", {}).values()
    )


def test_every_answer_with_a_secret_or_a_token_is_marked_no_store() -> None:
    app = create_app(Settings(), background=False)
    spec = app.openapi()
    schemas = spec["components"]["schemas"]
    routes = {
        (method.lower(), str(context.path)): context.original_route
        for context in iter_route_contexts(list(app.router.routes))
        if isinstance(context.original_route, APIRoute)
        for method in context.methods or ()
    }
    bearing: list[tuple[str, str]] = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            answers = [
                content.get("schema", {})
                for status, response in operation.get("responses", {}).items()
                if status.startswith("2")
                for content in response.get("content", {}).values()
            ]
            if any(secret_bearing(schema, schemas, set()) for schema in answers):
                bearing.append((method, path))
    assert ("post", "/v1/subscriptions") in bearing and ("get", "/v1/declarations/{mrn}") in bearing
    unmarked = [
        f"{method.upper()} {path}"
        for method, path in bearing
        if not any(depends.dependency is carries_secret for depends in routes[method, path].dependencies)
    ]
    assert unmarked == [], "add dependencies=SECRET_BEARING to these routes"
