"""Quotas, applications, issue, use and revocation. Every change and the messages it causes share the caller's
transaction; nothing here commits. Counters move with conditional UPDATEs (the row changes only while the rule still
holds), so concurrent requests never overdraw a quota or use a permit twice, on PostgreSQL and on SQLite alike."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update

from transit_window import clock
from transit_window.codes import InvalidCode, normalise_plate, time_zone, validate_trader_id
from transit_window.codes.geo import haversine_km
from transit_window.codes.of_node import offices_of, rules_of
from transit_window.codes.permit_rules import TYPE_CODES, QuotaKind
from transit_window.dates import within_corridor
from transit_window.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from transit_window.ids import new_id
from transit_window.permits import messages
from transit_window.permits.models import (
    Permit,
    PermitActivity,
    PermitAlert,
    PermitApplication,
    PermitQuota,
    PermitRequest,
)
from transit_window.permits.schemas import ApplicationIn, QuotaIn, UseIn
from transit_window.permits.signed import Carrier, PermitClaims, RevocationList, RevokedEntry, sign_permit
from transit_window.permits.verify import Verdict, verify_permit
from transit_window.permits.years import PermitYears, local_text, local_today, start_of
from transit_window.protocol import outbox
from transit_window.settings import NODE_IDS

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.clients.principal import Principal
    from transit_window.protocol.node import Node

FINAL = ("consumed", "revoked")


def years_of(node: Node) -> PermitYears:
    return PermitYears(rules_of(node))


def effective_status(permit: Permit, now: datetime) -> str:
    if permit.status in FINAL:
        return permit.status
    return "expired" if now >= permit.expires_at else permit.status


def _plate(value: str, pointer: str) -> str:
    try:
        return normalise_plate(value)
    except InvalidCode as exc:
        raise InvalidInput(str(exc), errors=[FieldError(pointer, str(exc), "12")]) from exc


# -- quotas ----------------------------------------------------------------------------------------------------


async def grant_quota(session: AsyncSession, node: Node, *, request: QuotaIn) -> PermitQuota:
    """Grant or change a quota. Raising is always fine; lowering stops at what is already issued (409)."""
    if request.holder == node.id:
        raise InvalidInput(
            f"{node.id} cannot grant itself a quota: a quota is for a partner country's carriers",
            errors=[FieldError("/body/holder", "the issuer itself", "14")],
        )
    if request.holder != "*" and request.holder not in NODE_IDS:
        raise InvalidInput(
            f"{request.holder} is not a corridor member ({', '.join(NODE_IDS)})",
            errors=[FieldError("/body/holder", "not a member", "12")],
        )
    if request.holder != "*" and node.trust.member(request.holder) is None:
        raise InvalidInput(
            f"{request.holder} is not connected to the corridor yet (not in trust list version {node.trust.version}): "
            "grant its quota once it is admitted",
            errors=[FieldError("/body/holder", "not in the trust list", "15")],
        )
    now = clock.utcnow()
    year = request.year or local_today(node.id, now).year  # the issuer's calendar: a quota year begins there
    kind: QuotaKind = "multilateral" if request.holder == "*" else "partner"
    closed = years_of(node).why_closed(issuer=node.id, type=request.type, year=year, quota=kind, now=now)
    if closed:
        raise InvalidInput(
            f"no {year} quota can be granted today: {closed}",
            errors=[FieldError("/body/year", closed, "14")],
        )
    key = (
        PermitQuota.issuer == node.id,
        PermitQuota.holder == request.holder,
        PermitQuota.year == year,
        PermitQuota.type == request.type,
    )
    quota = await session.scalar(select(PermitQuota).where(*key))
    if quota is None:
        quota = PermitQuota(
            issuer=node.id,
            holder=request.holder,
            year=year,
            type=request.type,
            quantity=request.quantity,
            issued=0,
            version=1,
            granted_at=now,
            updated_at=now,
        )
        session.add(quota)
        await session.flush()
    elif quota.quantity != request.quantity:
        changed = await session.execute(
            update(PermitQuota)
            .where(*key, PermitQuota.issued <= request.quantity)
            .values(quantity=request.quantity, version=PermitQuota.version + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        await session.refresh(quota)
        if changed.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(
                f"{quota.issued} {request.type} permits of {year} are already issued to {request.holder}: "
                f"the quota cannot go below that (asked {request.quantity})",
                issued=quota.issued,
            )
    for peer in _quota_audience(node, quota.holder):
        outbox.enqueue(session, to=peer, message_type="permit.quota-granted", body=_quota_body(quota))
    return quota


def _quota_audience(node: Node, holder: str) -> list[str]:
    return node.peers() if holder == "*" else [holder]


def _quota_body(quota: PermitQuota) -> messages.QuotaGrantedBody:
    return messages.QuotaGrantedBody(
        issuer=quota.issuer,
        holder=quota.holder,
        year=quota.year,
        type=quota.type,
        quantity=quota.quantity,
        issued=quota.issued,
        version=quota.version,
    )


async def list_quotas(session: AsyncSession) -> Sequence[PermitQuota]:
    statement = select(PermitQuota).order_by(
        PermitQuota.year.desc(), PermitQuota.issuer, PermitQuota.holder, PermitQuota.type
    )
    return (await session.scalars(statement.limit(1000))).all()


# -- single-window applications --------------------------------------------------------------------------------


def _check_application(node: Node, application: ApplicationIn, *, valid_from: date) -> tuple[str, str | None, date]:
    """The plate, the trailer and the last day asked for (the longest the quota year allows when none is given)."""
    errors = []
    today = local_today(node.id)
    plate = trailer = None
    try:
        plate = normalise_plate(application.plate)
    except InvalidCode as exc:
        errors.append(FieldError("/body/plate", str(exc), "12"))
    if application.trailer_plate is not None:
        try:
            trailer = normalise_plate(application.trailer_plate)
        except InvalidCode as exc:
            errors.append(FieldError("/body/trailer_plate", str(exc), "12"))
    reason = validate_trader_id(node.id, application.carrier.id)
    if reason:
        errors.append(FieldError("/body/carrier/id", reason, "12"))
    route_ok = True
    for index, country in enumerate(application.route):
        if country not in NODE_IDS:
            errors.append(FieldError(f"/body/route/{index}", f"{country} is not a corridor member", "12"))
            route_ok = False
        elif index and application.route[index - 1] == country:
            errors.append(FieldError(f"/body/route/{index}", f"{country} twice in a row", "14"))
    if len(set(application.route)) == 1:
        errors.append(FieldError("/body/route", "a route needs at least two countries", "14"))
        route_ok = False
    year = valid_from.year
    valid_until = application.valid_until or date(year, 12, 31)
    if valid_from < today:
        errors.append(
            FieldError("/body/valid_from", f"is in the past (today is {today} in {time_zone(node.id).key})", "14")
        )
    elif route_ok:
        # Each issuer on the route judges the year by its own calendar and rules; the application may ask for
        # as long as the most generous of them allows (each permit then ends where its issuer's year ends).
        years = years_of(node)
        needs = [n for n in rules_of(node).needs(carrier_country=node.id, route=list(application.route)) if n.required]
        last_day = date(year, 12, 31)
        for need in needs:
            closed = years.why_closed(issuer=need.country, type=need.type, year=year, quota=None)
            if closed:
                errors.append(FieldError("/body/valid_from", closed, "14"))
                continue
            terms = years.terms(issuer=need.country, type=need.type, year=year, quota=None)
            last_day = max(last_day, terms.last_day)
        if application.valid_until is None:
            valid_until = last_day
        elif application.valid_until > last_day:
            grace = [
                years.terms(issuer=need.country, type=need.type, year=year, quota=None).validity() for need in needs
            ]
            errors.append(
                FieldError(
                    "/body/valid_until",
                    f"a permit of quota year {year} (the year it starts in) is valid at most until {last_day}"
                    + (f" ({'; '.join(dict.fromkeys(grace))})" if grace else "")
                    + f": end it by then, or apply for {year + 1} permits separately",
                    "14",
                )
            )
    if valid_until < valid_from:
        errors.append(
            FieldError(
                "/body/valid_until",
                f"ends ({valid_until}) before it starts ({valid_from})",
                "14",
            )
        )
    if errors:
        count = len(errors)
        raise InvalidInput(
            f"the application has {count} error{'s' if count > 1 else ''}: {errors[0].detail}", errors=errors
        )
    assert plate is not None
    return plate, trailer, valid_until


async def apply(
    session: AsyncSession, node: Node, *, client: Principal, application: ApplicationIn
) -> PermitApplication:
    """Record the application and ask each country on the route that wants a permit of this node's carriers."""
    valid_from = application.valid_from or local_today(node.id)  # the carrier's today: this node is its country's
    plate, trailer, valid_until = _check_application(node, application, valid_from=valid_from)
    now = clock.utcnow()
    row = PermitApplication(
        id=new_id(),
        carrier_id=application.carrier.id,
        carrier_name=application.carrier.name,
        carrier_country=node.id,
        plate=plate,
        trailer_plate=trailer,
        route=list(application.route),
        valid_from=valid_from,
        valid_until=valid_until,
        trips=application.trips,
        client_id=client.client_id,
        created_at=now,
    )
    session.add(row)
    for need in rules_of(node).needs(carrier_country=node.id, route=list(application.route)):
        member = node.trust.member(need.country) is not None
        if not need.required:
            status, reason = "not-required", need.reason
        elif not member:
            status, reason = "refused", f"{need.country} is not connected to the corridor yet: apply there directly"
        else:
            status, reason = "requested", None
        session.add(
            PermitRequest(
                application_id=row.id,
                country=need.country,
                type=need.type,
                status=status,
                permit_id=None,
                reason=reason,
                details={},
                updated_at=now,
            )
        )
        if status == "requested":
            outbox.enqueue(
                session,
                to=need.country,
                message_type="permit.requested",
                subject=row.id,
                body=messages.RequestedBody(
                    application_id=row.id,
                    type=need.type,
                    carrier=Carrier(id=row.carrier_id, name=row.carrier_name),
                    carrier_country=node.id,
                    plate=plate,
                    trailer_plate=trailer,
                    route=row.route,
                    valid_from=row.valid_from,
                    valid_until=row.valid_until,
                    trips=row.trips,
                ),
            )
    await session.flush()
    return row


async def get_application(session: AsyncSession, application_id: str) -> tuple[PermitApplication, list[PermitRequest]]:
    row = await session.get(PermitApplication, application_id)
    if row is None:
        raise NotFound(f"no permit application {application_id} at this node")
    requests = (
        await session.scalars(select(PermitRequest).where(PermitRequest.application_id == application_id))
    ).all()
    order = {country: index for index, country in enumerate(row.route)}
    return row, sorted(requests, key=lambda request: order.get(request.country, 99))


# -- issuing (at the issuer, on `permit.requested`) ------------------------------------------------------------


async def issue_requested(
    session: AsyncSession, node: Node, *, request: messages.RequestedBody
) -> Permit | messages.RefusedBody:
    """Issue within quota, or say why not. Atomic: the quota row only moves while a permit is left."""

    def refuse(code: str, reason: str) -> messages.RefusedBody:
        return messages.RefusedBody(
            application_id=request.application_id,
            type=request.type,
            reason=reason,
            code=code,
        )

    wanted = next(
        (
            need
            for need in rules_of(node).needs(carrier_country=request.carrier_country, route=request.route)
            if need.country == node.id
        ),
        None,
    )
    if wanted is None or not wanted.required:
        return refuse("not-required", wanted.reason if wanted else f"{node.id} is not on the route")
    if wanted.type != request.type:
        return refuse("invalid", f"this trip needs a {wanted.type} permit of {node.id}, not {request.type}")
    year = request.valid_from.year
    now = clock.utcnow()
    years = years_of(node)
    if year > local_today(node.id, now).year:
        closed = years.why_closed(issuer=node.id, type=request.type, year=year, quota=None, now=now)
        if closed:
            return refuse("year-closed", closed)
    # Which quotas may pay for it: the partner's, then the multilateral one, each only if a permit of that kind
    # would not already be over (its year's end comes with the kind: no grace for multilateral permits).
    ends: dict[str, date] = {}
    kinds: tuple[tuple[str, QuotaKind], ...] = ((request.carrier_country, "partner"), ("*", "multilateral"))
    for holder, kind in kinds:
        terms = years.terms(issuer=node.id, type=request.type, year=year, quota=kind)
        last_day = min(request.valid_until, terms.last_day)
        if start_of(node.id, last_day + timedelta(days=1)) > now:
            ends[holder] = last_day
    if not ends:
        terms = years.terms(issuer=node.id, type=request.type, year=year, quota=None)
        return refuse(
            "year-closed",
            f"a permit from {request.valid_from} to {request.valid_until} would already be over: {terms.validity()}",
        )
    for holder in ends:
        key = (
            PermitQuota.issuer == node.id,
            PermitQuota.holder == holder,
            PermitQuota.year == year,
            PermitQuota.type == request.type,
        )
        result = await session.execute(
            update(PermitQuota)
            .where(*key, PermitQuota.issued < PermitQuota.quantity)
            .values(issued=PermitQuota.issued + 1, updated_at=now)
            .returning(PermitQuota.issued, PermitQuota.quantity)
            .execution_options(synchronize_session=False)
        )
        taken = result.one_or_none()
        if taken is not None:
            break
    else:
        quotas = (
            await session.scalars(
                select(PermitQuota).where(
                    PermitQuota.issuer == node.id,
                    PermitQuota.holder.in_(list(ends)),
                    PermitQuota.year == year,
                    PermitQuota.type == request.type,
                )
            )
        ).all()
        if not quotas:
            return refuse(
                "no-quota", f"{node.id} has granted {request.carrier_country} no {request.type} permit quota for {year}"
            )
        total = sum(quota.quantity for quota in quotas)
        return refuse(
            "quota-exhausted",
            f"all {total} {request.type} permits of {node.id} for {year} available to {request.carrier_country} "
            "carriers are issued",
        )
    seq, quantity = int(taken[0]), int(taken[1])
    multilateral = "M" if holder == "*" else ""
    permit_id = f"{node.id}-{request.carrier_country}-{year}-{TYPE_CODES[request.type]}-{multilateral}{seq}"
    claims = PermitClaims(
        id=permit_id,
        type=request.type,
        year=year,
        iss=node.id,
        for_=request.carrier_country,
        carrier=request.carrier,
        plate=request.plate,
        trailer=request.trailer_plate,
        trips=request.trips,
        route=request.route,
        # valid_from is the carrier's calendar day: the permit starts with that day there or here, whichever comes
        # first, so a carrier in a zone ahead of the issuer's can use it from its own "today"
        nbf=min(start_of(node.id, request.valid_from), start_of(request.carrier_country, request.valid_from)),
        iat=now,
        exp=start_of(node.id, ends[holder] + timedelta(days=1)),
    )
    permit = _permit_row(claims, token=sign_permit(claims, key=node.key), application_id=request.application_id)
    session.add(permit)
    await session.flush()
    issued = messages.IssuedBody(
        application_id=request.application_id, token=permit.token, quota_issued=seq, quota_quantity=quantity
    )
    outbox.enqueue(session, to=request.carrier_country, message_type="permit.issued", subject=permit_id, body=issued)
    for country in _holders(permit, node):
        if country != request.carrier_country:
            outbox.enqueue(
                session,
                to=country,
                message_type="permit.issued",
                subject=permit_id,
                body=messages.IssuedBody(token=permit.token),
            )
    return permit


def _permit_row(claims: PermitClaims, *, token: str, application_id: str | None) -> Permit:
    return Permit(
        id=claims.id,
        issuer=claims.iss,
        holder=claims.for_,
        year=claims.year,
        type=claims.type,
        carrier_id=claims.carrier.id,
        carrier_name=claims.carrier.name,
        plate=claims.plate,
        trailer_plate=claims.trailer,
        route=list(claims.route),
        trips=claims.trips,
        valid_from=claims.nbf,
        expires_at=claims.exp,
        issued_at=claims.iat,
        token=token,
        status="active",
        entries=0,
        exits=0,
        application_id=application_id,
        revoked_at=None,
        revoke_reason=None,
        updated_at=clock.utcnow(),
    )


def _holders(permit: Permit, node: Node) -> list[str]:
    """Every node that keeps a copy: the carrier's country and the other countries of the route that are members
    (a country that joins later checks permits from the trust list and revocation lists alone)."""
    return [
        country
        for country in dict.fromkeys([permit.holder, *permit.route])
        if country != node.id and node.trust.member(country) is not None
    ]


async def store_copy(
    session: AsyncSession, node: Node, *, claims: PermitClaims, token: str, application_id: str | None
) -> Permit:
    existing = await session.get(Permit, claims.id)
    if existing is not None:
        return existing
    permit = _permit_row(claims, token=token, application_id=application_id)
    session.add(permit)
    await session.flush()
    return permit


# -- reading ---------------------------------------------------------------------------------------------------


async def get_permit(session: AsyncSession, permit_id: str, *, lock: bool = False) -> Permit:
    """`lock`: hold the row until commit and read it afresh, so whatever this transaction decides from the permit
    and its activities is not undone by a concurrent one (PostgreSQL; SQLite has one writer at a time)."""
    statement = select(Permit).where(Permit.id == permit_id)
    if lock:
        statement = statement.execution_options(populate_existing=True)
        statement = statement.with_for_update()  # rendered on PostgreSQL only: SQLite has one writer at a time
    permit = await session.scalar(statement)
    if permit is None:
        raise NotFound(f"no permit {permit_id} at this node")
    return permit


async def activities_of(session: AsyncSession, permit_id: str) -> Sequence[PermitActivity]:
    return (
        await session.scalars(
            select(PermitActivity).where(PermitActivity.permit_id == permit_id).order_by(PermitActivity.at)
        )
    ).all()


async def alerts_of(session: AsyncSession, permit_id: str) -> Sequence[PermitAlert]:
    return (
        await session.scalars(
            select(PermitAlert).where(PermitAlert.permit_id == permit_id).order_by(PermitAlert.raised_at)
        )
    ).all()


# -- use at the border -----------------------------------------------------------------------------------------


async def use(
    session: AsyncSession, node: Node, *, permit_id: str, request: UseIn
) -> tuple[Permit, PermitActivity, list[PermitAlert]]:
    office = offices_of(node).get(request.office)
    if office is None:
        raise InvalidInput(
            f"no customs office {request.office!r} in the corridor directory",
            errors=[FieldError("/body/office", "unknown office", "12")],
        )
    if office.country != node.id:
        raise Forbidden(
            f"{request.office} is an office of {office.country}; border posts at this node record at {node.id} offices",
            errors=[FieldError("/body/office", f"not an office of {node.id}", "15").as_dict()],
        )
    plate = _plate(request.plate, "/body/plate")
    now = clock.utcnow()
    at = request.at or now
    if at > now + timedelta(seconds=node.settings.clock_skew_seconds):
        raise InvalidInput(
            f"{clock.isoformat(at)} is in the future", errors=[FieldError("/body/at", "in the future", "14")]
        )
    permit = await get_permit(session, permit_id, lock=True)  # a concurrent copy's activity is seen, or waits
    if request.token is not None:
        verdict = verify_permit(request.token, trust=node.trust, revocations={}, now=now)
        if verdict.claims is None or verdict.result in ("bad-signature", "unknown-issuer", "untrusted-key"):
            raise InvalidInput(
                f"the scanned permit is not authentic: {'; '.join(verdict.reasons)}",
                errors=[FieldError("/body/token", verdict.result, "15")],
                result=verdict.result,
            )
        if verdict.claims.id != permit.id:
            raise InvalidInput(
                f"the scanned permit is {verdict.claims.id}, not {permit.id}",
                errors=[FieldError("/body/token", "another permit", "14")],
            )
    if node.id == permit.issuer and request.activity == "SIGHTING":
        raise InvalidInput(
            f"at the border of {node.id}, the issuer, record ENTRY or EXIT",
            errors=[FieldError("/body/activity", "ENTRY or EXIT here", "14")],
        )
    if node.id != permit.issuer and request.activity != "SIGHTING":
        raise Forbidden(
            f"ENTRY and EXIT of {permit.id} are recorded at the border of {permit.issuer}, its issuer; "
            f"posts of {node.id} record a SIGHTING",
            errors=[FieldError("/body/activity", "SIGHTING at this node", "15").as_dict()],
        )
    if request.activity != "SIGHTING" and office.role == "inland":
        raise InvalidInput(
            f"{office.code} ({office.name}) is an inland office, not a border post or port",
            errors=[FieldError("/body/office", "not a border post", "14")],
        )
    if plate not in (permit.plate, permit.trailer_plate):
        raise InvalidInput(
            f"{permit.id} is for truck {permit.plate}"
            + (f" and trailer {permit.trailer_plate}" if permit.trailer_plate else "")
            + f", not {plate}",
            errors=[FieldError("/body/plate", "not the permit's vehicle", "14")],
        )
    status = effective_status(permit, at)
    if status in ("revoked", "expired", "consumed"):
        raise Conflict(_why_not_usable(permit, status, at, years=years_of(node)), permit_status=status)
    if at < permit.valid_from:
        raise Conflict(f"{permit.id} is valid only from {clock.isoformat(permit.valid_from)}", permit_status=status)
    if request.activity == "ENTRY":
        await _count(session, permit, entry=True, years=years_of(node))
    elif request.activity == "EXIT":
        await _count(session, permit, entry=False, years=years_of(node))
    activity = PermitActivity(
        id=new_id(),
        permit_id=permit.id,
        activity=request.activity,
        office=office.code,
        country=node.id,
        at=at,
        plate=plate,
        recorded_by=node.id,
        recorded_at=now,
    )
    session.add(activity)
    await session.flush()
    alerts = await check_travel(session, node, activity)
    body = messages.UsedBody(
        permit_id=permit.id,
        activity_id=activity.id,
        activity=activity.activity,
        office=activity.office,
        country=activity.country,
        at=activity.at,
        plate=activity.plate,
    )
    # The issuer and every node keeping a copy (the holder, the route's countries): a route country asked to verify
    # the permit would otherwise call a used-up permit valid, its copy never hearing of the ENTRY and EXIT.
    for country in dict.fromkeys([permit.issuer, *_holders(permit, node)]):
        if country != node.id:
            outbox.enqueue(session, to=country, message_type="permit.used", subject=permit.id, body=body)
    await session.refresh(permit)
    return permit, activity, alerts


def _why_not_usable(permit: Permit, status: str, at: datetime, *, years: PermitYears) -> str:
    if status == "revoked":
        assert permit.revoked_at is not None
        when = clock.isoformat(permit.revoked_at)
        return f"{permit.id} was revoked by {permit.issuer} at {when}: {permit.revoke_reason}"
    if status == "expired":
        kind: QuotaKind = "multilateral" if permit.id.rsplit("-", 1)[-1].startswith("M") else "partner"
        terms = years.terms(issuer=permit.issuer, type=permit.type, year=permit.year, quota=kind)
        why = terms.validity() if permit.expires_at >= terms.ends_at else "the last day it was issued for"
        return (
            f"{permit.id} expired at {clock.isoformat(permit.expires_at)}, "
            f"{local_text(permit.issuer, permit.expires_at)} ({why}); checked for {clock.isoformat(at)}"
        )
    return f"{permit.id} is used up: {permit.entries} of {permit.trips} trips entered and exited"


async def _count(session: AsyncSession, permit: Permit, *, entry: bool, years: PermitYears) -> None:
    """One ENTRY opens a trip, one EXIT closes it. The UPDATE holds only while the rule does, so two posts racing
    to enter the same permit get one success between them."""
    now = clock.utcnow()
    if entry:
        statement = (
            update(Permit)
            .where(
                Permit.id == permit.id,
                Permit.status == "active",
                Permit.entries == Permit.exits,
                Permit.entries < Permit.trips,
            )
            .values(entries=Permit.entries + 1, status="in_use", updated_at=now)
        )
    else:
        statement = (
            update(Permit)
            .where(Permit.id == permit.id, Permit.status == "in_use", Permit.entries == Permit.exits + 1)
            .values(exits=Permit.exits + 1, status="active", updated_at=now)
        )
    result = await session.execute(statement.execution_options(synchronize_session=False))
    if result.rowcount == 1:  # type: ignore[attr-defined]
        if not entry:
            await session.execute(
                update(Permit)
                .where(Permit.id == permit.id, Permit.exits >= Permit.trips)
                .values(status="consumed")
                .execution_options(synchronize_session=False)
            )
        return
    await session.refresh(permit)
    if permit.status in FINAL:
        raise Conflict(_why_not_usable(permit, permit.status, now, years=years), permit_status=permit.status)
    if entry:
        open_entry = await session.scalar(
            select(PermitActivity)
            .where(PermitActivity.permit_id == permit.id, PermitActivity.activity == "ENTRY")
            .order_by(PermitActivity.at.desc())
            .limit(1)
        )
        where = f" at {open_entry.office} at {clock.isoformat(open_entry.at)}" if open_entry else ""
        raise Conflict(
            f"{permit.id} already entered{where} and has not exited: a second ENTRY is refused", permit_status="in_use"
        )
    raise Conflict(f"{permit.id} has no open ENTRY to exit from", permit_status=permit.status)


async def record_copy(session: AsyncSession, node: Node, *, body: messages.UsedBody, sender: str) -> list[PermitAlert]:
    """A use or sighting another node recorded: kept as that node's fact; counters follow the activities.

    The permit row is locked first: the sender's delivery lanes may bring an ENTRY and its EXIT in two concurrent
    batches, and unserialised each would count without the other (a consumed permit left `in_use`) and neither
    would see the other for the impossible-travel check."""
    try:
        permit = await get_permit(session, body.permit_id, lock=True)
    except NotFound:
        return []
    if await session.get(PermitActivity, body.activity_id) is not None:
        return []
    activity = PermitActivity(
        id=body.activity_id,
        permit_id=body.permit_id,
        activity=body.activity,
        office=body.office,
        country=body.country,
        at=body.at,
        plate=body.plate,
        recorded_by=sender,
        recorded_at=clock.utcnow(),
    )
    session.add(activity)
    await session.flush()
    if body.activity != "SIGHTING" and permit.issuer != node.id:
        rows = await session.execute(
            select(PermitActivity.activity, func.count())
            .where(PermitActivity.permit_id == permit.id, PermitActivity.activity.in_(("ENTRY", "EXIT")))
            .group_by(PermitActivity.activity)
        )
        counts = {str(row[0]): int(row[1]) for row in rows}
        permit.entries = int(counts.get("ENTRY", 0))
        permit.exits = int(counts.get("EXIT", 0))
        if permit.status != "revoked":
            if permit.exits >= permit.trips:
                permit.status = "consumed"
            else:
                permit.status = "in_use" if permit.entries > permit.exits else "active"
        permit.updated_at = clock.utcnow()
    return await check_travel(session, node, activity)


async def check_travel(session: AsyncSession, node: Node, activity: PermitActivity) -> list[PermitAlert]:
    """Fraud sign: the permit seen at another post sooner than a truck could drive there (great-circle distance at
    TW_PERMIT_MAX_SPEED_KMH, a generous upper bound for a loaded lorry)."""
    directory = offices_of(node)
    here = directory.get(activity.office)
    if here is None:
        return []
    others = (
        await session.scalars(
            select(PermitActivity).where(
                PermitActivity.permit_id == activity.permit_id,
                PermitActivity.id != activity.id,
                PermitActivity.office != activity.office,
            )
        )
    ).all()
    alerts = []
    for other in others:
        there = directory.get(other.office)
        if there is None or there.partner == here.code or here.partner == there.code:
            continue  # the two sides of one crossing are the same place
        km = haversine_km(here.lat, here.lon, there.lat, there.lon)
        hours = abs((activity.at - other.at).total_seconds()) / 3600
        if km > node.settings.permit_max_speed_kmh * hours:
            speed = "at once" if hours == 0 else f"{hours * 60:.0f} min apart"
            alert = PermitAlert(
                id=new_id(),
                permit_id=activity.permit_id,
                kind="impossible-travel",
                detail=(
                    f"{activity.permit_id} seen at {other.office} ({clock.isoformat(other.at)}) and at "
                    f"{activity.office} ({clock.isoformat(activity.at)}): {km:.0f} km {speed}, faster than "
                    f"{node.settings.permit_max_speed_kmh:.0f} km/h"
                ),
                activity_ids=[other.id, activity.id],
                raised_at=clock.utcnow(),
            )
            session.add(alert)
            alerts.append(alert)
            node.metrics.permit_alerts.labels(kind=alert.kind).inc()
    if alerts:
        await session.flush()
    return alerts


# -- revocation ------------------------------------------------------------------------------------------------


async def revoke(session: AsyncSession, node: Node, *, permit_id: str, reason: str) -> Permit:
    permit = await get_permit(session, permit_id, lock=True)
    if permit.issuer != node.id:
        raise Forbidden(f"{permit.id} was issued by {permit.issuer}; only the issuer revokes it")
    if permit.status in FINAL:
        raise Conflict(f"{permit.id} is {permit.status}: it cannot be revoked", permit_status=permit.status)
    now = clock.utcnow()
    permit.status = "revoked"
    permit.revoked_at = now
    permit.revoke_reason = reason
    permit.updated_at = now
    await session.flush()
    for country in _holders(permit, node):
        outbox.enqueue(
            session,
            to=country,
            message_type="permit.revoked",
            subject=permit.id,
            body=messages.RevokedBody(permit_id=permit.id, revoked_at=now, reason=reason),
        )
    return permit


async def revocation_list(session: AsyncSession, node: Node) -> RevocationList:
    """This node's revocations of permits still within their validity. The version counts every revocation ever
    made here, so it only grows (revocations are final)."""
    now = clock.utcnow()
    mine = (Permit.issuer == node.id, Permit.status == "revoked")
    version = int(await session.scalar(select(func.count()).select_from(Permit).where(*mine)) or 0)
    rows = (
        await session.execute(
            select(Permit.id, Permit.revoked_at, Permit.revoke_reason)
            .where(*mine, Permit.expires_at > now)
            .order_by(Permit.id)
        )
    ).all()
    return RevocationList(
        iss=node.id,
        version=version,
        issued_at=now,
        next_update=now + timedelta(hours=node.settings.revocation_list_hours),
        revoked=[RevokedEntry(id=row.id, revoked_at=row.revoked_at, reason=row.revoke_reason or "") for row in rows],
    )


async def verify_online(session: AsyncSession, node: Node, *, token: str, plate: str | None) -> Verdict:
    """The offline check, with what this node knows of revocations: its own, and those its peers sent it. A plate
    that cannot be a plate is the officer's typo (422), not a verdict on the permit."""
    seen = None if plate is None else _plate(plate, "/body/plate")
    verdict = verify_permit(token, trust=node.trust, revocations={}, plate=seen)
    if verdict.claims is None or verdict.result in ("bad-signature", "unknown-issuer", "untrusted-key", "malformed"):
        return verdict
    verdict.warnings = [warning for warning in verdict.warnings if "revocation list" not in warning]
    known = await session.get(Permit, verdict.claims.id)
    if known is None:
        if verdict.claims.iss == node.id:
            verdict.result = "bad-signature"
            verdict.reasons = [f"{node.id} has no record of issuing {verdict.claims.id}"]
        else:
            verdict.warnings.append(
                f"{node.id} has no copy of {verdict.claims.id}: revocation by {verdict.claims.iss} unknown here"
            )
        return verdict
    verdict.usage = (known.trips, known.entries, known.exits)
    if known.status == "revoked":
        assert known.revoked_at is not None
        reason = f"{known.issuer} revoked {known.id} at {clock.isoformat(known.revoked_at)}: {known.revoke_reason}"
        verdict.reasons = [reason, *[text for text in verdict.reasons if not text.startswith("signed by")]]
        verdict.result = "revoked"
    elif known.status == "consumed":
        reason = f"{known.id} is used up: {known.exits} of {known.trips} trips entered and exited"
        verdict.reasons = [reason, *[text for text in verdict.reasons if not text.startswith("signed by")]]
        if verdict.result == "valid":
            verdict.result = "used-up"
    return verdict


def normalise_plate_query(plate: str) -> str:
    return _plate(plate, "/query/plate")


def parse_cursor_time(text: str) -> datetime:
    try:
        return within_corridor(clock.parse(text))
    except ValueError as exc:
        raise InvalidInput(
            "the cursor is not one this API gave out", errors=[FieldError("/query/cursor", "bad cursor")]
        ) from exc
