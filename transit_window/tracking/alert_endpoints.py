"""The customs API of alerts: list what this node holds, acknowledge, close (this node's own work queue)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy import select

from transit_window import clock
from transit_window.api.deps import Principal, SessionDep, require
from transit_window.api.problems import responses
from transit_window.db.dialect import dialect_of
from transit_window.errors import Conflict, NotFound
from transit_window.tracking.alerts import AlertStatus
from transit_window.tracking.messages import UUID_PATTERN
from transit_window.tracking.models import TrackingAlert
from transit_window.tracking.schemas import AlertNote, AlertPage, MovementAlertOut

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

# -- the customs API ---------------------------------------------------------------------------------------------

router = APIRouter(tags=["alerts"])
Customs = Annotated[Principal, Depends(require("customs"))]
AlertId = Annotated[str, Path(pattern=UUID_PATTERN)]


@router.get(
    "/v1/alerts",
    operation_id="alerts_list",
    summary="Alerts held by this node (its own and those shared by the route), oldest first",
    response_model=AlertPage,
    responses=responses(401, 403, 422),
)
async def list_alerts(
    principal: Customs,
    session: SessionDep,
    status: AlertStatus | None = None,
    mrn: Annotated[str | None, Query(pattern=r"^[0-9]{2}[A-Z]{2}[A-Z0-9]{12}[JKL][0-9]$")] = None,
    cursor: Annotated[str | None, Query(pattern=UUID_PATTERN, description="`next` of the page before")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AlertPage:
    statement = select(TrackingAlert).order_by(TrackingAlert.id).limit(limit + 1)
    if status:
        statement = statement.where(TrackingAlert.status == status)
    if mrn:
        statement = statement.where(TrackingAlert.mrn == mrn)
    if cursor:
        statement = statement.where(TrackingAlert.id > cursor)
    rows = list((await session.scalars(statement)).all())
    page = rows[:limit]
    return AlertPage(
        items=[MovementAlertOut.model_validate(row) for row in page],
        next=page[-1].id if len(rows) > limit else None,
    )


async def _alert(session: AsyncSession, alert_id: str) -> TrackingAlert:
    alert = await session.get(TrackingAlert, alert_id, with_for_update=dialect_of(session).concurrent_writers)
    if alert is None:
        raise NotFound(f"no alert {alert_id} at this node")
    return alert


@router.post(
    "/v1/alerts/{alert_id}/acknowledge",
    operation_id="alerts_acknowledge",
    summary="Customs have seen the alert and are dealing with it",
    response_model=MovementAlertOut,
    responses=responses(401, 403, 404, 409, 422),
)
async def acknowledge(
    alert_id: AlertId, request: AlertNote, principal: Customs, session: SessionDep
) -> MovementAlertOut:
    alert = await _alert(session, alert_id)
    if alert.status != "open":
        raise Conflict(f"alert {alert_id} is {alert.status}; only an open alert can be acknowledged")
    alert.status = "acknowledged"
    alert.acknowledged_at = clock.utcnow()
    alert.acknowledged_by = principal.client_id
    alert.acknowledged_note = request.note
    await session.flush()
    return MovementAlertOut.model_validate(alert)


@router.post(
    "/v1/alerts/{alert_id}/close",
    operation_id="alerts_close",
    summary="Close the alert with a note; the same rule may then raise a new alert on this movement",
    response_model=MovementAlertOut,
    responses=responses(401, 403, 404, 409, 422),
)
async def close(alert_id: AlertId, request: AlertNote, principal: Customs, session: SessionDep) -> MovementAlertOut:
    alert = await _alert(session, alert_id)
    if alert.status == "closed":
        raise Conflict(f"alert {alert_id} is already closed")
    alert.status = "closed"
    alert.closed_at = clock.utcnow()
    alert.closed_by = principal.client_id
    alert.closed_note = request.note
    alert.open_key = None
    await session.flush()
    return MovementAlertOut.model_validate(alert)
