"""The release gate's question for certificates (`declarations.ports.ReleasePapers`): every certificate the goods
need, from the HS chapter rules (`codes/hs.json`) and the destination's rules (`codes/permit_rules.json`), declared,
present at this node, `issued` and covering the goods' HS codes. Once the release goes ahead, the certificates it
relied on are shared with the route (`service.share`), so every country sees what the goods travel under.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from transit_window.codes.of_node import hs_of, offices_of, rules_of
from transit_window.declarations.ports import Missing, MovementPapers, PapersVerdict
from transit_window.documents import service
from transit_window.documents.models import Document

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.protocol.node import Node


class CertificatesCheck:
    """`ReleasePapers` for certificates."""

    async def check(self, session: AsyncSession, node: Node, movement: MovementPapers) -> PapersVerdict:
        missing: list[Missing] = []
        cleared = await _certificates(session, node, movement, missing)

        async def share() -> None:
            for document in cleared:
                await service.share(session, node, document=document, countries=movement.countries)

        return PapersVerdict(missing=missing, on_release=share if cleared else None)


async def _certificates(
    session: AsyncSession, node: Node, movement: MovementPapers, missing: list[Missing]
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
