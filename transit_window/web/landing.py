"""`GET /`: what this node is and where to go from here, for a person who opens the node's address in a browser
(it used to be a 404 problem). Static apart from the node's id, name and trust-list version; the same security
headers as the tracking page, and nothing inline, so its CSP allows only this node's stylesheet."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from transit_window.codes import country_name
from transit_window.protocol.node import Node
from transit_window.web.pages import SECURITY_HEADERS

LINKS = (
    ("/track/", "Follow a consignment", "the public tracking page: enter the tracking code the forwarder was given"),
    ("/docs", "The API (Swagger UI)", "every operation, its examples and its problems; served from this node"),
    ("/redoc", "The API (ReDoc)", "the same document, for reading"),
    ("/openapi.json", "openapi.json", "the committed contract this node answers by"),
    ("/v1/corridor/trust-list", "Trust list", "the members of the corridor and their keys, signed by a threshold"),
    ("/v1/permits/revocations", "Permit revocations", "this country's signed list, for offline checks at the border"),
    ("/readyz", "Readiness", "whether the node's database and corridor work are ready"),
)


def install(app: FastAPI, node_of: Callable[[], Node]) -> None:
    @app.get("/", include_in_schema=False)
    async def landing(request: Request) -> HTMLResponse:
        node = node_of()
        root = escape(str(request.scope.get("root_path", "")).rstrip("/"))
        name = escape(f"{node.id} — {country_name(node.id)}" if len(node.id) == 2 else node.id)
        items = "\n".join(
            f'  <li><a href="{root}{href}">{escape(label)}</a> — {escape(what)}</li>' for href, label, what in LINKS
        )
        page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{name} · Digital Transit Corridor</title>
<link rel="stylesheet" href="{root}/track/static/track.css">
<link rel="icon" href="{root}/track/static/favicon.svg" type="image/svg+xml">
</head>
<body>
<main>
<h1>Digital Transit Corridor: node {name}</h1>
<p>A national node of the corridor (KZ KG UZ TJ TM AZ): customs transit declarations, permit documents and cargo
tracking, shared with the other members only through signed messages. Trust list version {node.trust.version}.</p>
<ul class="links">
{items}
</ul>
</main>
</body>
</html>
"""
        headers = {key.decode(): value.decode() for key, value in SECURITY_HEADERS}
        return HTMLResponse(page, headers=headers)
