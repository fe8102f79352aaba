"""What customs systems do at their own node: declare, release, cancel, record crossings, arrival and control
results. Every change and the messages it causes share the request's transaction; nothing here commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import Numeric, func, select, text, update

from transit_window import bus, clock
from transit_window.codes import OfficeDirectory, amount_text, generate_mrn
from transit_window.codes.of_node import hs_of, offices_of
from transit_window.db import locks
from transit_window.db.base import table_of
from transit_window.db.dialect import dialect_of
from transit_window.declarations import guarantees, journey, release_gate
from transit_window.declarations.events import MovementHeld
from transit_window.declarations.messages import (
    AnticipatedBody,
    ArrivedBody,
    CancelledBody,
    ClosedBody,
    ControlResultsBody,
    CrossedBody,
    RecordRequestBody,
    StatusRequestBody,
    StepRecord,
)
from transit_window.declarations.models import (
    Guarantee,
    Movement,
    MovementOffice,
    MovementStep,
    MrnCounter,
    PendingStep,
)
from transit_window.declarations.schemas import (
    ArrivalIn,
    ControlResultsIn,
    CrossingIn,
    DeclarationIn,
    GuaranteeIn,
    with_amounts_shown,
)
from transit_window.declarations.validation import check_amount, check_declaration, default_limit_date
from transit_window.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from transit_window.protocol import outbox

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import InstrumentedAttribute
    from sqlalchemy.sql.elements import ColumnElement

    from transit_window.clients.principal import Principal
    from transit_window.protocol.node import Node


async def get_movement(session: AsyncSession, mrn: str, *, lock: bool = False) -> Movement:
    movement = await find_movement(session, mrn, lock=lock)
    if movement is None:
        raise NotFound(f"no movement {mrn} at this node")
    return movement


async def find_movement(session: AsyncSession, mrn: str, *, lock: bool = False) -> Movement | None:
    """`lock`: the transaction is about to record a step of it; lock it now rather than in `journey.add_step`."""
    statement = select(Movement).where(Movement.mrn == mrn)
    if lock:  # SQLite renders no FOR UPDATE: its writers run one at a time anyway
        # populate_existing: a movement this session loaded before is read afresh under the lock, not left as it was
        statement = statement.with_for_update().execution_options(populate_existing=True)
    movement = await session.scalar(statement)
    if movement is not None and lock:
        journey.locked(session, mrn)
    return movement


# -- declaring -------------------------------------------------------------------------------------------------


async def allocate_mrn(session: AsyncSession, *, year: int, country: str, office: str) -> str:
    """A new MRN. PostgreSQL: a sequence (no lock held for the transaction); SQLite: a counter row (writers
    are serialised there anyway). Gaps after a rollback are allowed, as in NCTS."""
    if dialect_of(session).sequences:
        serial = int(await session.scalar(text("SELECT nextval('mrn_serial')")) or 0)
    else:
        result = await session.execute(
            update(MrnCounter)
            .where(MrnCounter.year == year)
            .values(value=MrnCounter.value + 1)
            .returning(MrnCounter.value)
        )
        value = result.scalar_one_or_none()
        if value is None:
            session.add(MrnCounter(year=year, value=1))
            await session.flush()
            value = 1
        serial = int(value)
    return generate_mrn(year=year % 100, country=country, serial=serial, office_part=office[2:6])


async def declare(session: AsyncSession, node: Node, *, client: Principal, declaration: DeclarationIn) -> Movement:
    directory = offices_of(node)
    departure = directory.get(declaration.itinerary[0])
    if client.party_id and directory.get(client.party_id) is not None and client.party_id != declaration.itinerary[0]:
        raise Forbidden(
            f"this customs client acts for office {client.party_id} and may not lodge declarations at "
            f"{declaration.itinerary[0]}",
            errors=[FieldError("/body/itinerary/0", "not this client's office", "15").as_dict()],
        )
    checked = check_declaration(
        declaration, node_country=node.id, offices=directory, hs=hs_of(node), today=clock.utcnow().date()
    )
    if checked.errors:
        count = len(checked.errors)
        raise InvalidInput(
            f"the declaration has {count} error{'s' if count > 1 else ''}: {checked.errors[0].detail}",
            errors=checked.errors,
        )
    assert departure is not None
    if declaration.limit_date is None:
        limit_date = default_limit_date(
            checked.offices,
            now=clock.utcnow(),
            speed_kmh=node.settings.expected_speed_kmh,
            grace=timedelta(minutes=node.settings.crossing_grace_minutes),
        )
        declaration = declaration.model_copy(update={"limit_date": limit_date})
    assert declaration.limit_date is not None
    guarantee = await session.get(Guarantee, declaration.guarantee.grn)
    if guarantee is None:
        raise InvalidInput(
            f"guarantee {declaration.guarantee.grn} is not registered at this node",
            errors=[FieldError("/body/guarantee/grn", "unknown guarantee reference number", "12")],
        )
    await guarantees.check_declared_use(
        session, guarantee, declarant=declaration.declarant, reference=declaration.guarantee
    )
    held_in = guarantee.currency
    if held_in != declaration.guarantee.currency:
        raise InvalidInput(
            f"guarantee {declaration.guarantee.grn} is in {held_in}, not {declaration.guarantee.currency}",
            errors=[FieldError("/body/guarantee/currency", f"the guarantee is held in {held_in}", "14")],
        )
    now = clock.utcnow()
    mrn = await allocate_mrn(session, year=now.year, country=node.id, office=departure.code)
    record = declaration.model_dump(mode="json", exclude={"guarantee": {"access_code"}})  # a secret: kept out
    record = with_amounts_shown(record)  # kept and shared as answers show them: "5000.00" USD, not 5000
    record["vehicle"]["plate"] = checked.plate
    if checked.trailer_plate is not None:
        record["vehicle"]["trailer_plate"] = checked.trailer_plate
    movement = Movement(
        mrn=mrn,
        role="departure",
        status="accepted",
        departure_country=node.id,
        departure_office=declaration.itinerary[0],
        destination_office=declaration.itinerary[-1],
        countries=checked.countries,
        offices=list(declaration.itinerary),
        record=record,
        grn=declaration.guarantee.grn,
        guarantee_amount=declaration.guarantee.amount,
        guarantee_currency=declaration.guarantee.currency,
        limit_date=declaration.limit_date,
        client_id=client.client_id,
        declarant_id=declaration.declarant.id,
        created_at=now,
        updated_at=now,
    )
    session.add(movement)
    await session.flush()
    await bus.publish(session, MovementHeld(node=node, movement=movement))
    return movement


async def index_offices(session: AsyncSession, *, mrn: str, offices: list[str]) -> None:
    """Index a route movement by the offices of its itinerary (one multi-row insert)."""
    rows = [{"office": office, "mrn": mrn} for office in dict.fromkeys(offices)]
    await session.execute(dialect_of(session).insert_ignore(table_of(MovementOffice)).values(rows))


# -- guarantees ------------------------------------------------------------------------------------------------


async def register_guarantee(
    session: AsyncSession, node: Node, *, client: Principal, request: GuaranteeIn
) -> Guarantee:
    """The holder's id is checked as every party id of a declaration is, since declarations compare it with their
    declarant's; the registering client is kept, as it may manage the holder's authorisations."""
    from transit_window.codes import validate_grn, validate_trader_id

    errors = []
    reason = validate_grn(request.grn)
    if reason:
        errors.append(FieldError("/body/grn", reason, "12"))
    holder_country = request.holder_country or node.id
    reason = validate_trader_id(holder_country, request.holder_id)
    if reason:
        pointer = "/body/holder_country" if reason.startswith(repr(holder_country)) else "/body/holder_id"
        errors.append(FieldError(pointer, f"holder id: {reason}", "12"))
    wrong_amount = check_amount("/body/reference_amount", request.reference_amount, request.currency, "/body/currency")
    if wrong_amount is not None:
        errors.append(wrong_amount)
    if errors:
        raise InvalidInput(errors[0].detail, errors=errors)
    if await session.get(Guarantee, request.grn) is not None:
        raise Conflict(f"guarantee {request.grn} is already registered")
    guarantee = Guarantee(
        grn=request.grn,
        holder_id=request.holder_id,
        holder_country=holder_country,
        reference_amount=request.reference_amount,
        reserved=Decimal(0),
        currency=request.currency,
        client_id=client.client_id,
        created_at=clock.utcnow(),
    )
    session.add(guarantee)
    await session.flush()
    return guarantee


def _sum(column: InstrumentedAttribute[Decimal], amount: Decimal) -> ColumnElement[Decimal]:
    """`column + amount` in whole thousandths: SQLite keeps NUMERIC as binary floating point, where 0.10 + 0.20 is
    not 0.30 and a guarantee of 0.30 would refuse the second release that exactly fills it."""
    return func.round(column + amount, 3, type_=Numeric(18, 3))


async def _reserve(session: AsyncSession, movement: Movement) -> None:
    """Atomic: the row is only updated when the reservation still fits, so concurrent releases never overdraw."""
    assert movement.grn is not None and movement.guarantee_amount is not None
    result = await session.execute(
        update(Guarantee)
        .where(
            Guarantee.grn == movement.grn,
            _sum(Guarantee.reserved, movement.guarantee_amount) <= Guarantee.reference_amount,
        )
        .values(reserved=_sum(Guarantee.reserved, movement.guarantee_amount))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        guarantee = await session.get(Guarantee, movement.grn)
        currency = guarantee.currency if guarantee else str(movement.guarantee_currency)
        available = amount_text(
            (guarantee.reference_amount - guarantee.reserved) if guarantee else Decimal(0), currency
        )
        raise Conflict(
            f"guarantee {movement.grn} cannot cover {amount_text(movement.guarantee_amount, currency)} {currency}: "
            f"{available} is still available; release other movements or increase the guarantee",
            grn=movement.grn,
            available=available,
        )


async def _release_guarantee(session: AsyncSession, movement: Movement) -> None:
    if movement.grn is None or movement.guarantee_amount is None:
        return
    await session.execute(
        update(Guarantee)
        .where(Guarantee.grn == movement.grn)
        .values(reserved=_sum(Guarantee.reserved, -movement.guarantee_amount))
        .execution_options(synchronize_session=False)
    )


# -- departure: release, cancel, write-off ---------------------------------------------------------------------


def anticipated_body(movement: Movement, steps: list[StepRecord] | None = None) -> AnticipatedBody:
    return AnticipatedBody(
        mrn=movement.mrn,
        departure_office=movement.departure_office,
        destination_office=movement.destination_office,
        countries=movement.countries,
        itinerary=movement.offices,
        limit_date=movement.limit_date,
        declaration=movement.record,
        journey=steps or [],
    )


async def release(session: AsyncSession, node: Node, *, mrn: str) -> Movement:
    movement = await get_movement(session, mrn, lock=True)
    if movement.role != "departure":
        raise Conflict(f"{mrn} was declared in {movement.departure_country}; only that country releases it")
    if movement.status != "accepted":
        raise Conflict(f"{mrn} is {movement.status}; only an accepted declaration can be released")
    await guarantees.check_release_use(session, movement)
    then = await release_gate.check_release(session, node, movement)
    await _reserve(session, movement)
    for action in then:  # the route sees the certificates the goods travel under
        await action()
    now = clock.utcnow()
    released = StepRecord(kind="released", office=movement.departure_office, country=node.id, at=now, signed_by=node.id)
    await journey.record_here(
        session,
        node,
        movement,
        kind="released",
        office=movement.departure_office,
        at=now,
        message_type="transit.anticipated",
        body=anticipated_body(movement, [released]),
    )
    await session.flush()
    return movement


async def cancel(session: AsyncSession, node: Node, *, mrn: str, reason: str) -> Movement:
    movement = await get_movement(session, mrn, lock=True)
    if movement.role != "departure":
        raise Conflict(f"{mrn} was declared in {movement.departure_country}; only that country cancels it")
    if movement.status not in ("accepted", "released"):
        raise Conflict(f"{mrn} is {movement.status}: a movement can be cancelled only before the goods leave")
    was_released = movement.status == "released"  # only then did the route hear of it, and a guarantee is held
    now = clock.utcnow()
    if was_released:
        await _release_guarantee(session, movement)
    await journey.record_here(
        session,
        node,
        movement,
        kind="cancelled",
        office=movement.departure_office,
        at=now,
        message_type="transit.cancelled" if was_released else None,
        body=CancelledBody(mrn=mrn, office=movement.departure_office, at=now, reason=reason),
        details={"reason": reason},
    )
    await session.flush()
    return movement


async def write_off(session: AsyncSession, node: Node, movement: Movement, *, outcome: str) -> None:
    """Departure closes the movement once control results are in: guarantee released, `transit.closed` sent."""
    if movement.status in ("closed", "cancelled"):
        return
    await _release_guarantee(session, movement)
    now = clock.utcnow()
    await journey.record_here(
        session,
        node,
        movement,
        kind="closed",
        office=movement.departure_office,
        at=now,
        message_type="transit.closed",
        body=ClosedBody(mrn=movement.mrn, office=movement.departure_office, at=now, outcome=outcome),
        details={"outcome": outcome},
    )


# -- along the route: crossings, arrival, control results -----------------------------------------------------


def _expected_direction(movement: Movement, office: str, offices: OfficeDirectory) -> str | None:
    codes = movement.offices
    index = codes.index(office)
    country = offices.require(office).country
    if index + 1 < len(codes) and offices.require(codes[index + 1]).country != country:
        return "exit"
    if index > 0 and offices.require(codes[index - 1]).country != country:
        return "entry"
    return None


def _check_local_office(node: Node, office_code: str, *, pointer: str) -> None:
    office = offices_of(node).get(office_code)
    if office is None:
        raise InvalidInput(
            f"no customs office {office_code!r} in the corridor directory",
            errors=[FieldError(pointer, "unknown office", "12")],
        )
    if office.country != node.id:
        raise Forbidden(
            f"{office_code} is an office of {office.country}; customs at this node record steps at {node.id} offices",
            errors=[FieldError(pointer, f"not an office of {node.id}", "15").as_dict()],
        )


def _check_time(node: Node, at: datetime) -> None:
    """A step cannot be recorded for the future (beyond the corridor's clock skew)."""
    ahead = (at - clock.utcnow()).total_seconds()
    if ahead > node.settings.clock_skew_seconds:
        raise InvalidInput(
            f"the time {at.isoformat()} is {ahead / 60:.0f} minutes in the future; record a step when it happens",
            errors=[FieldError("/body/at", "in the future", "14")],
        )


async def _check_order(
    session: AsyncSession,
    node: Node,
    movement: Movement,
    at: datetime,
    *,
    what: str,
    after: tuple[str, ...],
    offices: list[str] | None = None,
    known: Sequence[KnownStep] | None = None,
) -> None:
    """A step cannot be dated before the steps it follows: any step before the release, a crossing before those
    recorded at offices earlier on the itinerary, the arrival before any crossing, control results before the
    arrival. Clocks of different countries may differ by the corridor's skew, so that much is allowed. Only steps
    this node already knows are compared: one still on its way is not waited for (NCTS does not either).
    `known`: the movement's steps, when the caller has read them already."""
    if known is None:
        where = [MovementStep.mrn == movement.mrn, MovementStep.kind.in_(after)]
        if offices is not None:
            where.append(MovementStep.office.in_(offices))
        statement = select(MovementStep.kind, MovementStep.office, MovementStep.at).where(*where)
        known = [KnownStep(*row) for row in await session.execute(statement)]
    rows = [step for step in known if step.kind in after and (offices is None or step.office in offices)]
    slack = timedelta(seconds=node.settings.clock_skew_seconds)
    for kind, office, earlier in sorted(rows, key=lambda row: row.at, reverse=True):
        if at + slack < earlier:
            step = {"released": "release", "arrived": "arrival"}.get(kind, kind)
            raise InvalidInput(
                f"the {what} at {clock.isoformat(at)} is before the {step} of {movement.mrn} at {office}, "
                f"{clock.isoformat(earlier)}: a step cannot be dated before the {step} it follows",
                errors=[FieldError("/body/at", f"before the {step} ({clock.isoformat(earlier)})", "14")],
            )


class KnownStep(NamedTuple):
    kind: str
    office: str
    at: datetime


async def _known_steps(session: AsyncSession, mrn: str) -> list[KnownStep]:
    """Every step of a movement this node holds (a handful): read once for all of a step's checks."""
    statement = select(MovementStep.kind, MovementStep.office, MovementStep.at).where(MovementStep.mrn == mrn)
    return [KnownStep(*row) for row in await session.execute(statement)]


def _check_alive(movement: Movement) -> None:
    if movement.status == "cancelled":
        raise Conflict(f"{movement.mrn} was cancelled")
    if movement.status == "closed":
        raise Conflict(f"{movement.mrn} is already closed")
    if movement.status == "accepted":
        raise Conflict(f"{movement.mrn} has not been released yet")


async def record_crossing(
    session: AsyncSession, node: Node, *, mrn: str, crossing: CrossingIn
) -> tuple[Movement | None, bool]:
    """Returns (movement, pending). An MRN this node has not heard of yet is kept and its record requested."""
    _check_local_office(node, crossing.office, pointer="/body/office")
    _check_time(node, crossing.at)
    movement = await find_movement(session, mrn, lock=True)
    if movement is None:
        if mrn[2:4] == node.id:
            raise NotFound(f"no movement {mrn} was declared at this node")
        if await park(
            session, node, mrn=mrn, source="local", message_type="crossing", body=crossing.model_dump(mode="json")
        ):
            return None, True
        movement = await get_movement(session, mrn, lock=True)  # the record came while we looked
    await apply_crossing(session, node, movement, crossing)
    return movement, False


async def apply_crossing(session: AsyncSession, node: Node, movement: Movement, crossing: CrossingIn) -> None:
    _check_alive(movement)
    steps = await _known_steps(session, movement.mrn)
    await _check_order(session, node, movement, crossing.at, what=crossing.direction, after=("released",), known=steps)
    directory = offices_of(node)
    if crossing.office not in movement.offices:
        raise InvalidInput(
            f"{crossing.office} is not on the itinerary of {movement.mrn} ({' → '.join(movement.offices)})",
            errors=[FieldError("/body/office", "not on the itinerary", "14")],
        )
    expected = _expected_direction(movement, crossing.office, directory)
    if expected is None:
        raise InvalidInput(
            f"{crossing.office} is not where {movement.mrn} crosses a border",
            errors=[FieldError("/body/office", "not a crossing point of this itinerary", "14")],
        )
    if crossing.direction != expected:
        raise InvalidInput(
            f"at {crossing.office} the goods {'leave' if expected == 'exit' else 'enter'} {node.id}: "
            f"record it as {expected}",
            errors=[FieldError("/body/direction", f"expected {expected}", "14")],
        )
    earlier = movement.offices[: movement.offices.index(crossing.office)]
    await _check_order(
        session,
        node,
        movement,
        crossing.at,
        what=crossing.direction,
        after=("exit", "entry"),
        offices=earlier,
        known=steps,
    )
    body = CrossedBody(
        mrn=movement.mrn,
        office=crossing.office,
        country=node.id,
        direction=crossing.direction,
        at=crossing.at,
        seals_intact=crossing.seals_intact,
        remarks=crossing.remarks,
    )
    if any(step.kind == crossing.direction and step.office == crossing.office for step in steps):
        raise Conflict(f"the {crossing.direction} of {movement.mrn} at {crossing.office} is already recorded")
    await journey.record_here(
        session,
        node,
        movement,
        kind=crossing.direction,
        office=crossing.office,
        at=crossing.at,
        message_type="transit.crossed",
        body=body,
        details={"seals_intact": crossing.seals_intact, "remarks": crossing.remarks},
    )
    await session.flush()


async def record_arrival(session: AsyncSession, node: Node, *, mrn: str, arrival: ArrivalIn) -> Movement:
    _check_local_office(node, arrival.office, pointer="/body/office")
    _check_time(node, arrival.at)
    movement = await get_movement(session, mrn, lock=True)
    _check_alive(movement)
    if movement.status == "arrived":
        raise Conflict(f"the arrival of {mrn} is already recorded")
    await _check_order(session, node, movement, arrival.at, what="arrival", after=("released", "exit", "entry"))
    if arrival.office != movement.destination_office:
        raise InvalidInput(
            f"{mrn} is bound for {movement.destination_office}, not {arrival.office}",
            errors=[FieldError("/body/office", "not the office of destination", "14")],
        )
    body = ArrivedBody(mrn=mrn, office=arrival.office, at=arrival.at, remarks=arrival.remarks)
    await journey.record_here(
        session,
        node,
        movement,
        kind="arrived",
        office=arrival.office,
        at=arrival.at,
        message_type="transit.arrived",
        body=body,
        details={"remarks": arrival.remarks},
    )
    # Crossings missing from the journey never hold up the end of a movement: tracking, told of the arrival
    # (`StepRecorded`), asks their countries now and raises an alert for what is still missing after a wait.
    await session.flush()
    return movement


async def record_control_results(session: AsyncSession, node: Node, *, mrn: str, results: ControlResultsIn) -> Movement:
    _check_time(node, results.at)
    movement = await get_movement(session, mrn, lock=True)
    if movement.status != "arrived":
        raise Conflict(f"{mrn} is {movement.status}; control results follow the arrival at destination")
    if offices_of(node).require(movement.destination_office).country != node.id:
        raise Forbidden(f"control results for {mrn} come from the office of destination {movement.destination_office}")
    await _check_order(session, node, movement, results.at, what="control results", after=("released", "arrived"))
    body = ControlResultsBody(
        mrn=mrn,
        office=movement.destination_office,
        code=results.code,
        at=results.at,
        discrepancies=results.discrepancies,
    )
    await journey.record_here(
        session,
        node,
        movement,
        kind="control-results",
        office=movement.destination_office,
        at=results.at,
        message_type="transit.control-results",
        body=body,
        details={"code": results.code, "discrepancies": results.discrepancies},
    )
    if movement.role == "departure":
        await write_off(session, node, movement, outcome=results.code)
    await session.flush()
    return movement


async def request_status(session: AsyncSession, node: Node, *, mrn: str) -> list[str]:
    """Ask every other country on the route what it holds (NCTS IE094); their answers are merged as they come."""
    movement = await get_movement(session, mrn)
    asked = journey.others_on_route(movement, node)
    for country in asked:
        outbox.enqueue(
            session, to=country, message_type="transit.status-request", body=StatusRequestBody(mrn=mrn), subject=mrn
        )
    return asked


# -- steps that came before their record -----------------------------------------------------------------------


async def park(
    session: AsyncSession,
    node: Node,
    *,
    mrn: str,
    source: str,
    message_type: str,
    body: dict[str, object],
    signed_by: str | None = None,
    envelope_id: str | None = None,
) -> bool:
    """Keep a step for a movement this node has no record of, and ask the departure country for the record.

    Returns False, keeping nothing, when the record has arrived after all: the caller applies the step now."""
    await lock_record(session, mrn)
    if await session.scalar(select(Movement.mrn).where(Movement.mrn == mrn)) is not None:
        return False
    now = clock.utcnow()
    already_requested = await session.scalar(select(PendingStep.id).where(PendingStep.mrn == mrn).limit(1))
    session.add(
        PendingStep(
            mrn=mrn,
            source=source,
            message_type=message_type,
            body=body,
            signed_by=signed_by or node.id,
            envelope_id=envelope_id,
            received_at=now,
            requested_at=now,
        )
    )
    departure = mrn[2:4]
    if already_requested is None and node.trust.member(departure) and departure != node.id:
        outbox.enqueue(
            session, to=departure, message_type="transit.record-request", body=RecordRequestBody(mrn=mrn), subject=mrn
        )
    await session.flush()
    return True


async def lock_record(session: AsyncSession, mrn: str) -> None:
    """Serialise keeping a step for an unknown movement with storing the movement's record (until commit).

    Without it the two cross: a step is kept while the record's transaction, not yet committed, is invisible to it,
    and the record's transaction looks for kept steps before the step's has committed — the step then waits for a
    record that has already come. The inbox takes the same lock for every movement of a batch, first and in order."""
    await locks.lock_names(session, [mrn])
