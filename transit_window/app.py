"""The application factory. The lifespan opens the node and runs its background loops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from transit_window import __version__, logs, tasks
from transit_window import catalogue as catalogue
from transit_window.api import docs, floor, ops, problems
from transit_window.api.middleware import BodyLimit, HTTPMetrics, NoStore, RequestID
from transit_window.declarations import endpoints as declaration_endpoints
from transit_window.declarations import metrics as declaration_metrics
from transit_window.documents import endpoints as document_endpoints
from transit_window.exchange import admin as exchange_admin
from transit_window.exchange import endpoints as corridor_endpoints
from transit_window.exchange import proposals as corridor_proposals
from transit_window.metrics import Metrics
from transit_window.permits import endpoints as permit_endpoints
from transit_window.protocol.node import Node
from transit_window.settings import Settings
from transit_window.tracking import alert_endpoints as tracking_alerts
from transit_window.tracking import devices as tracking_devices
from transit_window.tracking import endpoints as tracking_endpoints
from transit_window.tracking import position_endpoints as tracking_positions
from transit_window.web import create_app as create_web_app
from transit_window.web import landing
from transit_window.webhooks import endpoints as webhook_endpoints


def _operation_id(route: APIRoute) -> str:
    return route.operation_id or route.name


def create_app(settings: Settings | None = None, *, background: bool | None = None) -> FastAPI:
    """Build the app. `background=False` runs no loops (tests drive delivery by hand)."""
    settings = settings or Settings()
    metrics = Metrics()
    run_loops = settings.run_worker if background is None else background

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not logging.getLogger().handlers:  # a worker process started by `serve` with TW_WORKERS > 1
            logs.configure(level=settings.log_level, json=settings.log_json)
        node = await Node.open(settings, metrics=metrics)
        app.state.node = node
        stop = asyncio.Event()
        running = tasks.start(node, stop, deliver=run_loops, maintain=run_loops, serve_api=background is not False)
        try:
            yield
        finally:
            await tasks.stop_all(stop, running)
            await node.close()

    app = FastAPI(
        title="transit_window",
        version=__version__,
        summary="A node of the Digital Transit Corridor (KZ KG UZ TJ TM AZ)",
        description=(
            "Customs transit declarations, permit documents and cargo tracking shared between the corridor's "
            "national nodes through signed messages. Errors are RFC 9457 problem+json."
        ),
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        docs_url=None,  # /docs and /redoc come from the node's own copy of the assets: api/docs.py
        redoc_url=None,
    )
    problems.install(app)
    docs.install(app, title="transit_window")
    app.include_router(ops.router)
    app.state.metrics_collectors = [declaration_metrics.collect]  # features' parts of /metrics
    app.include_router(declaration_endpoints.router)
    app.include_router(document_endpoints.router)
    app.include_router(permit_endpoints.router)
    app.include_router(tracking_endpoints.router)
    app.include_router(webhook_endpoints.router)
    app.include_router(tracking_positions.router)
    app.include_router(tracking_alerts.router)
    app.include_router(tracking_devices.router)
    app.include_router(corridor_endpoints.router)
    app.include_router(corridor_proposals.router)
    app.include_router(exchange_admin.router)
    app.mount("/track", create_web_app(lambda: app.state.node), name="track")  # HTML pages: not in the spec
    landing.install(app, lambda: app.state.node)
    if settings.bench_floor_endpoint:
        app.include_router(floor.router)
    app.add_middleware(NoStore)
    app.add_middleware(HTTPMetrics, metrics=metrics)
    app.add_middleware(
        BodyLimit,
        limit=settings.max_message_bytes,
        paths={
            "/v1/tracking/positions": settings.max_positions_bytes,
            document_endpoints.PDF_PATH: settings.max_document_bytes,
        },
    )
    app.add_middleware(RequestID)  # every answer, a 413 too, carries X-Request-ID
    if settings.trusted_proxy_list:
        # The one place a forwarded-client header is believed, whatever server runs the app (`serve` turns uvicorn's
        # own handling off, which would trust 127.0.0.1): outermost, so the throttle and the logs see the same client.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_list)
    return app
