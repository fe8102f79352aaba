"""Declarations' part of `GET /metrics`: movements held here by role (departure, route) and status."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from transit_window.declarations.models import MOVEMENT_STATUSES, Movement
from transit_window.metrics import Metrics

ROLES = ("departure", "route")


async def collect(session: AsyncSession, metrics: Metrics) -> None:
    rows = await session.execute(
        select(Movement.role, Movement.status, func.count()).group_by(Movement.role, Movement.status)
    )
    counts = {(role, status): count for role, status, count in rows}
    # Every label, 0 when none: with several API processes a label left unset would keep another's old value.
    for role, status in sorted(set(counts) | {(role, status) for role in ROLES for status in MOVEMENT_STATUSES}):
        metrics.movements.labels(role=role, status=status).set(counts.get((role, status), 0))
