"""What release checks besides the guarantee: every certificate the goods need and every permit the carrier needs
on this route, each present at this node, valid for the truck, not withdrawn or revoked, and valid when it will be
used: at release for the country the truck leaves from, and over the whole time the truck may enter each later
country (`Window`: from the earliest a lorry could get there to when the overdue-crossing alert would fire), by one
permit or by a year's permit and the next one's together. Not through the limit date: a truck released on
20 December for a trip ending in January needs permits valid when it crosses, which the year-end grace of
`permits/years.py` may or may not give.

The answer to a refusal is one 409 problem listing exactly what is missing (`missing`: kind, type, country, detail),
so the declarant fixes everything in one go. Certificates come from the HS chapter rules (`codes/hs.json`) and the
destination rules of `codes/permit_rules.json`; permits from the same rules file (`PermitRules.needs`).

Declarations knows neither documents nor permits: each answers through the `ReleasePapers` port (`ports.py`,
implemented in `documents/release_check.py` and `permits/release_check.py`, wired by `transit_window.catalogue`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from transit_window.declarations.ports import PORTS, Missing, MovementPapers
from transit_window.errors import Conflict

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.declarations.models import Movement
    from transit_window.protocol.node import Node


def papers_of(movement: Movement) -> MovementPapers:
    return MovementPapers(
        mrn=movement.mrn,
        record=movement.record,
        offices=list(movement.offices),
        countries=list(movement.countries),
        destination_office=movement.destination_office,
    )


async def check_release(session: AsyncSession, node: Node, movement: Movement) -> list[Callable[[], Awaitable[None]]]:
    """Raise `Conflict` listing everything missing; else what to do once the release goes ahead."""
    papers = papers_of(movement)
    missing: list[Missing] = []
    then: list[Callable[[], Awaitable[None]]] = []
    for check in PORTS.release_papers():
        verdict = await check.check(session, node, papers)
        missing.extend(verdict.missing)
        if verdict.on_release is not None:
            then.append(verdict.on_release)
    if missing:
        count = len(missing)
        raise Conflict(
            f"{movement.mrn} cannot be released: {count} document{'s are' if count > 1 else ' is'} missing or not "
            f"valid: {'; '.join(item.detail for item in missing)}",
            missing=[item.as_dict() for item in missing],
        )
    return then
