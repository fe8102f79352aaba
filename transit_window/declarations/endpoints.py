"""The declaration and movement API for customs systems (role `customs`), and the guarantee holder's
authorisations (its forwarder client or the customs client that registered the guarantee)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from transit_window.api.deps import SECRET_BEARING, NodeDep, Principal, SessionDep, require
from transit_window.api.pagination import decode_cursor, encode_cursor
from transit_window.api.problems import responses
from transit_window.codes import amount_text
from transit_window.declarations import guarantees, idempotency, journey, service
from transit_window.declarations.models import (
    Guarantee,
    GuaranteeAuthorisation,
    Movement,
    MovementOffice,
    MovementStatus,
    MovementStep,
)
from transit_window.declarations.ports import PORTS
from transit_window.declarations.schemas import (
    ArrivalIn,
    AuthorisationCreated,
    AuthorisationIn,
    AuthorisationOut,
    AuthorisationPage,
    CancelIn,
    ControlResultsIn,
    CrossingIn,
    DeclarationAccepted,
    DeclarationIn,
    GuaranteeIn,
    GuaranteeOut,
    MovementOut,
    MovementPage,
    StatusRequested,
    Step,
    StepAccepted,
    with_amounts_shown,
)
from transit_window.errors import FieldError, InvalidInput, NotFound
from transit_window.text import Printable

router = APIRouter(tags=["declarations"])
CustomsClient = Annotated[Principal, Depends(require("customs"))]


async def movement_out(session: SessionDep, movement: Movement) -> MovementOut:
    return (await movements_out(session, [movement]))[0]


async def movements_out(session: SessionDep, movements: list[Movement]) -> list[MovementOut]:
    """Answers for a page of movements: their journeys and tracking codes in one query each, not two per row."""
    mrns = [movement.mrn for movement in movements]
    steps = await journey.steps_by_mrn(session, mrns)
    departures = [movement.mrn for movement in movements if movement.role == "departure"]
    codes = await PORTS.codes().active_codes(session, mrns=departures) if departures else {}
    return [
        MovementOut(
            mrn=movement.mrn,
            status=movement.status,
            role=movement.role,
            departure_office=movement.departure_office,
            destination_office=movement.destination_office,
            countries=movement.countries,
            itinerary=movement.offices,
            limit_date=movement.limit_date,
            declaration=with_amounts_shown(movement.record),
            journey=[
                Step(
                    kind=step.kind,
                    office=step.office,
                    country=step.country,
                    at=step.at,
                    signed_by=step.signed_by,
                    envelope_id=step.envelope_id,
                    details=step.details,
                )
                for step in steps[movement.mrn]
            ],
            tracking_code=codes.get(movement.mrn),
            created_at=movement.created_at,
            updated_at=movement.updated_at,
        )
        for movement in movements
    ]


def _check_mrn(mrn: str) -> str:
    from transit_window.codes import validate_mrn

    reason = validate_mrn(mrn)
    if reason:
        raise InvalidInput(f"MRN {mrn!r}: {reason}", errors=[FieldError("/path/mrn", reason, "93")])
    return mrn


@router.post(
    "/v1/declarations",
    operation_id="declarations_create",
    summary="Lodge a transit declaration; answers the MRN",
    status_code=201,
    response_model=DeclarationAccepted,
    responses=responses(401, 403, 409, 413, 422),
)
async def create_declaration(
    request: Request,
    declaration: DeclarationIn,
    client: CustomsClient,
    node: NodeDep,
    session: SessionDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=100)] = None,
) -> Any:
    if idempotency_key is not None:
        stored = await idempotency.claim(
            session, client_id=client.client_id, key=idempotency_key, raw_body=await request.body()
        )
        if stored is not None:
            return JSONResponse(
                stored.response, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"}
            )
    movement = await service.declare(session, node, client=client, declaration=declaration)
    answer = DeclarationAccepted(mrn=movement.mrn, status=movement.status)
    if idempotency_key is not None:
        await idempotency.remember(
            session, client_id=client.client_id, key=idempotency_key, status_code=201, response=answer.model_dump()
        )
    return JSONResponse(answer.model_dump(), status_code=201, headers={"Location": f"/v1/declarations/{movement.mrn}"})


@router.get(
    "/v1/declarations/{mrn}",
    dependencies=SECRET_BEARING,
    operation_id="declarations_get",
    summary="A declaration lodged here (or a movement on this node's route), with its journey",
    response_model=MovementOut,
    responses=responses(401, 403, 404, 422),
)
async def get_declaration(mrn: str, client: CustomsClient, session: SessionDep) -> MovementOut:
    del client
    return await movement_out(session, await service.get_movement(session, _check_mrn(mrn)))


@router.get(
    "/v1/declarations",
    dependencies=SECRET_BEARING,
    operation_id="declarations_list",
    summary="Declarations lodged at this node, newest first",
    response_model=MovementPage,
    responses=responses(401, 403, 422),
)
async def list_declarations(
    client: CustomsClient,
    session: SessionDep,
    status: MovementStatus | None = None,
    office: Annotated[str | None, Query(pattern=r"^[A-Z]{2}[A-Z0-9]{6}$")] = None,
    cursor: Annotated[str | None, Query(max_length=64), Printable] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> MovementPage:
    del client
    statement = select(Movement).where(Movement.role == "departure").order_by(Movement.mrn.desc()).limit(limit + 1)
    if status:
        statement = statement.where(Movement.status == status)
    if office:
        statement = statement.where(Movement.departure_office == office)
    if cursor:
        statement = statement.where(Movement.mrn < decode_cursor(cursor))
    rows = list((await session.scalars(statement)).all())
    page = rows[:limit]
    return MovementPage(
        items=await movements_out(session, page),
        next=encode_cursor(page[-1].mrn) if len(rows) > limit else None,
    )


@router.post(
    "/v1/declarations/{mrn}/release",
    dependencies=SECRET_BEARING,
    operation_id="declarations_release",
    summary="Release for transit: reserve the guarantee, send the anticipated record along the route",
    response_model=MovementOut,
    responses=responses(401, 403, 404, 409, 422),
)
async def release_declaration(mrn: str, client: CustomsClient, node: NodeDep, session: SessionDep) -> MovementOut:
    del client
    movement = await service.release(session, node, mrn=_check_mrn(mrn))
    return await movement_out(session, movement)


@router.post(
    "/v1/declarations/{mrn}/cancel",
    dependencies=SECRET_BEARING,
    operation_id="declarations_cancel",
    summary="Cancel before the goods leave",
    response_model=MovementOut,
    responses=responses(401, 403, 404, 409, 422),
)
async def cancel_declaration(
    mrn: str, request: CancelIn, client: CustomsClient, node: NodeDep, session: SessionDep
) -> MovementOut:
    del client
    movement = await service.cancel(session, node, mrn=_check_mrn(mrn), reason=request.reason)
    return await movement_out(session, movement)


@router.get(
    "/v1/movements/expected",
    dependencies=SECRET_BEARING,
    operation_id="movements_expected",
    summary="Movements announced to this country's offices that have not passed them yet",
    response_model=MovementPage,
    responses=responses(401, 403, 422),
)
async def expected_movements(
    client: CustomsClient,
    node: NodeDep,
    session: SessionDep,
    office: Annotated[str, Query(pattern=r"^[A-Z]{2}[A-Z0-9]{6}$")],
    cursor: Annotated[str | None, Query(max_length=64), Printable] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> MovementPage:
    del client
    if not office.startswith(node.id):
        raise InvalidInput(f"{office} is not an office of {node.id}", errors=[FieldError("/query/office", "not ours")])
    passed = select(MovementStep.id).where(MovementStep.mrn == Movement.mrn, MovementStep.office == office).exists()
    statement = (
        select(Movement)
        .join(MovementOffice, (MovementOffice.mrn == Movement.mrn) & (MovementOffice.office == office))
        .where(Movement.role == "route", Movement.status.in_(["released", "in_transit"]), ~passed)
        .order_by(Movement.mrn)
        .limit(limit + 1)
    )
    if cursor:
        statement = statement.where(Movement.mrn > decode_cursor(cursor))
    rows = list((await session.scalars(statement)).all())
    page = rows[:limit]
    return MovementPage(
        items=await movements_out(session, page),
        next=encode_cursor(page[-1].mrn) if len(rows) > limit else None,
    )


@router.get(
    "/v1/movements/{mrn}",
    dependencies=SECRET_BEARING,
    operation_id="movements_get",
    summary="A movement this node knows, with its journey",
    response_model=MovementOut,
    responses=responses(401, 403, 404, 422),
)
async def get_movement(mrn: str, client: CustomsClient, session: SessionDep) -> MovementOut:
    del client
    return await movement_out(session, await service.get_movement(session, _check_mrn(mrn)))


@router.post(
    "/v1/movements/{mrn}/crossings",
    operation_id="movements_record_crossing",
    summary="A border post records exit or entry (kept until the record arrives if it has not yet)",
    status_code=201,
    response_model=StepAccepted,
    responses={
        202: {"model": StepAccepted, "description": "Kept until the record arrives"},
        **responses(401, 403, 404, 409, 422),
    },
)
async def record_crossing(
    mrn: str, crossing: CrossingIn, client: CustomsClient, node: NodeDep, session: SessionDep, response: Response
) -> StepAccepted:
    del client
    movement, pending = await service.record_crossing(session, node, mrn=_check_mrn(mrn), crossing=crossing)
    if pending:
        response.status_code = 202
        return StepAccepted(mrn=mrn, status="pending-record", step=crossing.direction, pending=True)
    assert movement is not None
    return StepAccepted(mrn=mrn, status=movement.status, step=crossing.direction)


@router.post(
    "/v1/movements/{mrn}/arrival",
    operation_id="movements_record_arrival",
    summary="The office of destination records arrival",
    status_code=201,
    response_model=StepAccepted,
    responses=responses(401, 403, 404, 409, 422),
)
async def record_arrival(
    mrn: str, arrival: ArrivalIn, client: CustomsClient, node: NodeDep, session: SessionDep
) -> StepAccepted:
    del client
    movement = await service.record_arrival(session, node, mrn=_check_mrn(mrn), arrival=arrival)
    return StepAccepted(mrn=mrn, status=movement.status, step="arrived")


@router.post(
    "/v1/movements/{mrn}/control-results",
    operation_id="movements_record_control_results",
    summary="The office of destination records control results; departure then writes the movement off",
    status_code=201,
    response_model=StepAccepted,
    responses=responses(401, 403, 404, 409, 422),
)
async def record_control_results(
    mrn: str, results: ControlResultsIn, client: CustomsClient, node: NodeDep, session: SessionDep
) -> StepAccepted:
    del client
    movement = await service.record_control_results(session, node, mrn=_check_mrn(mrn), results=results)
    return StepAccepted(mrn=mrn, status=movement.status, step="control-results")


@router.post(
    "/v1/movements/{mrn}/status-requests",
    operation_id="movements_request_status",
    summary="Ask every other country on the route what it holds on this movement, to reconcile",
    status_code=202,
    response_model=StatusRequested,
    responses=responses(401, 403, 404, 422),
)
async def request_status(mrn: str, client: CustomsClient, node: NodeDep, session: SessionDep) -> StatusRequested:
    del client
    asked = await service.request_status(session, node, mrn=_check_mrn(mrn))
    return StatusRequested(mrn=mrn, asked=asked)


@router.post(
    "/v1/guarantees",
    operation_id="guarantees_register",
    summary="Register a guarantee and its reference amount",
    status_code=201,
    response_model=GuaranteeOut,
    responses=responses(401, 403, 409, 422),
)
async def register_guarantee(
    request: GuaranteeIn, client: CustomsClient, node: NodeDep, session: SessionDep
) -> GuaranteeOut:
    guarantee = await service.register_guarantee(session, node, client=client, request=request)
    return _guarantee_out(guarantee)


@router.get(
    "/v1/guarantees/{grn}",
    operation_id="guarantees_get",
    summary="A guarantee: reference amount, reserved by open movements, available",
    response_model=GuaranteeOut,
    responses=responses(401, 403, 404),
)
async def get_guarantee(grn: Annotated[str, Printable], client: CustomsClient, session: SessionDep) -> GuaranteeOut:
    del client
    guarantee = await session.get(Guarantee, grn)
    if guarantee is None:
        raise NotFound(f"no guarantee {grn} registered at this node")
    return _guarantee_out(guarantee)


def _guarantee_out(guarantee: Guarantee) -> GuaranteeOut:
    return GuaranteeOut(
        grn=guarantee.grn,
        holder_id=guarantee.holder_id,
        holder_country=guarantee.holder_country,
        reference_amount=amount_text(guarantee.reference_amount, guarantee.currency),
        reserved=amount_text(guarantee.reserved, guarantee.currency),
        available=amount_text(guarantee.reference_amount - guarantee.reserved, guarantee.currency),
        currency=guarantee.currency,
    )


# -- the holder's authorisations (NCTS guarantee access codes) ---------------------------------------------------

GuaranteeManager = Annotated[Principal, Depends(require("customs", "forwarder"))]
AuthorisationId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")]


def _authorisation_out(authorisation: GuaranteeAuthorisation) -> AuthorisationOut:
    return AuthorisationOut(
        id=authorisation.id,
        grn=authorisation.grn,
        declarant_id=authorisation.declarant_id,
        declarant_country=authorisation.declarant_country,
        created_at=authorisation.created_at,
        revoked_at=authorisation.revoked_at,
    )


@router.post(
    "/v1/guarantees/{grn}/authorisations",
    operation_id="guarantees_authorise",
    summary="The holder authorises a declarant to use the guarantee; the access code is returned only here",
    status_code=201,
    response_model=AuthorisationCreated,
    responses=responses(401, 403, 404, 422),
    dependencies=SECRET_BEARING,  # the access code is in the body: Cache-Control: no-store
)
async def authorise_declarant(
    grn: Annotated[str, Printable],
    request: AuthorisationIn,
    principal: GuaranteeManager,
    session: SessionDep,
) -> AuthorisationCreated:
    guarantee = await guarantees.managed(session, principal, grn)
    authorisation, code = await guarantees.authorise(
        session,
        principal,
        guarantee,
        declarant_id=request.declarant_id,
        declarant_country=request.declarant_country or guarantee.holder_country,
    )
    return AuthorisationCreated(**_authorisation_out(authorisation).model_dump(), access_code=code)


@router.get(
    "/v1/guarantees/{grn}/authorisations",
    operation_id="guarantees_authorisations",
    summary="The declarants the holder has authorised to use the guarantee (never their access codes)",
    response_model=AuthorisationPage,
    responses=responses(401, 403, 404),
)
async def list_authorisations(
    grn: Annotated[str, Printable],
    principal: GuaranteeManager,
    session: SessionDep,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9a-f-]{36}$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AuthorisationPage:
    await guarantees.managed(session, principal, grn)
    rows = await guarantees.in_force(session, grn, after=cursor, limit=limit + 1)
    page = rows[:limit]
    return AuthorisationPage(
        items=[_authorisation_out(item) for item in page], next=page[-1].id if len(rows) > limit else None
    )


@router.delete(
    "/v1/guarantees/{grn}/authorisations/{authorisation_id}",
    operation_id="guarantees_revoke_authorisation",
    summary="Revoke an authorisation: the declarant's declarations naming the guarantee are no longer released",
    status_code=204,
    response_class=Response,
    responses=responses(401, 403, 404, 422),
)
async def revoke_authorisation(
    grn: Annotated[str, Printable],
    authorisation_id: AuthorisationId,
    principal: GuaranteeManager,
    session: SessionDep,
) -> Response:
    guarantee = await guarantees.managed(session, principal, grn)
    await guarantees.revoke(session, principal, guarantee, authorisation_id)
    return Response(status_code=204)
