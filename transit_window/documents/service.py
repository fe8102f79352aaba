"""What certificate authorities do at their own node: issue, withdraw, replace, attach the PDF, share with other
countries, and (at a receiving node) acknowledge. Every change and the messages it causes share the request's
transaction; nothing here commits.

The issuing node's row is the original; other nodes hold copies (`received_from`) and never change them except on
their issuer's word (`inbound.py`). `DocumentShare` at the issuer lists the countries sent a copy and their
acknowledgements; at a receiving node its one row (country = this node) records receipt and our acknowledgement.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from transit_window import clock
from transit_window.codes.of_node import hs_of
from transit_window.db.base import table_of
from transit_window.db.dialect import dialect_of
from transit_window.documents.messages import DocumentAcknowledgedBody, DocumentIssuedBody, DocumentWithdrawnBody
from transit_window.documents.models import Document, DocumentFile, DocumentShare
from transit_window.documents.pdf import check_pdf
from transit_window.documents.schemas import DocumentIn
from transit_window.documents.validation import check_document
from transit_window.errors import Conflict, FieldError, InvalidInput, NotFound
from transit_window.ids import new_id
from transit_window.protocol import outbox

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.clients.principal import Principal
    from transit_window.protocol.node import Node

logger = logging.getLogger(__name__)


# -- reading ---------------------------------------------------------------------------------------------------


async def find(session: AsyncSession, *, country: str, type: str, number: str) -> Document | None:
    """The certificate `number` of `type` issued by `country` (the original here, or the copy this node holds)."""
    return await session.scalar(
        select(Document).where(Document.country == country, Document.type == type, Document.number == number.upper())
    )


async def get(session: AsyncSession, document_id: str, *, lock: bool = False) -> Document:
    statement = select(Document).where(Document.id == document_id)
    if lock:  # SQLite renders no FOR UPDATE: its writers run one at a time anyway
        statement = statement.with_for_update()
    document = await session.scalar(statement)
    if document is None:
        raise NotFound(f"no document {document_id} at this node")
    return document


async def list_documents(
    session: AsyncSession,
    *,
    number: str | None = None,
    type: str | None = None,
    country: str | None = None,
    status: str | None = None,
    before: str | None = None,
    limit: int = 50,
) -> list[Document]:
    """Newest first (ids are UUIDv7), at most `limit + 1` rows so the caller knows whether a next page exists."""
    statement = select(Document).order_by(Document.id.desc()).limit(limit + 1)
    if number:
        statement = statement.where(Document.number == number.upper())
    if type:
        statement = statement.where(Document.type == type)
    if country:
        statement = statement.where(Document.country == country)
    if status:
        statement = statement.where(Document.status == status)
    if before:
        statement = statement.where(Document.id < before)
    return list((await session.scalars(statement)).all())


async def shares_of(session: AsyncSession, document_ids: Sequence[str]) -> dict[str, list[DocumentShare]]:
    found: dict[str, list[DocumentShare]] = {document_id: [] for document_id in document_ids}
    if document_ids:
        statement = (
            select(DocumentShare)
            .where(DocumentShare.document_id.in_(document_ids))
            .order_by(DocumentShare.document_id, DocumentShare.country)
        )
        for share_row in (await session.scalars(statement)).all():
            found[share_row.document_id].append(share_row)
    return found


async def with_pdf(session: AsyncSession, document_ids: Sequence[str]) -> set[str]:
    """Which of the documents have their PDF here (without loading the files)."""
    if not document_ids:
        return set()
    rows = await session.scalars(select(DocumentFile.document_id).where(DocumentFile.document_id.in_(document_ids)))
    return set(rows.all())


async def read_pdf(session: AsyncSession, *, document_id: str) -> tuple[Document, DocumentFile]:
    document = await get(session, document_id)
    stored = await session.get(DocumentFile, document_id)
    if stored is None:
        if document.received_from is not None:
            raise NotFound(
                f"the PDF of {document.number} is kept by its issuer {document.country}; "
                f"its SHA-256 is {document.pdf_sha256 or 'not declared'}"
            )
        raise NotFound(f"no PDF has been uploaded for {document.number}")
    return document, stored


# -- issuing ---------------------------------------------------------------------------------------------------


def _check(node: Node, document: DocumentIn) -> None:
    errors = check_document(
        document,
        node_country=node.id,
        members=node.trust.nodes(),
        hs=hs_of(node),
        now=clock.utcnow(),
        skew_seconds=node.settings.clock_skew_seconds,
    )
    if errors:
        count = len(errors)
        raise InvalidInput(
            f"the certificate has {count} error{'s' if count > 1 else ''}: {errors[0].detail}", errors=errors
        )


async def issue(session: AsyncSession, node: Node, *, client: Principal, document: DocumentIn) -> Document:
    """Record a certificate issued by this country and send it to the countries named in `share_with`."""
    row = await _create(session, node, client=client, document=document, replaces=None)
    await share(session, node, document=row, countries=document.share_with)
    return row


async def _create(
    session: AsyncSession, node: Node, *, client: Principal, document: DocumentIn, replaces: str | None
) -> Document:
    _check(node, document)
    if await find(session, country=node.id, type=document.type, number=document.number) is not None:
        raise Conflict(f"{node.id} has already issued {document.type} certificate {document.number}")
    now = clock.utcnow()
    row = Document(
        id=new_id(),
        country=node.id,
        type=document.type,
        number=document.number,
        status="issued",
        goods=[item.model_dump(mode="json") for item in document.goods],
        consignor=document.consignor.model_dump(mode="json"),
        consignee=document.consignee.model_dump(mode="json"),
        destination_country=document.destination_country,
        issued_at=document.issued_at,
        pdf_sha256=document.pdf_sha256,
        replaces=replaces,
        replaced_by=None,
        withdrawn_at=None,
        withdraw_reason=None,
        received_from=None,
        client_id=client.client_id,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:  # the same number issued by a concurrent request
        raise Conflict(f"{node.id} has already issued {document.type} certificate {document.number}") from exc
    return row


def issued_body(document: Document) -> DocumentIssuedBody:
    return DocumentIssuedBody(
        id=document.id,
        country=document.country,
        type=document.type,
        number=document.number,
        goods=document.goods,
        consignor=document.consignor,
        consignee=document.consignee,
        destination_country=document.destination_country,
        issued_at=document.issued_at,
        pdf_sha256=document.pdf_sha256,
        replaces=document.replaces,
    )


def withdrawn_body(document: Document) -> DocumentWithdrawnBody:
    return DocumentWithdrawnBody(
        document_id=document.id, reason=document.withdraw_reason or document.status, replaced_by=document.replaced_by
    )


async def share(session: AsyncSession, node: Node, *, document: Document, countries: Iterable[str]) -> None:
    """Send `document.issued` to each of `countries` that has not had it yet (not this node, not a country outside
    the trust list) and record the shares. A certificate no longer valid is followed by its `document.withdrawn`.

    Only the issuer shares: a copy held here is left alone (the receiving countries would refuse it from us)."""
    if document.received_from is not None:
        return
    members = []
    for country in dict.fromkeys(countries):
        if country == node.id:
            continue
        if not node.trust.member(country):
            logger.warning(
                "certificate %s not sent to %s: not in the trust list",
                document.number,
                country,
                extra={"node": node.id, "document_id": document.id},
            )
            continue
        members.append(country)
    if not members:
        return
    shares = table_of(DocumentShare)
    now = clock.utcnow()
    rows = [{"document_id": document.id, "country": c, "shared_at": now, "acknowledged_at": None} for c in members]
    inserted = await session.scalars(  # one statement; the countries shared before are not returned
        dialect_of(session)
        .insert_ignore(shares, index_elements=["document_id", "country"])
        .values(rows)
        .returning(shares.c.country)
    )
    first_time = set(inserted)
    for country in (country for country in members if country in first_time):
        outbox.enqueue(
            session, to=country, message_type="document.issued", body=issued_body(document), subject=document.id
        )
        if document.status != "issued":
            outbox.enqueue(
                session,
                to=country,
                message_type="document.withdrawn",
                body=withdrawn_body(document),
                subject=document.id,
            )


async def _shared_countries(session: AsyncSession, document_id: str) -> list[str]:
    rows = await session.scalars(
        select(DocumentShare.country).where(DocumentShare.document_id == document_id).order_by(DocumentShare.country)
    )
    return list(rows.all())


def _require_issuer(document: Document, action: str) -> None:
    if document.received_from is not None:
        raise Conflict(f"{document.number} was issued by {document.country}; only {document.country} can {action} it")


def _require_issued(document: Document, action: str) -> None:
    if document.status != "issued":
        raise Conflict(f"{document.number} is {document.status}; only an issued certificate can be {action}")


async def withdraw(session: AsyncSession, node: Node, *, document_id: str, reason: str) -> Document:
    """Withdraw a certificate this node issued; every country that has a copy is told."""
    document = await get(session, document_id, lock=True)
    _require_issuer(document, "withdraw")
    _require_issued(document, "withdrawn")
    now = clock.utcnow()
    document.status = "withdrawn"
    document.withdrawn_at = now
    document.withdraw_reason = reason
    document.updated_at = now
    await session.flush()
    for country in await _shared_countries(session, document.id):
        outbox.enqueue(
            session, to=country, message_type="document.withdrawn", body=withdrawn_body(document), subject=document.id
        )
    return document


async def replace(
    session: AsyncSession, node: Node, *, client: Principal, document_id: str, document: DocumentIn
) -> Document:
    """Issue `document` in place of an issued certificate (new id, new number, same type); the countries that had
    the old one get `document.withdrawn` naming the new one, then the new one. Returns the new certificate."""
    old = await get(session, document_id, lock=True)
    _require_issuer(old, "replace")
    _require_issued(old, "replaced")
    if document.type != old.type:
        raise InvalidInput(
            f"{old.number} is a {old.type} certificate; its replacement must be one too",
            errors=[FieldError("/body/type", f"expected {old.type}", "14")],
        )
    if document.number == old.number:
        raise InvalidInput(
            f"a replacement needs a new number, not {old.number}",
            errors=[FieldError("/body/number", "the number of the certificate being replaced", "14")],
        )
    new = await _create(session, node, client=client, document=document, replaces=old.id)
    now = clock.utcnow()
    old.status = "replaced"
    old.replaced_by = new.id
    old.withdrawn_at = now
    old.withdraw_reason = f"replaced by {new.number}"
    old.updated_at = now
    await session.flush()
    countries = await _shared_countries(session, old.id)
    for country in countries:
        outbox.enqueue(session, to=country, message_type="document.withdrawn", body=withdrawn_body(old), subject=old.id)
    await share(session, node, document=new, countries=[*countries, *document.share_with])
    return new


# -- at a receiving node ---------------------------------------------------------------------------------------


async def acknowledge(session: AsyncSession, node: Node, *, document_id: str) -> Document:
    """The importing or transit authority takes note of a certificate it received; its issuer is told."""
    document = await get(session, document_id, lock=True)
    if document.received_from is None:
        raise Conflict(
            f"{document.number} was issued here; it is acknowledged by the countries it was sent to, not by {node.id}"
        )
    _require_issued(document, "acknowledged")
    receipt = await session.get(DocumentShare, (document.id, node.id))
    now = clock.utcnow()
    if receipt is None:  # a copy from before receipts were recorded: record it now
        receipt = DocumentShare(document_id=document.id, country=node.id, shared_at=document.created_at)
        session.add(receipt)
    elif receipt.acknowledged_at is not None:
        raise Conflict(f"{document.number} was already acknowledged at {clock.isoformat(receipt.acknowledged_at)}")
    receipt.acknowledged_at = now
    document.updated_at = now
    await session.flush()
    outbox.enqueue(
        session,
        to=document.country,
        message_type="document.acknowledged",
        body=DocumentAcknowledgedBody(document_id=document.id, at=now),
        subject=document.id,
    )
    return document


# -- the PDF ---------------------------------------------------------------------------------------------------


async def upload_pdf(session: AsyncSession, node: Node, *, document_id: str, content: bytes) -> Document:
    """Attach the signed PDF. It must be the one whose SHA-256 was declared; when none was, the upload sets it and
    the countries that already have the certificate are sent it again with the hash. Re-sending the same bytes
    is harmless; different bytes are a conflict (a certificate has one PDF)."""
    document = await get(session, document_id, lock=True)
    _require_issuer(document, "attach a PDF to")
    digest = hashlib.sha256(content).hexdigest()
    stored = await session.scalar(select(DocumentFile.sha256).where(DocumentFile.document_id == document.id))
    if stored is not None:
        if stored != digest:
            raise Conflict(f"{document.number} already has a PDF (SHA-256 {stored}); this one is {digest}")
        return document
    # Parsing a 10 MiB file takes a while: off the event loop, so other requests are not held up behind it.
    await asyncio.to_thread(check_pdf, content, allow_active=node.settings.pdf_allow_active)
    if document.pdf_sha256 is not None and document.pdf_sha256 != digest:
        raise InvalidInput(
            f"the PDF's SHA-256 is {digest}, but the certificate declares {document.pdf_sha256}",
            errors=[FieldError("/body", f"SHA-256 {digest} differs from the declared {document.pdf_sha256}", "14")],
        )
    _require_issued(document, "given a PDF")
    now = clock.utcnow()
    session.add(
        DocumentFile(document_id=document.id, sha256=digest, size=len(content), content=content, uploaded_at=now)
    )
    newly_declared = document.pdf_sha256 is None
    document.pdf_sha256 = digest
    document.updated_at = now
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent upload won
        raise Conflict(f"{document.number} already has a PDF") from exc
    if newly_declared:
        for country in await _shared_countries(session, document.id):
            outbox.enqueue(
                session, to=country, message_type="document.issued", body=issued_body(document), subject=document.id
            )
    return document
