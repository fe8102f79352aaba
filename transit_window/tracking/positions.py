"""E-seal positions: `POST /v1/tracking/positions` takes batches of pings from devices, stores them once, and runs
the alert rules on the new pings.

A batch is all or nothing: every ping is checked first (coordinates in range, time not in the future, an MRN or a
seal id this node knows) and so is who sent it — devices belong to what they seal (issue 13): the ping's device must
be registered to the calling client (`devices.py`; else 403), its movement must be one this node departs that is
released or in transit (not yet released, arrived, closed, or a route country's copy: 409; the departure node
raises the alerts and shares them with the route), and the declaration's `seals` must list the device's seal (else
422). If any ping is refused, the answer is a problem naming each refused ping by its index
(`/body/pings/12/seal_id`) with a code, its status the strongest reason (403, then 409, then 422), and nothing is
stored. A device resends the whole batch after fixing it; pings already
stored are skipped, because a ping's identity is (device, MRN, time) and the insert ignores conflicts.

Built for throughput (tens of thousands of pings a second): pydantic validates the batch, one Python pass checks
the rest with one query for the movements named (and one for seal ids, when pings name seals), then ONE bulk
`INSERT ... ON CONFLICT DO NOTHING ... RETURNING` stores the batch and says which pings are new. The rules then run
per movement over its new pings only, in memory, with the movement's last known state (last position, the stop in
progress) read from and written back to `tracking_position_states` in one statement each — so a long stop that
spans batches is seen, and a repeated batch raises nothing.

Rules (thresholds in settings, `TW_*`):
- route-deviation: a ping farther than `route_corridor_km` from the line through the itinerary's offices;
- long-stop: pings within `stop_radius_km` of one point for more than `long_stop_minutes`, away from any office
  (`office_radius_km`);
- seal-opened: a ping whose seal is open or tampered, away from any office.
Every alert names the device of the ping that raised it and the client that sent the batch.
The fourth rule, overdue crossing, needs no ping: it is the periodic check in `crossing_checks.check_overdue`.
Two batches for the same movement processed at the same moment may each write the state; the later write wins
(the alerts themselves stay one per movement and rule: `alerts.raise_alert`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select, text

from transit_window import clock
from transit_window.db.base import UTCDateTime, table_of
from transit_window.db.dialect import dialect_of
from transit_window.declarations.interface import Movement
from transit_window.errors import Conflict, DomainError, FieldError, Forbidden, InvalidInput
from transit_window.tracking import alerts, devices
from transit_window.tracking.models import Device, TrackingPosition
from transit_window.tracking.schemas import PositionBatch

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.settings import Settings

MAX_ERRORS_SHOWN = 100
OPENED = frozenset({"open", "tampered"})
Vector = tuple[float, float, float]
STRONGEST_FIRST = (403, 409, 422)  # the status of a refused batch: its strongest reason
TAKING_PINGS = alerts.WATCHED  # released or in transit: on the road, not arrived, not closed


@dataclass(slots=True)
class Ping:
    device_id: str
    mrn: str
    time: datetime
    seal_id: str | None
    lat: float
    lon: float
    speed: float | None
    seal_state: str


# -- validation --------------------------------------------------------------------------------------------------


async def _seal_owners(session: AsyncSession, seals: set[str]) -> dict[str, list[str]]:
    """seal id → MRNs of the movements departing here and on the road that carry it (the declaration's `seals`):
    the only ones a ping may be for, so the seal also listed on the truck's next, not yet released declaration, or on
    a route country's copy, does not make a ping ambiguous."""
    if not seals:
        return {}
    statuses = ", ".join(f"'{status}'" for status in TAKING_PINGS)
    if dialect_of(session).name == "postgresql":  # SQL written once per database: the JSON functions differ
        source = "movements AS m CROSS JOIN LATERAL jsonb_array_elements_text(m.record -> 'seals') AS s(value)"
    else:
        source = "movements AS m, json_each(m.record, '$.seals') AS s"
    statement = text(
        f"SELECT m.mrn AS mrn, s.value AS seal FROM {source} "  # noqa: S608 - constants only; seals are bound
        f"WHERE m.role = 'departure' AND m.status IN ({statuses}) AND s.value IN :seals"
    ).bindparams(bindparam("seals", expanding=True))
    owners: dict[str, list[str]] = {}
    for row in await session.execute(statement, {"seals": sorted(seals)}):
        owners.setdefault(str(row.seal), []).append(str(row.mrn))
    return owners


async def _movements(session: AsyncSession, mrns: set[str]) -> dict[str, Movement]:
    found: dict[str, Movement] = {}
    ordered = sorted(mrns)
    for start in range(0, len(ordered), 500):
        rows = await session.scalars(select(Movement).where(Movement.mrn.in_(ordered[start : start + 500])))
        found.update((movement.mrn, movement) for movement in rows)
    return found


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refused ping: the status it would get alone (403 not this client's device, 409 movement not taking
    pings, 422 invalid) and the field error naming it."""

    status: int
    error: FieldError


def _refuse(refusals: list[Refusal]) -> DomainError:
    """The whole batch refused: the strongest reason sets the status (a device that is not the client's outranks a
    movement that is closed, which outranks a bad field), and every refused ping is listed by its index."""
    count = len(refusals)
    status = min((refusal.status for refusal in refusals), key=STRONGEST_FIRST.index)
    errors = [refusal.error for refusal in refusals]
    first = next(refusal.error for refusal in refusals if refusal.status == status)
    detail = f"{count} ping{'s' if count > 1 else ''} refused, nothing stored; first: {first.pointer}: {first.detail}"
    shown = errors[:MAX_ERRORS_SHOWN]
    if status == 403:
        return Forbidden(detail, errors=[error.as_dict() for error in shown], error_count=count)
    if status == 409:
        return Conflict(detail, errors=[error.as_dict() for error in shown], error_count=count)
    return InvalidInput(detail, errors=shown, error_count=count)


def _refusal_for_movement(
    index: int, movement: Movement, device: Device, seal_id: str | None, *, seals: set[str]
) -> Refusal | None:
    """Why this device may not report on this movement, if it may not (the node, the status, the seal)."""
    mrn = movement.mrn
    if movement.role != "departure":
        return Refusal(
            409,
            FieldError(
                f"/body/pings/{index}/mrn",
                f"{mrn} is held here as a route country; its e-seal pings go to the departure node "
                f"({movement.departure_country})",
                "not-departure",
            ),
        )
    if movement.status not in TAKING_PINGS:
        return Refusal(
            409,
            FieldError(
                f"/body/pings/{index}/mrn",
                f"{mrn} is {movement.status}; pings are taken only while it is released or in transit",
                "not-on-the-road",
            ),
        )
    if device.seal not in seals:
        return Refusal(
            422,
            FieldError(
                f"/body/pings/{index}/device_id",
                f"device {device.device_id} carries seal {device.seal}, which the declaration of {mrn} does not "
                "list; register the device with the seal it carries (PUT /v1/devices/{device_id})",
                "not-this-movement",
            ),
        )
    if seal_id is not None and seal_id != device.seal:
        return Refusal(
            422,
            FieldError(
                f"/body/pings/{index}/seal_id",
                f"device {device.device_id} carries seal {device.seal}, not {seal_id}",
                "not-this-device",
            ),
        )
    return None


async def validate(
    session: AsyncSession, settings: Settings, batch: PositionBatch, *, client_id: str
) -> tuple[list[Ping], dict[str, Movement]]:
    """Every ping checked; the batch refused (`_refuse`), listing each refused ping by index, if any is refused.

    Besides the fields: the device must be registered to `client_id`, the movement must be one this node departs
    and that is on the road, and its declaration must list the device's seal (`devices.py`)."""
    latest = clock.utcnow() + timedelta(seconds=settings.ping_clock_skew_seconds)
    refusals: list[Refusal] = []
    named = {ping.mrn for ping in batch.pings if ping.mrn}
    owners = await _seal_owners(session, {ping.seal_id for ping in batch.pings if ping.seal_id and not ping.mrn})
    movements = await _movements(session, named | {mrns[0] for mrns in owners.values() if len(mrns) == 1})
    registered = await devices.owned(session, {ping.device_id for ping in batch.pings})
    seals: dict[str, set[str]] = {}
    cleared: set[tuple[str | None, str, str | None]] = set()
    pings: list[Ping] = []

    def seals_of(movement: Movement) -> set[str]:
        if movement.mrn not in seals:
            seals[movement.mrn] = {str(seal) for seal in movement.record.get("seals") or []}
        return seals[movement.mrn]

    for index, item in enumerate(batch.pings):
        moment = item.time.astimezone(UTC)
        if moment > latest:
            refusals.append(
                Refusal(
                    422,
                    FieldError(
                        f"/body/pings/{index}/time", "the time is in the future; check the device's clock", "future"
                    ),
                )
            )
        device = registered.get(item.device_id)
        if device is None or device.client_id != client_id:
            # The same answer whether the device is unknown or another client's: nothing learned about others.
            refusals.append(
                Refusal(
                    403,
                    FieldError(
                        f"/body/pings/{index}/device_id",
                        f"device {item.device_id} is not registered to this client; an admin registers it "
                        f"(PUT /v1/devices/{item.device_id})",
                        "not-your-device",
                    ),
                )
            )
            continue
        mrn = item.mrn
        refused_before = len(refusals)
        if mrn is not None:
            movement = movements.get(mrn)
            if movement is None:
                refusals.append(
                    Refusal(422, FieldError(f"/body/pings/{index}/mrn", f"no movement {mrn} at this node", "90"))
                )
            elif item.seal_id is not None and item.seal_id not in seals_of(movement):
                refusals.append(
                    Refusal(
                        422,
                        FieldError(f"/body/pings/{index}/seal_id", f"seal {item.seal_id} is not a seal of {mrn}", "14"),
                    )
                )
        elif item.seal_id is not None:
            carriers = owners.get(item.seal_id, ())
            if len(carriers) == 1:
                mrn = carriers[0]
            elif not carriers:
                refusals.append(
                    Refusal(
                        422,
                        FieldError(
                            f"/body/pings/{index}/seal_id",
                            f"no movement departing here and on the road carries seal {item.seal_id}",
                            "90",
                        ),
                    )
                )
            else:
                refusals.append(
                    Refusal(
                        422,
                        FieldError(
                            f"/body/pings/{index}/seal_id",
                            f"seal {item.seal_id} is on several movements; send the MRN",
                            "14",
                        ),
                    )
                )
        else:
            refusals.append(
                Refusal(422, FieldError(f"/body/pings/{index}/mrn", "name the movement: its MRN or its seal id", "13"))
            )
        named_wrong = len(refusals) > refused_before  # the movement or seal named is wrong: said once is enough
        checked = (mrn, item.device_id, item.seal_id)
        if mrn is not None and mrn in movements and not named_wrong and checked not in cleared:
            movement = movements[mrn]
            refusal = _refusal_for_movement(index, movement, device, item.seal_id, seals=seals_of(movement))
            if refusal is None:
                cleared.add(checked)  # a batch is mostly one device on one movement
            else:
                refusals.append(refusal)
        if mrn is not None and not refusals:
            pings.append(
                Ping(item.device_id, mrn, moment, item.seal_id, item.lat, item.lon, item.speed, item.seal_state)
            )
    if refusals:
        raise _refuse(refusals)
    return pings, movements


# -- storing -----------------------------------------------------------------------------------------------------


async def store(session: AsyncSession, pings: list[Ping]) -> list[Ping]:
    """One bulk insert that skips pings already stored; returns the pings stored now."""
    received_at = clock.utcnow()
    unique: dict[tuple[str, str, datetime], Ping] = {}
    for ping in pings:
        unique.setdefault((ping.device_id, ping.mrn, ping.time), ping)
    if not unique:
        return []
    dialect = dialect_of(session)
    if dialect.arrays:
        # One statement over arrays: its shape does not depend on the batch size, so asyncpg prepares it once,
        # and the server gets one round trip instead of a multi-row VALUES list compiled per batch size. The
        # columns are built straight from the pings (no row dicts: at 1,000 pings a batch that showed in profiles).
        kept = list(unique.values())
        stored = await session.execute(
            _STORE_POSTGRES,
            {
                "received_at": received_at,
                "device_id": [ping.device_id for ping in kept],
                "mrn": [ping.mrn for ping in kept],
                "time": [ping.time for ping in kept],
                "seal_id": [ping.seal_id for ping in kept],
                "lat": [ping.lat for ping in kept],
                "lon": [ping.lon for ping in kept],
                "speed": [ping.speed for ping in kept],
                "seal_state": [ping.seal_state for ping in kept],
            },
        )
        returned = stored.all()
        if len(returned) == len(kept):
            return kept  # all new, the usual case: no need to match each returned row (a cost at 1,000 a batch)
        return [unique[(row.device_id, row.mrn, row.time)] for row in returned]
    rows = [
        {
            "device_id": ping.device_id,
            "mrn": ping.mrn,
            "time": ping.time,
            "seal_id": ping.seal_id,
            "lat": ping.lat,
            "lon": ping.lon,
            "speed": ping.speed,
            "seal_state": ping.seal_state,
            "received_at": received_at,
        }
        for ping in unique.values()
    ]
    table = table_of(TrackingPosition)
    statement = dialect.insert_ignore(table, index_elements=["device_id", "mrn", "time"]).returning(
        table.c.device_id, table.c.mrn, table.c.time
    )
    stored = await session.execute(statement, rows)
    return [unique[(row.device_id, row.mrn, row.time)] for row in stored]


_STORE_POSTGRES = text(
    """
    INSERT INTO tracking_positions (device_id, mrn, time, seal_id, lat, lon, speed, seal_state, received_at)
    SELECT p.device_id, p.mrn, p.time, p.seal_id, p.lat, p.lon, p.speed, p.seal_state, :received_at
      FROM unnest(CAST(:device_id AS text[]), CAST(:mrn AS text[]), CAST(:time AS timestamptz[]),
                  CAST(:seal_id AS text[]), CAST(:lat AS float8[]), CAST(:lon AS float8[]),
                  CAST(:speed AS float8[]), CAST(:seal_state AS text[]))
           AS p(device_id, mrn, time, seal_id, lat, lon, speed, seal_state)
    ON CONFLICT (device_id, mrn, time) DO NOTHING
    RETURNING device_id, mrn, time
    """
).bindparams(bindparam("received_at", type_=UTCDateTime()))
