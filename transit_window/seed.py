"""Synthetic movements and tracking events for benchmarks (`transit-window tracking seed`).

Rows are written with PostgreSQL's COPY (asyncpg's `copy_records_to_table`) — at millions of rows, INSERTs cost
minutes; on SQLite with executemany. Seeded MRNs use the office part `BNCH`, so they never collide with real ones.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from transit_window import clock
from transit_window.codes import generate_mrn
from transit_window.db.base import table_of
from transit_window.db.dialect import dialect_of_engine
from transit_window.declarations.interface import Movement
from transit_window.tracking import vocabulary
from transit_window.tracking.events import offset_text, step_event_id
from transit_window.tracking.models import TrackingEvent

ROUTE = ["KZALA001", "KZZHZ001", "UZGIS001", "UZALT001", "TMFAR001", "TMKRW001", "AZALA001", "AZBAK001"]
KINDS = ["released", "exit", "entry", "exit", "entry", "exit", "entry", "arrived"]
BATCH = 5000


def _movement_row(mrn: str, now: Any) -> dict[str, Any]:
    return {
        "mrn": mrn,
        "role": "departure",
        "status": "in_transit",
        "departure_country": "KZ",
        "departure_office": ROUTE[0],
        "destination_office": ROUTE[-1],
        "countries": ["KZ", "UZ", "TM", "AZ"],
        "offices": ROUTE,
        "record": {"seals": [f"SEAL-{mrn[-8:]}"], "containers": [], "vehicle": {"plate": "BENCH01"}},
        "grn": None,
        "guarantee_amount": None,
        "guarantee_currency": None,
        "limit_date": date.today() + timedelta(days=30),
        "client_id": None,
        "declarant_id": "230340000126",
        "created_at": now,
        "updated_at": now,
    }


def event_row(*, event_id: str, mrn: str, kind: str, office: str, at: datetime, vehicle: str) -> dict[str, Any]:
    """One `tracking_events` row of a step recorded and signed in the office's country, for writing straight into
    a database (benchmarks here, the browser test's finished journey)."""
    words = vocabulary.of(kind)
    return {
        "id": event_id,
        "mrn": mrn,
        "kind": kind,
        "event_time": at,
        "event_time_zone_offset": offset_text(office[:2], at),
        "record_time": at,
        "office": office,
        "country": office[:2],
        "lat": None,
        "lon": None,
        "biz_step": words.biz_step,
        "disposition": words.disposition,
        "dcsa_code": words.dcsa,
        "rec24_code": words.rec24,
        "signed_by": office[:2],
        "envelope_id": None,
        "containers": {"containers": [], "vehicle": vehicle, "trailer": None},
        "corrects": None,
        "details": {},
    }


def _event_rows(mrn: str, count: int, start: Any) -> list[dict[str, Any]]:
    rows = []
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        office = ROUTE[index % len(ROUTE)]
        rows.append(
            event_row(
                event_id=step_event_id(mrn, f"{kind}-{index}", office),
                mrn=mrn,
                kind=kind,
                office=office,
                at=start + timedelta(minutes=17 * index),
                vehicle="BENCH01",
            )
        )
    return rows


async def seed(
    engine: AsyncEngine, *, movements: int, events: int, progress: Callable[[int], None] | None = None
) -> list[str]:
    """Insert `movements` movements with `events` events spread over them; returns the MRNs."""
    per_movement = max(1, events // movements)
    now = clock.utcnow()
    rng = random.Random(7)
    base_serial = rng.randrange(10_000_000, 90_000_000)
    mrns = [
        generate_mrn(year=now.year % 100, country="KZ", serial=base_serial + i, office_part="BNCH")
        for i in range(movements)
    ]
    postgres = dialect_of_engine(engine).name == "postgresql"  # asyncpg's COPY: a driver call, not a capability
    for start in range(0, movements, BATCH // per_movement or 1):
        chunk = mrns[start : start + max(1, BATCH // per_movement)]
        movement_rows = [_movement_row(mrn, now) for mrn in chunk]
        event_rows = [
            row for mrn in chunk for row in _event_rows(mrn, per_movement, now - timedelta(days=rng.randrange(0, 365)))
        ]
        async with engine.begin() as connection:
            if postgres:
                raw = (await connection.get_raw_connection()).driver_connection
                await _copy(raw, "movements", movement_rows)
                await _copy(raw, "tracking_events", event_rows)
            else:
                await connection.execute(insert(table_of(Movement)), movement_rows)
                await connection.execute(insert(table_of(TrackingEvent)), event_rows)
        if progress is not None:
            progress(len(event_rows))
    return mrns


async def _copy(raw: Any, table: str, rows: list[dict[str, Any]]) -> None:
    import json

    columns = list(rows[0])
    records = [
        tuple(json.dumps(value) if isinstance(value, dict | list) else value for value in row.values()) for row in rows
    ]
    await raw.copy_records_to_table(table, records=records, columns=columns)
