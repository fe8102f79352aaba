"""The certificates API: the issuing authority (role `permits`) issues, withdraws, replaces and attaches the PDF;
customs and permit authorities of any node read, and acknowledge what their country was sent."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from transit_window.api.deps import NodeDep, Principal, SessionDep, require
from transit_window.api.pagination import decode_cursor, encode_cursor
from transit_window.api.problems import responses
from transit_window.documents import service
from transit_window.documents.models import Document
from transit_window.documents.schemas import (
    DocumentIn,
    DocumentOut,
    DocumentPage,
    DocumentStatus,
    DocumentType,
    ShareOut,
    WithdrawIn,
)
from transit_window.errors import DomainError, PayloadTooLarge
from transit_window.text import Printable

router = APIRouter(tags=["documents"])
PermitsClient = Annotated[Principal, Depends(require("permits"))]
Reader = Annotated[Principal, Depends(require("permits", "customs"))]
DocumentId = Annotated[str, Path(min_length=1, max_length=36), Printable]  # PostgreSQL refuses a NUL: no 500
PDF = "application/pdf"
BINARY = {"type": "string", "format": "binary"}
PDF_PATH = re.compile(r"/v1/documents/[^/]+/pdf")  # its own body limit (`max_document_bytes`), see app.py


class UnsupportedMediaType(DomainError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


async def documents_out(session: SessionDep, documents: Sequence[Document]) -> list[DocumentOut]:
    ids = [document.id for document in documents]
    shares = await service.shares_of(session, ids)
    with_pdf = await service.with_pdf(session, ids)
    return [
        DocumentOut(
            id=document.id,
            country=document.country,
            type=document.type,
            number=document.number,
            status=document.status,
            goods=document.goods,
            consignor=document.consignor,
            consignee=document.consignee,
            destination_country=document.destination_country,
            issued_at=document.issued_at,
            pdf_sha256=document.pdf_sha256,
            has_pdf=document.id in with_pdf,
            replaces=document.replaces,
            replaced_by=document.replaced_by,
            withdrawn_at=document.withdrawn_at,
            withdraw_reason=document.withdraw_reason,
            received_from=document.received_from,
            shared_with=[
                ShareOut(country=share.country, shared_at=share.shared_at, acknowledged_at=share.acknowledged_at)
                for share in shares[document.id]
            ],
            created_at=document.created_at,
            updated_at=document.updated_at,
        )
        for document in documents
    ]


async def document_out(session: SessionDep, document: Document) -> DocumentOut:
    return (await documents_out(session, [document]))[0]


@router.post(
    "/v1/documents",
    operation_id="documents_issue",
    summary="Issue a certificate (phytosanitary, veterinary, origin); sent at once to the countries in share_with",
    status_code=201,
    response_model=DocumentOut,
    responses=responses(401, 403, 409, 413, 422),
)
async def issue_document(
    document: DocumentIn, client: PermitsClient, node: NodeDep, session: SessionDep, response: Response
) -> DocumentOut:
    issued = await service.issue(session, node, client=client, document=document)
    response.headers["Location"] = f"/v1/documents/{issued.id}"
    return await document_out(session, issued)


@router.get(
    "/v1/documents/{document_id}",
    operation_id="documents_get",
    summary="A certificate issued here, or the copy of one sent to this country",
    response_model=DocumentOut,
    responses=responses(401, 403, 404, 422),
)
async def get_document(document_id: DocumentId, client: Reader, session: SessionDep) -> DocumentOut:
    del client
    return await document_out(session, await service.get(session, document_id))


@router.get(
    "/v1/documents",
    operation_id="documents_list",
    summary="Certificates issued here and copies received, newest first",
    response_model=DocumentPage,
    responses=responses(401, 403, 422),
)
async def list_documents(
    client: Reader,
    session: SessionDep,
    number: Annotated[str | None, Query(max_length=35), Printable] = None,
    type: DocumentType | None = None,
    country: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$", description="The issuing country")] = None,
    status: DocumentStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=64), Printable] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DocumentPage:
    del client
    rows = await service.list_documents(
        session,
        number=number,
        type=type,
        country=country,
        status=status,
        before=decode_cursor(cursor) if cursor else None,
        limit=limit,
    )
    page = rows[:limit]
    return DocumentPage(
        items=await documents_out(session, page),
        next=encode_cursor(page[-1].id) if len(rows) > limit else None,
    )


@router.put(
    "/v1/documents/{document_id}/pdf",
    operation_id="documents_upload_pdf",
    summary="Attach the certificate's PDF (raw body, Content-Type application/pdf); must match pdf_sha256",
    response_model=DocumentOut,
    responses=responses(401, 403, 404, 409, 413, 415, 422),
    openapi_extra={"requestBody": {"required": True, "content": {PDF: {"schema": BINARY}}}},
)
async def upload_pdf(
    document_id: DocumentId, request: Request, client: PermitsClient, node: NodeDep, session: SessionDep
) -> DocumentOut:
    del client
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != PDF:
        got = media_type or "no Content-Type"
        raise UnsupportedMediaType(f"send the PDF as the raw body with Content-Type: {PDF} (got {got})")
    content = await request.body()
    if len(content) > node.settings.max_document_bytes:  # the body limit middleware normally answers first
        raise PayloadTooLarge(f"the PDF exceeds {node.settings.max_document_bytes} bytes")
    document = await service.upload_pdf(session, node, document_id=document_id, content=content)
    return await document_out(session, document)


@router.get(
    "/v1/documents/{document_id}/pdf",
    operation_id="documents_read_pdf",
    summary="The certificate's PDF, as uploaded at the issuing node",
    response_class=Response,
    responses={
        200: {
            "content": {PDF: {"schema": BINARY}},
            "description": "The PDF, served as a download (attachment, nosniff, a CSP of default-src 'none')",
            "headers": {
                name: {"schema": {"type": "string"}}
                for name in ("ETag", "Content-Disposition", "X-Content-Type-Options", "Content-Security-Policy")
            },
        },
        **responses(401, 403, 404, 422),
    },
)
async def read_pdf(document_id: DocumentId, client: Reader, session: SessionDep) -> Response:
    del client
    document, stored = await service.read_pdf(session, document_id=document_id)
    return Response(stored.content, media_type=PDF, headers=download_headers(document.number, etag=stored.sha256))


def download_headers(number: str, *, etag: str) -> dict[str, str]:
    """A stored file is a download, never a page: a browser must not sniff it into HTML (`nosniff`), must save
    rather than render it in our origin (`attachment`), and if it renders it anyway nothing in it may run or load
    (`default-src 'none'`). The filename is the certificate number, with only characters safe in any file system."""
    filename = re.sub(r"[^A-Za-z0-9.-]", "_", number) + ".pdf"
    return {
        "ETag": f'"{etag}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Content-Security-Policy": "default-src 'none'",
    }


@router.post(
    "/v1/documents/{document_id}/withdraw",
    operation_id="documents_withdraw",
    summary="Withdraw a certificate issued here; the countries that have it are told",
    response_model=DocumentOut,
    responses=responses(401, 403, 404, 409, 422),
)
async def withdraw_document(
    document_id: DocumentId, request: WithdrawIn, client: PermitsClient, node: NodeDep, session: SessionDep
) -> DocumentOut:
    del client
    document = await service.withdraw(session, node, document_id=document_id, reason=request.reason)
    return await document_out(session, document)


@router.post(
    "/v1/documents/{document_id}/replace",
    operation_id="documents_replace",
    summary="Replace a certificate issued here by a new one (new number); answers the new certificate",
    status_code=201,
    response_model=DocumentOut,
    responses=responses(401, 403, 404, 409, 413, 422),
)
async def replace_document(
    document_id: DocumentId,
    document: DocumentIn,
    client: PermitsClient,
    node: NodeDep,
    session: SessionDep,
    response: Response,
) -> DocumentOut:
    new = await service.replace(session, node, client=client, document_id=document_id, document=document)
    response.headers["Location"] = f"/v1/documents/{new.id}"
    return await document_out(session, new)


@router.post(
    "/v1/documents/{document_id}/acknowledge",
    operation_id="documents_acknowledge",
    summary="Acknowledge a certificate sent to this country; its issuer is told",
    response_model=DocumentOut,
    responses=responses(401, 403, 404, 409, 422),
)
async def acknowledge_document(
    document_id: DocumentId, client: Reader, node: NodeDep, session: SessionDep
) -> DocumentOut:
    del client
    document = await service.acknowledge(session, node, document_id=document_id)
    return await document_out(session, document)
