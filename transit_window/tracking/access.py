"""Who may see a consignment. A forwarder sees consignments where its party id is the declarant, consignor,
consignee or carrier, or where the declarant granted it access; customs see every movement their node holds.
A consignment a forwarder may not see is reported as not found (404), never as forbidden: no existence leak."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from transit_window import clock
from transit_window.db import bulk
from transit_window.db.base import table_of
from transit_window.declarations.interface import Movement
from transit_window.errors import NotFound
from transit_window.tracking.models import ConsignmentParty

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.clients.principal import Principal

PARTY_ROLES = ("declarant", "consignor", "consignee", "carrier")


def parties_of(movement: Movement) -> set[str]:
    record = movement.record
    return {str((record.get(role) or {}).get("id", "")) for role in PARTY_ROLES} - {""}


async def may_read(session: AsyncSession, principal: Principal, movement: Movement) -> bool:
    if principal.role in ("customs", "admin"):
        return True
    if principal.role != "forwarder" or not principal.party_id:
        return False
    grant = await session.scalar(
        select(ConsignmentParty.party_id).where(
            ConsignmentParty.mrn == movement.mrn, ConsignmentParty.party_id == principal.party_id
        )
    )
    return grant is not None


async def register_parties(session: AsyncSession, movement: Movement) -> None:
    """Index the consignment's parties (called when a node first holds the movement)."""
    now = clock.utcnow()
    record = movement.record
    rows = [
        {"mrn": movement.mrn, "party_id": party, "role": role, "granted_by": None, "created_at": now}
        for role in PARTY_ROLES
        if (party := str((record.get(role) or {}).get("id", "")))
    ]
    await bulk.insert_rows(session, table_of(ConsignmentParty), rows)  # one statement for the four parties


async def readable_movement(session: AsyncSession, principal: Principal, mrn: str) -> Movement:
    movement = await session.scalar(select(Movement).where(Movement.mrn == mrn))
    if movement is None or not await may_read(session, principal, movement):
        raise NotFound(f"no consignment {mrn} for this client")
    return movement
