"""The permit API: quotas and applications for permit authorities (role `permits`), use and verification for
border posts (role `customs`), and the public signed revocation list for offline checkers."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import segno
from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from transit_window import clock
from transit_window.api.deps import SECRET_BEARING, NodeDep, Principal, SessionDep, require
from transit_window.api.pagination import decode_cursor, encode_cursor
from transit_window.api.problems import responses
from transit_window.permits import service
from transit_window.permits.models import Permit, PermitActivity, PermitAlert, PermitApplication, PermitQuota
from transit_window.permits.models import PermitRequest as RequestRow
from transit_window.permits.schemas import (
    ActivityOut,
    ApplicationIn,
    ApplicationOut,
    CarrierIn,
    PermitAlertOut,
    PermitOut,
    PermitPage,
    QuotaIn,
    QuotaList,
    QuotaOut,
    RequestOut,
    RevocationListOut,
    RevokeIn,
    UseIn,
    UseOut,
    VerifyIn,
    VerifyOut,
)
from transit_window.permits.signed import PERMIT_ID, sign_revocations
from transit_window.text import Printable

router = APIRouter(tags=["permits"])
PermitAuthority = Annotated[Principal, Depends(require("permits"))]
BorderOrAuthority = Annotated[Principal, Depends(require("customs", "permits"))]
PermitIdPath = Annotated[str, Path(pattern=PERMIT_ID, description="ISSUER-FOR-YEAR-TYPE-SEQ, e.g. UZ-KZ-2026-2-17")]


def quota_out(quota: PermitQuota) -> QuotaOut:
    return QuotaOut(
        issuer=quota.issuer,
        holder=quota.holder,
        year=quota.year,
        type=quota.type,
        quantity=quota.quantity,
        issued=quota.issued,
        remaining=max(quota.quantity - quota.issued, 0),
        version=quota.version,
        granted_at=quota.granted_at,
        updated_at=quota.updated_at,
    )


def application_out(application: PermitApplication, requests: list[RequestRow]) -> ApplicationOut:
    states = {request.status for request in requests}
    status = "pending" if "requested" in states else "partly-refused" if "refused" in states else "complete"
    return ApplicationOut(
        id=application.id,
        carrier=CarrierIn(id=application.carrier_id, name=application.carrier_name),
        carrier_country=application.carrier_country,
        plate=application.plate,
        trailer_plate=application.trailer_plate,
        route=application.route,
        valid_from=application.valid_from,
        valid_until=application.valid_until,
        trips=application.trips,
        status=status,
        requests=[
            RequestOut(
                country=request.country,
                type=request.type,
                status=request.status,
                permit_id=request.permit_id,
                reason=request.reason,
                updated_at=request.updated_at,
            )
            for request in requests
        ],
        created_at=application.created_at,
    )


def activity_out(activity: PermitActivity) -> ActivityOut:
    return ActivityOut(
        id=activity.id,
        activity=activity.activity,
        office=activity.office,
        country=activity.country,
        at=activity.at,
        plate=activity.plate,
        recorded_by=activity.recorded_by,
    )


def alert_out(alert: PermitAlert) -> PermitAlertOut:
    return PermitAlertOut(id=alert.id, kind=alert.kind, detail=alert.detail, raised_at=alert.raised_at)


def permit_out(
    permit: Permit, *, activities: list[PermitActivity] | None = None, alerts: list[PermitAlert] | None = None
) -> PermitOut:
    return PermitOut(
        id=permit.id,
        issuer=permit.issuer,
        holder=permit.holder,
        year=permit.year,
        type=permit.type,
        carrier=CarrierIn(id=permit.carrier_id, name=permit.carrier_name),
        plate=permit.plate,
        trailer_plate=permit.trailer_plate,
        route=permit.route,
        trips=permit.trips,
        entries=permit.entries,
        exits=permit.exits,
        status=service.effective_status(permit, clock.utcnow()),
        valid_from=permit.valid_from,
        expires_at=permit.expires_at,
        issued_at=permit.issued_at,
        revoked_at=permit.revoked_at,
        revoke_reason=permit.revoke_reason,
        token=permit.token,
        activities=[activity_out(activity) for activity in activities or []],
        alerts=[alert_out(alert) for alert in alerts or []],
    )


@router.post(
    "/v1/permits/quotas",
    operation_id="permits_grant_quota",
    summary="Grant (or raise) a partner country's yearly quota of this country's permits",
    response_model=QuotaOut,
    responses=responses(401, 403, 409, 422),
)
async def grant_quota(request: QuotaIn, client: PermitAuthority, node: NodeDep, session: SessionDep) -> QuotaOut:
    del client
    return quota_out(await service.grant_quota(session, node, request=request))


@router.get(
    "/v1/permits/quotas",
    operation_id="permits_list_quotas",
    summary="Quotas this country granted, and those granted to it, with what remains",
    response_model=QuotaList,
    responses=responses(401, 403),
)
async def list_quotas(client: PermitAuthority, session: SessionDep) -> QuotaList:
    del client
    return QuotaList(items=[quota_out(quota) for quota in await service.list_quotas(session)])


@router.post(
    "/v1/permits/applications",
    operation_id="permits_apply",
    summary="One application for every permit a trip needs: each country on the route answers",
    status_code=201,
    response_model=ApplicationOut,
    responses=responses(401, 403, 422),
)
async def apply(application: ApplicationIn, client: PermitAuthority, node: NodeDep, session: SessionDep) -> Any:
    row = await service.apply(session, node, client=client, application=application)
    _, requests = await service.get_application(session, row.id)
    answer = application_out(row, requests)
    return JSONResponse(
        answer.model_dump(mode="json"), status_code=201, headers={"Location": f"/v1/permits/applications/{row.id}"}
    )


@router.get(
    "/v1/permits/applications/{application_id}",
    operation_id="permits_get_application",
    summary="An application with each country's answer (issued permit id, or the reason for a refusal)",
    response_model=ApplicationOut,
    responses=responses(401, 403, 404),
)
async def get_application(
    application_id: Annotated[str, Path(max_length=36), Printable], client: PermitAuthority, session: SessionDep
) -> ApplicationOut:
    del client
    application, requests = await service.get_application(session, application_id)
    return application_out(application, requests)


@router.get(
    "/v1/permits/revocations",
    operation_id="permits_revocation_list",
    summary="This node's signed revocation list (public: offline checkers fetch it)",
    response_model=RevocationListOut,
)
async def revocation_list(node: NodeDep, session: SessionDep) -> RevocationListOut:
    revocations = await service.revocation_list(session, node)
    return RevocationListOut(
        token=sign_revocations(revocations, key=node.key),
        iss=revocations.iss,
        version=revocations.version,
        issued_at=revocations.issued_at,
        next_update=revocations.next_update,
        revoked=[entry.model_dump(mode="json") for entry in revocations.revoked],
    )


@router.post(
    "/v1/permits/verify",
    operation_id="permits_verify",
    summary="Check a permit JWS or scanned QR text: valid, revoked, expired, unknown issuer, bad signature...",
    response_model=VerifyOut,
    responses=responses(401, 403, 422),
)
async def verify(request: VerifyIn, client: BorderOrAuthority, node: NodeDep, session: SessionDep) -> VerifyOut:
    del client
    verdict = await service.verify_online(session, node, token=request.token, plate=request.plate)
    return VerifyOut(
        result=verdict.result,
        valid=verdict.valid,
        reasons=verdict.reasons,
        warnings=verdict.warnings,
        permit=verdict.claims.model_dump(mode="json", by_alias=True) if verdict.claims else None,
        kid=verdict.kid,
        revocation_list_version=verdict.revocation_list_version,
        **(dict(zip(("trips", "entries", "exits"), verdict.usage, strict=True)) if verdict.usage else {}),
    )


@router.get(
    "/v1/permits",
    dependencies=SECRET_BEARING,
    operation_id="permits_list",
    summary="Permits this node issued or keeps, newest first",
    response_model=PermitPage,
    responses=responses(401, 403, 422),
)
async def list_permits(
    client: BorderOrAuthority,
    session: SessionDep,
    carrier: Annotated[str | None, Query(max_length=35, description="The carrier's id."), Printable] = None,
    status: Literal["active", "in_use", "consumed", "revoked", "expired"] | None = None,
    issuer: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$")] = None,
    plate: Annotated[str | None, Query(max_length=20), Printable] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=128), Printable] = None,
) -> PermitPage:
    del client
    now = clock.utcnow()
    statement = select(Permit).order_by(Permit.issued_at.desc(), Permit.id.desc())
    if carrier:
        statement = statement.where(Permit.carrier_id == carrier)
    if issuer:
        statement = statement.where(Permit.issuer == issuer)
    if plate:
        statement = statement.where(Permit.plate == service.normalise_plate_query(plate))
    if status == "expired":
        statement = statement.where(Permit.status.not_in(service.FINAL), Permit.expires_at <= now)
    elif status in ("active", "in_use"):
        statement = statement.where(Permit.status == status, Permit.expires_at > now)
    elif status is not None:
        statement = statement.where(Permit.status == status)
    if cursor:
        issued_at, _, last_id = decode_cursor(cursor).partition("|")
        moment = service.parse_cursor_time(issued_at)
        statement = statement.where(
            (Permit.issued_at < moment) | ((Permit.issued_at == moment) & (Permit.id < last_id))
        )
    rows = list((await session.scalars(statement.limit(limit + 1))).all())
    page = rows[:limit]
    return PermitPage(
        items=[permit_out(permit) for permit in page],
        next=encode_cursor(f"{_cursor_time(page[-1].issued_at)}|{page[-1].id}") if len(rows) > limit else None,
    )


def _cursor_time(moment: datetime) -> str:
    """The stored precision (microseconds), not the corridor's millisecond wire format: rounded down, the cursor
    would sort before a permit issued later in the same millisecond, and the next page would skip it."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@router.get(
    "/v1/permits/{permit_id}",
    dependencies=SECRET_BEARING,
    operation_id="permits_get",
    summary="A permit with its JWS, its ENTRY/EXIT/SIGHTING record and any fraud alerts",
    response_model=PermitOut,
    responses=responses(401, 403, 404, 422),
)
async def get_permit(permit_id: PermitIdPath, client: BorderOrAuthority, session: SessionDep) -> PermitOut:
    del client
    permit = await service.get_permit(session, permit_id)
    return permit_out(
        permit,
        activities=list(await service.activities_of(session, permit_id)),
        alerts=list(await service.alerts_of(session, permit_id)),
    )


@router.get(
    "/v1/permits/{permit_id}/qr",
    operation_id="permits_qr",
    summary="The permit as a QR code whose payload is its compact JWS (SVG or PNG)",
    responses={
        200: {"content": {"image/svg+xml": {}, "image/png": {}}, "description": "The QR code"},
        **responses(401, 403, 404, 422),
    },
    response_class=Response,
)
async def permit_qr(
    permit_id: PermitIdPath,
    client: BorderOrAuthority,
    session: SessionDep,
    format: Literal["svg", "png"] = "svg",
) -> Response:
    del client
    permit = await service.get_permit(session, permit_id)
    code = segno.make(permit.token, error="m", micro=False)
    buffer = io.BytesIO()
    if format == "png":
        code.save(buffer, kind="png", scale=4, border=4)
        media = "image/png"
    else:
        code.save(buffer, kind="svg", scale=4, border=4, xmldecl=False, title=permit.id)
        media = "image/svg+xml"
    return Response(
        buffer.getvalue(),
        media_type=media,
        headers={"Content-Disposition": f'inline; filename="{permit.id}.{format}"', "Cache-Control": "no-store"},
    )


@router.post(
    "/v1/permits/{permit_id}/use",
    dependencies=SECRET_BEARING,
    operation_id="permits_use",
    summary="Record ENTRY or EXIT at the issuer's border, or a SIGHTING at another country's post",
    response_model=UseOut,
    responses=responses(401, 403, 404, 409, 422),
)
async def use_permit(
    permit_id: PermitIdPath, request: UseIn, client: BorderOrAuthority, node: NodeDep, session: SessionDep
) -> UseOut:
    del client
    permit, activity, alerts = await service.use(session, node, permit_id=permit_id, request=request)
    return UseOut(
        permit=permit_out(permit, activities=list(await service.activities_of(session, permit_id))),
        activity=activity_out(activity),
        alerts=[alert_out(alert) for alert in alerts],
    )


@router.post(
    "/v1/permits/{permit_id}/revoke",
    dependencies=SECRET_BEARING,
    operation_id="permits_revoke",
    summary="Revoke a permit this country issued; every node that keeps it is told",
    response_model=PermitOut,
    responses=responses(401, 403, 404, 409, 422),
)
async def revoke_permit(
    permit_id: PermitIdPath, request: RevokeIn, client: PermitAuthority, node: NodeDep, session: SessionDep
) -> PermitOut:
    del client
    return permit_out(await service.revoke(session, node, permit_id=permit_id, reason=request.reason))
