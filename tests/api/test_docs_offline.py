"""`/docs` and `/redoc` work on a customs network without internet (issue 13.8): every script, style and icon the
pages name is served by the node itself, and the pages name no other host."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from transit_window.app import create_app
from transit_window.settings import Settings

ASSET = re.compile(r'(?:src|href)="([^"]+)"')
ANY_URL = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+")


@pytest.fixture
async def node() -> AsyncIterator[httpx.AsyncClient]:
    """The app alone (the pages need no database), behind a transport that reaches nothing but the app."""
    app = create_app(Settings(), background=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", {"swagger-ui-bundle.js": "javascript", "swagger-ui.css": "text/css", "favicon.png": "image/png"}),
        ("/redoc", {"redoc.standalone.js": "javascript", "favicon.png": "image/png"}),
    ],
)
async def test_the_api_pages_load_everything_from_the_node(
    node: httpx.AsyncClient, page: str, assets: dict[str, str]
) -> None:
    response = await node.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert ANY_URL.findall(response.text) == [], "the page names another host"
    assert "cdn.jsdelivr.net" not in response.text and "fonts.googleapis.com" not in response.text
    referenced = ASSET.findall(response.text)
    assert {url.rsplit("/", 1)[-1] for url in referenced} == set(assets)
    for url in referenced:
        assert url.startswith("/docs/static/"), url
        asset = await node.get(url)
        assert asset.status_code == 200, url
        assert assets[url.rsplit("/", 1)[-1]] in asset.headers["content-type"], (url, asset.headers["content-type"])
        assert len(asset.content) > 1000
    assert '"openapi.json"' in response.text or "/openapi.json" in response.text
    assert (await node.get("/openapi.json")).status_code == 200


async def test_swagger_ui_asks_no_validator_service(node: httpx.AsyncClient) -> None:
    page = (await node.get("/docs")).text
    assert '"validatorUrl": null' in page
    assert (await node.get("/docs/oauth2-redirect")).status_code == 200
