"""Handlers of the `document.*` messages: copies of other countries' certificates, their withdrawal, and the
acknowledgements of the certificates this node issued.

Only a certificate's issuer speaks for it: a copy is created and changed only by messages its issuer signed, and an
acknowledgement counts only from a country the certificate was sent to. A refusal is a signed `rejected` receipt
(`Rejection`): 12 unknown certificate type, 15 not allowed, 26 duplicate number, 90 unknown document.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, get_args

from transit_window import clock
from transit_window.documents import service
from transit_window.documents.messages import DocumentAcknowledgedBody, DocumentIssuedBody, DocumentWithdrawnBody
from transit_window.documents.models import Document, DocumentShare
from transit_window.documents.schemas import DocumentType
from transit_window.protocol.registry import MessageTypes, Rejection

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.protocol.envelope import VerifiedEnvelope
    from transit_window.protocol.node import Node

TYPES = get_args(DocumentType)

MESSAGES = MessageTypes()  # registered by transit_window.catalogue


@MESSAGES.message_type(
    "document.issued",
    body=DocumentIssuedBody,
    summary="A certificate, from its issuing country to a country of the movements that carry the goods.",
)
async def on_issued(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    body = envelope.body
    assert isinstance(body, DocumentIssuedBody)
    issuer = envelope.payload.iss
    if issuer != body.country:
        raise Rejection("15", f"certificate {body.number} was issued by {body.country}; {issuer} may not send it")
    known = await session.get(Document, body.id)
    if known is not None:
        if known.country != body.country or known.number != body.number:
            raise Rejection("26", f"document id {body.id} is already {known.country} {known.type} {known.number}")
        if known.pdf_sha256 is None and body.pdf_sha256 is not None:  # the issuer attached the PDF after issuing
            known.pdf_sha256 = body.pdf_sha256
            known.updated_at = clock.utcnow()
            await session.flush()
        return
    if body.type not in TYPES:
        raise Rejection("12", f"{body.type!r} is not a certificate type ({', '.join(TYPES)})")
    clash = await service.find(session, country=body.country, type=body.type, number=body.number)
    if clash is not None:
        raise Rejection("26", f"{body.country} {body.type} certificate {body.number} is already held as {clash.id}")
    now = clock.utcnow()
    session.add(
        Document(
            id=body.id,
            country=body.country,
            type=body.type,
            number=body.number,
            status="issued",
            goods=body.goods,
            consignor=body.consignor,
            consignee=body.consignee,
            destination_country=body.destination_country,
            issued_at=body.issued_at,
            pdf_sha256=body.pdf_sha256,
            replaces=body.replaces,
            replaced_by=None,
            withdrawn_at=None,
            withdraw_reason=None,
            received_from=issuer,
            client_id=None,
            created_at=now,
            updated_at=now,
        )
    )
    session.add(DocumentShare(document_id=body.id, country=node.id, shared_at=now, acknowledged_at=None))
    if body.replaces is not None:
        old = await session.get(Document, body.replaces)
        if old is not None and old.country == issuer and old.status == "issued":
            reason = f"replaced by {body.number}"
            _end(old, status="replaced", reason=reason, at=envelope.payload.iat, replaced_by=body.id)
    await session.flush()


@MESSAGES.message_type(
    "document.withdrawn",
    body=DocumentWithdrawnBody,
    summary="The issuing country withdrew a certificate, or replaced it by another.",
)
async def on_withdrawn(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    body = envelope.body
    assert isinstance(body, DocumentWithdrawnBody)
    document = await session.get(Document, body.document_id)
    if document is None:
        raise Rejection("90", f"no document {body.document_id} at {node.id}")
    if document.country != envelope.payload.iss:
        raise Rejection("15", f"{document.number} was issued by {document.country}; only it can withdraw it")
    if document.status != "issued":
        return  # told before (a redelivery, or the replacement arrived first)
    status = "replaced" if body.replaced_by else "withdrawn"
    _end(document, status=status, reason=body.reason, at=envelope.payload.iat, replaced_by=body.replaced_by)
    await session.flush()


@MESSAGES.message_type(
    "document.acknowledged",
    body=DocumentAcknowledgedBody,
    summary="A country the certificate was sent to acknowledges it (importing authority's receipt).",
)
async def on_acknowledged(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    body = envelope.body
    assert isinstance(body, DocumentAcknowledgedBody)
    sender = envelope.payload.iss
    document = await session.get(Document, body.document_id)
    if document is None:
        raise Rejection("90", f"no document {body.document_id} at {node.id}")
    if document.received_from is not None:
        raise Rejection("15", f"{document.number} was issued by {document.country}, not {node.id}")
    receipt = await session.get(DocumentShare, (document.id, sender))
    if receipt is None:
        raise Rejection("15", f"{document.number} was not sent to {sender}")
    if receipt.acknowledged_at is None:
        receipt.acknowledged_at = body.at
        document.updated_at = clock.utcnow()
        await session.flush()


def _end(document: Document, *, status: str, reason: str, at: datetime, replaced_by: str | None) -> None:
    """A copy stops being valid when its issuer says so, at the time the issuer signed that."""
    document.status = status
    document.replaced_by = replaced_by
    document.withdrawn_at = at
    document.withdraw_reason = reason[:512]
    document.updated_at = clock.utcnow()
