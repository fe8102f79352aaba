"""Declarations' part of `GET /metrics`: movements held here by role (departure, route, destination) and status."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from transit_window.declarations.models import Movement
from transit_window.metrics import Metrics


async def collect(session: AsyncSession, metrics: Metrics) -> None:
    rows = await session.execute(
        select(Movement.role, Movement.status, func.count()).group_by(Movement.role, Movement.status)
    )
    metrics.movements.clear()
    for role, status, count in rows:
        metrics.movements.labels(role=role, status=status).set(count)
