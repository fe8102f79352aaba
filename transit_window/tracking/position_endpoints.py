"""`POST /v1/tracking/positions`: a device's batch validated, stored once, and run through the e-seal rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends

from transit_window.api.deps import NodeDep, Principal, SessionDep, require
from transit_window.api.problems import responses
from transit_window.tracking.positions import store, validate
from transit_window.tracking.schemas import MovementAlertOut, PositionBatch, PositionsResult
from transit_window.tracking.seal_rules import apply_rules

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.protocol.node import Node

# -- the API -----------------------------------------------------------------------------------------------------

router = APIRouter(tags=["tracking"])
DeviceClient = Annotated[Principal, Depends(require("device"))]


async def ingest(session: AsyncSession, node: Node, batch: PositionBatch, *, client_id: str) -> PositionsResult:
    pings, movements = await validate(session, node.settings, batch, client_id=client_id)
    stored = await store(session, pings)
    raised = await apply_rules(session, node, movements, stored, client_id=client_id)
    return PositionsResult(
        received=len(batch.pings),
        stored=len(stored),
        duplicates=len(batch.pings) - len(stored),
        alerts=[MovementAlertOut.model_validate(alert) for alert in raised],
    )


@router.post(
    "/v1/tracking/positions",
    operation_id="positions_ingest",
    summary="E-seal pings, up to 10,000 a batch: all stored (once) or, if any is refused, none",
    description="Each ping's device must be registered to the calling client (else 403), its movement must be "
    "one this node departs that is released or in transit (else 409), and the movement's declaration must list the "
    "device's seal (else 422). A refused batch stores nothing; its problem lists every refused ping by index.",
    response_model=PositionsResult,
    responses=responses(401, 403, 409, 413, 422),
)
async def post_positions(
    batch: PositionBatch, principal: DeviceClient, node: NodeDep, session: SessionDep
) -> PositionsResult:
    return await ingest(session, node, batch, client_id=principal.client_id)
