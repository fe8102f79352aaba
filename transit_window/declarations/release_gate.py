"""What release checks besides the guarantee: every certificate the goods need and every permit the carrier needs
on this route, each present at this node, valid for the dates and the truck, and not withdrawn or revoked.

The answer to a refusal is one 409 problem listing exactly what is missing (`missing`: kind, type, country, detail),
so the declarant fixes everything in one go. Certificates come from the HS chapter rules (`codes/hs.json`) and the
destination rules of `permits/rules.json`; permits from the same rules file (`PermitRules.needs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from transit_window import clock
from transit_window.codes.of_node import hs_of, offices_of
from transit_window.declarations.models import Movement
from transit_window.documents.models import Document
from transit_window.errors import Conflict
from transit_window.permits.models import Permit
from transit_window.permits.service import effective_status, rules_of

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.node import Node


@dataclass(frozen=True, slots=True)
class Missing:
    kind: str  # certificate | permit
    type: str
    country: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "type": self.type, "country": self.country, "detail": self.detail}


@dataclass(slots=True)
class Cleared:
    """What the release relies on: shared with the route along with the movement."""

    documents: list[Document]
    permits: list[Permit]


async def check_release(session: AsyncSession, node: Node, movement: Movement) -> Cleared:
    """Raise `Conflict` listing everything missing; else the documents and permits the release relies on."""
    missing: list[Missing] = []
    documents = await _certificates(session, node, movement, missing)
    permits = await _permits(session, node, movement, missing)
    if missing:
        count = len(missing)
        raise Conflict(
            f"{movement.mrn} cannot be released: {count} document{'s are' if count > 1 else ' is'} missing or not "
            f"valid: {'; '.join(item.detail for item in missing)}",
            missing=[item.as_dict() for item in missing],
        )
    return Cleared(documents=documents, permits=permits)


async def _certificates(
    session: AsyncSession, node: Node, movement: Movement, missing: list[Missing]
) -> list[Document]:
    record: dict[str, Any] = movement.record
    destination = offices_of(node).require(movement.destination_office).country
    rules = rules_of(node)
    needed: dict[str, list[str]] = {}  # certificate type → HS codes that need it, in declaration order
    reasons: dict[str, str] = {}
    for item in record.get("goods", []):
        code = str(item["hs_code"])
        for chapter_rule in hs_of(node).required_certificates(code):
            needed.setdefault(chapter_rule, []).append(code)
            reasons.setdefault(chapter_rule, hs_of(node).certificate_reason(code, chapter_rule))
        for rule in rules.certificates_for(destination=destination, hs_code=code):
            needed.setdefault(rule.certificate, []).append(code)
            reasons.setdefault(rule.certificate, f"{destination}: {rule.reason}")
    cleared: list[Document] = []
    refs = record.get("documents", [])
    for kind, codes in needed.items():
        certificate = str(kind)
        declared = [ref for ref in refs if ref.get("type") == certificate]
        if not declared:
            missing.append(
                Missing(
                    "certificate",
                    certificate,
                    node.id,
                    f"a {certificate} certificate for HS {', '.join(dict.fromkeys(codes))} ({reasons[certificate]}) "
                    "is not among the declaration's documents",
                )
            )
            continue
        uncovered = list(dict.fromkeys(codes))
        problems: list[str] = []
        for ref in declared:
            document = await session.scalar(
                select(Document).where(
                    Document.country == ref["country"], Document.type == certificate, Document.number == ref["number"]
                )
            )
            label = f"{certificate} certificate {ref['number']} of {ref['country']}"
            if document is None:
                problems.append(f"{label} is not known at {node.id}: its issuer has not sent it")
                continue
            if document.status != "issued":
                problems.append(f"{label} was {document.status}" + _withdrawal(document))
                continue
            covered = {str(goods.get("hs_code")) for goods in document.goods}
            if not covered & set(uncovered):
                problems.append(f"{label} covers HS {', '.join(sorted(covered))}, not {', '.join(uncovered)}")
                continue
            cleared.append(document)
            uncovered = [code for code in uncovered if code not in covered]
        if uncovered:
            detail = "; ".join(problems) if problems else f"no declared {certificate} certificate covers it"
            missing.append(
                Missing(
                    "certificate",
                    certificate,
                    node.id,
                    f"HS {', '.join(uncovered)} lacks a {certificate} certificate: {detail}",
                )
            )
    return cleared


def _withdrawal(document: Document) -> str:
    if document.replaced_by:
        return f" (replaced by {document.replaced_by})"
    return f": {document.withdraw_reason}" if document.withdraw_reason else ""


async def _permits(session: AsyncSession, node: Node, movement: Movement, missing: list[Missing]) -> list[Permit]:
    record: dict[str, Any] = movement.record
    carrier = record["carrier"]
    vehicle = record["vehicle"]
    plate = str(vehicle["plate"])
    carrier_country = str(carrier["country"])
    now = clock.utcnow()
    until = datetime.combine(movement.limit_date, time(0), tzinfo=UTC)
    cleared: list[Permit] = []
    for need in rules_of(node).needs(carrier_country=carrier_country, route=list(movement.countries)):
        if not need.required:
            continue
        candidates = (
            await session.scalars(
                select(Permit)
                .where(
                    Permit.issuer == need.country,
                    Permit.holder == carrier_country,
                    Permit.type == need.type,
                    Permit.carrier_id == str(carrier["id"]),
                )
                .order_by(Permit.expires_at)
            )
        ).all()
        problems: list[str] = []
        chosen = None
        for permit in candidates:
            status = effective_status(permit, now)
            if permit.plate != plate:
                problems.append(f"{permit.id} is for truck {permit.plate}, not {plate}")
            elif status != "active":
                problems.append(f"{permit.id} is {status}")
            elif permit.valid_from > now:
                problems.append(f"{permit.id} is valid only from {clock.isoformat(permit.valid_from)}")
            elif permit.expires_at <= until:
                problems.append(
                    f"{permit.id} expires at {clock.isoformat(permit.expires_at)}, before the limit date "
                    f"{movement.limit_date}"
                )
            else:
                chosen = permit
                break
        if chosen is not None:
            cleared.append(chosen)
            continue
        wanted = (
            f"a {need.type} permit of {need.country} for carrier {carrier['id']} ({carrier_country}) and truck {plate}"
        )
        detail = f"{wanted}: " + ("; ".join(problems) if problems else f"none is known at {node.id}")
        missing.append(Missing("permit", need.type, need.country, detail))
    return cleared
