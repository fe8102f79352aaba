"""The tracking API for freight forwarders (role `forwarder`, scoped by party id) and customs, and the public
tracking view behind a tracking code."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy import Select, false, select

from transit_window import clock
from transit_window.api.deps import SECRET_BEARING, NodeDep, Principal, SessionDep, require
from transit_window.api.pagination import decode_cursor, encode_cursor
from transit_window.api.problems import responses
from transit_window.codes.of_node import offices_of
from transit_window.dates import CorridorDatetime
from transit_window.declarations.interface import Movement
from transit_window.errors import Forbidden, NotFound
from transit_window.protocol.node import Node
from transit_window.text import Printable
from transit_window.tracking import access, codes, timeline
from transit_window.tracking.models import ConsignmentParty, TrackingEvent
from transit_window.tracking.public import public_view
from transit_window.tracking.schemas import (
    Consignment,
    ConsignmentPage,
    EventPage,
    GrantIn,
    GrantOut,
    PublicTrack,
    Timeline,
    TrackingCodeOut,
)

router = APIRouter(tags=["tracking"])
Reader = Annotated[Principal, Depends(require("forwarder", "customs"))]
Forwarder = Annotated[Principal, Depends(require("forwarder"))]
MRN_PATTERN = r"^[0-9]{2}[A-Z]{2}[A-Z0-9]{12}[JKL][0-9]$"
# Printable: PostgreSQL refuses a NUL in a text parameter outright, a 500 before (tests/fuzz/test_contract.py).
MrnPath = Annotated[str, Printable]


async def _consignment(session: SessionDep, node: Node, principal: Principal, movement: Movement) -> Consignment:
    return (await _consignments(session, node, principal, [movement]))[0]


async def _consignments(
    session: SessionDep, node: Node, principal: Principal, movements: list[Movement]
) -> list[Consignment]:
    """A page of consignments: the latest events, their verification and the tracking codes in a few queries for
    the whole page, not several per consignment."""
    offices = offices_of(node)
    mrns = [movement.mrn for movement in movements]
    latest = await timeline.last_events(session, mrns)
    events = [latest[mrn] for mrn in mrns if mrn in latest]
    rendered = await timeline.render(session, events, node_id=node.id, offices=offices) if events else []
    shown = {event.mrn: out for event, out in zip(events, rendered, strict=True)}
    shows_codes = principal.role in ("forwarder", "customs")
    active = await codes.active_codes(session, mrns=mrns) if shows_codes and mrns else {}
    return [
        Consignment(
            mrn=movement.mrn,
            status=movement.status,
            countries=movement.countries,
            itinerary=[timeline.place(office, office[:2], offices) for office in movement.offices],
            last_event=shown.get(movement.mrn),
            tracking_code=active.get(movement.mrn),
        )
        for movement in movements
    ]


def _followed_by(forwarder: Principal) -> Select[str]:
    """The consignments a forwarder follows: none without a party id. (A NUL sentinel for "no party" was a 500 on
    PostgreSQL, which refuses NUL in text parameters: found by tests/fuzz.)"""
    if not forwarder.party_id:
        return select(ConsignmentParty.mrn).where(false())
    return select(ConsignmentParty.mrn).where(ConsignmentParty.party_id == forwarder.party_id)


@router.get(
    "/v1/consignments",
    dependencies=SECRET_BEARING,
    operation_id="consignments_list",
    summary="The consignments this client may follow (a forwarder: where its party id is a party or delegate)",
    response_model=ConsignmentPage,
    responses=responses(401, 403, 422),
)
async def list_consignments(
    principal: Reader,
    node: NodeDep,
    session: SessionDep,
    status: Annotated[str | None, Query(pattern=r"^[a-z_]{1,16}$")] = None,
    cursor: Annotated[str | None, Query(max_length=64), Printable] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ConsignmentPage:
    statement = select(Movement).order_by(Movement.mrn).limit(limit + 1)
    if principal.role == "forwarder":
        statement = statement.where(Movement.mrn.in_(_followed_by(principal)))
    if status:
        statement = statement.where(Movement.status == status)
    if cursor:
        statement = statement.where(Movement.mrn > decode_cursor(cursor))
    rows = list((await session.scalars(statement)).all())
    page = rows[:limit]
    return ConsignmentPage(
        items=await _consignments(session, node, principal, page),
        next=encode_cursor(page[-1].mrn) if len(rows) > limit else None,
    )


@router.get(
    "/v1/consignments/{mrn}",
    dependencies=SECRET_BEARING,
    operation_id="consignments_get",
    summary="One consignment: status, route, last event, tracking code",
    response_model=Consignment,
    responses=responses(401, 403, 404),
)
async def get_consignment(mrn: MrnPath, principal: Reader, node: NodeDep, session: SessionDep) -> Consignment:
    movement = await access.readable_movement(session, principal, mrn)
    return await _consignment(session, node, principal, movement)


@router.get(
    "/v1/consignments/{mrn}/timeline",
    operation_id="consignments_timeline",
    summary="The merged timeline: every event, ordered, with its signing country and verification status",
    response_model=Timeline,
    response_model_by_alias=True,
    responses=responses(401, 403, 404),
)
async def get_timeline(mrn: MrnPath, principal: Reader, node: NodeDep, session: SessionDep) -> Timeline:
    movement = await access.readable_movement(session, principal, mrn)
    events = await timeline.timeline(session, mrn)
    return Timeline(
        mrn=mrn,
        status=movement.status,
        events=await timeline.render(session, events, node_id=node.id, offices=offices_of(node)),
    )


@router.get(
    "/v1/events",
    operation_id="events_query",
    summary="EPCIS-style event query (GE_eventTime, LT_eventTime, EQ_bizStep, EQ_bizLocation, MATCH_mrn)",
    response_model=EventPage,
    response_model_by_alias=True,
    responses=responses(401, 403, 422),
)
async def query_events(
    principal: Reader,
    node: NodeDep,
    session: SessionDep,
    ge_event_time: Annotated[CorridorDatetime | None, Query(alias="GE_eventTime")] = None,
    lt_event_time: Annotated[CorridorDatetime | None, Query(alias="LT_eventTime")] = None,
    eq_biz_step: Annotated[str | None, Query(alias="EQ_bizStep", max_length=80), Printable] = None,
    eq_biz_location: Annotated[str | None, Query(alias="EQ_bizLocation", pattern=r"^[A-Z]{2}[A-Z0-9]{6}$")] = None,
    match_mrn: Annotated[str | None, Query(alias="MATCH_mrn", pattern=MRN_PATTERN)] = None,
    cursor: Annotated[str | None, Query(max_length=200), Printable] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> EventPage:
    statement = timeline.apply_filters(
        select(TrackingEvent),
        ge_time=ge_event_time,
        lt_time=lt_event_time,
        biz_step=eq_biz_step,
        biz_location=eq_biz_location,
        mrn=match_mrn,
        cursor=cursor,
    ).limit(limit + 1)
    if principal.role == "forwarder":
        statement = statement.where(TrackingEvent.mrn.in_(_followed_by(principal)))
    rows = list((await session.scalars(statement)).all())
    page = rows[:limit]
    return EventPage(
        items=await timeline.render(session, page, node_id=node.id, offices=offices_of(node)),
        next=timeline.encode_cursor(page[-1]) if len(rows) > limit else None,
    )


@router.post(
    "/v1/consignments/{mrn}/grants",
    operation_id="consignments_grant",
    summary="The declarant lets another party follow this consignment",
    status_code=201,
    response_model=GrantOut,
    responses=responses(401, 403, 404, 422),
)
async def grant(mrn: MrnPath, request: GrantIn, principal: Forwarder, session: SessionDep) -> GrantOut:
    movement = await access.readable_movement(session, principal, mrn)
    if principal.party_id != movement.declarant_id:
        raise Forbidden("only the declarant of this consignment may delegate access to it")
    exists = await session.get(ConsignmentParty, (mrn, request.party_id, "delegate"))
    if exists is None:
        session.add(
            ConsignmentParty(
                mrn=mrn,
                party_id=request.party_id,
                role="delegate",
                granted_by=principal.party_id,
                created_at=clock.utcnow(),
            )
        )
        await session.flush()
    return GrantOut(mrn=mrn, party_id=request.party_id)


@router.post(
    "/v1/consignments/{mrn}/tracking-code",
    dependencies=SECRET_BEARING,
    operation_id="consignments_rotate_tracking_code",
    summary="Issue a new public tracking code (the old one stops working)",
    response_model=TrackingCodeOut,
    responses=responses(401, 403, 404),
)
async def rotate_code(mrn: MrnPath, principal: Reader, node: NodeDep, session: SessionDep) -> TrackingCodeOut:
    movement = await access.readable_movement(session, principal, mrn)
    if movement.role != "departure":
        raise NotFound(f"tracking codes of {mrn} are issued by {movement.departure_country}")
    if principal.role == "forwarder" and principal.party_id != movement.declarant_id:
        raise Forbidden("only the declarant (or customs) may rotate the tracking code")
    code = await codes.issue(session, mrn=mrn)
    return TrackingCodeOut(mrn=mrn, tracking_code=code, url=f"{node.settings.public_url}/track/{code}")


@router.get(
    "/v1/track/{code}",
    operation_id="track_public",
    summary="Public view by tracking code: status, route, current place, timeline (no values, parties or names)",
    response_model=PublicTrack,
    responses=responses(404, 422),
)
async def track(
    code: Annotated[str, Path(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")],
    node: NodeDep,
    session: SessionDep,
    lang: Annotated[str, Query(pattern=r"^(en|ru)$")] = "en",
) -> PublicTrack:
    return await public_view(session, node, code, lang=lang)
