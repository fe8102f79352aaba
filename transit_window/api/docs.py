"""`/docs` (Swagger UI) and `/redoc` served from the node itself, so they work on a customs network without internet.

FastAPI's own pages load their scripts, styles, favicon and fonts from public CDNs, unpinned. The assets here come
from the `fastapi-offline` package (Swagger UI and ReDoc bundles, pinned by its version in pyproject.toml) and are
served under `/docs/static/`; the pages name no other host. Only this module knows where the assets live.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
STATIC = "/docs/static"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"


def install(app: FastAPI, *, title: str) -> None:
    """Mount the assets and the three pages (out of the API document, as FastAPI's own are). Build the app with
    `docs_url=None, redoc_url=None` so FastAPI does not add its CDN-backed pages first."""
    app.mount(STATIC, StaticFiles(directory=ASSETS), name="docs-static")

    def base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = base(request)
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{title} — Swagger UI",
            swagger_js_url=f"{root}{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC}/favicon.png",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT}",
            swagger_ui_parameters={"validatorUrl": None},  # else the browser asks validator.swagger.io for a badge
        )

    @app.get(OAUTH2_REDIRECT, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = base(request)
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{title} — ReDoc",
            redoc_js_url=f"{root}{STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC}/favicon.png",
            with_google_fonts=False,
        )
