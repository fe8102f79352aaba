"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from transit_window import clock
from transit_window.api.deps import NodeDep
from transit_window.api.problems import responses
from transit_window.errors import NotAuthenticated
from transit_window.metrics import Metrics
from transit_window.protocol.models import OUTBOX_STATES, LogHead, OutboxMessage, WorkerHeartbeat

logger = logging.getLogger(__name__)
router = APIRouter(tags=["ops"])
WORKER_STALE = timedelta(seconds=30)

MetricsCollector = Callable[[AsyncSession, Metrics], Awaitable[None]]
"""A feature's part of `GET /metrics` (e.g. movements by status), read from its tables at scrape time. The app factory
hands them in as `app.state.metrics_collectors`, so this module knows no feature."""


@router.get("/healthz", operation_id="ops_healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="ops_readyz",
    summary="Ready to serve: database reachable, trust list unexpired, a delivery worker alive",
    responses={503: {"description": "Not ready; `checks` says which check failed"}},
)
async def readyz(node: NodeDep) -> JSONResponse:
    checks: dict[str, str] = {}
    now = clock.utcnow()
    try:
        async with node.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
            seen = await session.scalar(select(func.max(WorkerHeartbeat.seen_at)))
        checks["database"] = "ok"
        checks["worker"] = "ok" if seen is not None and now - seen < WORKER_STALE else "no worker heartbeat in 30 s"
    except Exception as exc:  # the database being down is exactly what this endpoint reports
        checks["database"] = f"unreachable: {type(exc).__name__}"
        checks["worker"] = "unknown"
    expires = node.trust.body.expires_at
    checks["trust_list"] = "ok" if expires > now else f"version {node.trust.version} expired at {expires.isoformat()}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"ready": ready, "node": node.id, "checks": checks}, status_code=200 if ready else 503)


async def metrics_reader(request: Request, node: NodeDep) -> None:
    """With TW_METRICS_TOKEN set, only its bearer reads the metrics: they show movement counts by status, per-peer
    outbox depth and fraud alerts, which are not for anyone who can reach the port. Wrong tokens count as guesses
    (the bad-token throttle); client tokens do not open /metrics, so a scraper's credential opens nothing else."""
    expected = node.settings.metrics_token.get_secret_value() if node.settings.metrics_token else ""
    if not expected:  # unset (or set empty): public, as before
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("/metrics needs the operator's metrics token: Authorization: Bearer <TW_METRICS_TOKEN>")
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        node.bad_tokens.refuse_unknown(request.client.host if request.client else "unknown")
        raise NotAuthenticated("the metrics token is wrong")


@router.get(
    "/metrics",
    operation_id="ops_metrics",
    summary="Prometheus metrics (behind a bearer token when TW_METRICS_TOKEN is set)",
    response_class=Response,
    dependencies=[Depends(metrics_reader)],
    responses=responses(401, 429),
)
async def metrics(request: Request, node: NodeDep) -> Response:
    collectors: list[MetricsCollector] = getattr(request.app.state, "metrics_collectors", [])
    try:
        async with node.sessionmaker() as session:
            rows = await session.execute(
                select(OutboxMessage.peer, OutboxMessage.state, func.count()).group_by(
                    OutboxMessage.peer, OutboxMessage.state
                )
            )
            depth = {(peer, state): count for peer, state, count in rows}
            peers = {peer for peer, _ in depth} | set(node.peers())
            for peer in sorted(peers):  # every label, 0 when empty: see metrics.py on several processes
                for state in OUTBOX_STATES:
                    node.metrics.outbox_depth.labels(peer=peer, state=state).set(depth.get((peer, state), 0))
            size = await session.scalar(select(LogHead.size).where(LogHead.id == 1))
            node.metrics.log_size.set(size or 0)
            for collect in collectors:
                await collect(session, node.metrics)
    except Exception as exc:  # metrics must still be served when the database is down
        logger.warning("metrics: database unavailable (%s)", type(exc).__name__)
    return Response(node.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
