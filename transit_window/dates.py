"""The range of dates and times the corridor accepts from anyone: 2000-01-01 (inclusive) to 2100-01-01 (exclusive).

Every date and time the API takes (bodies, query parameters, cursors) is one of these types or goes through
`within_corridor`. Outside the range a date is a typing mistake or a probe, never a customs event; and near
`datetime.min`/`max` converting an offset to UTC overflows (`0001-01-01T00:00:00+14:00` is in year 0), which was a
500. A low-level module: features import it, it imports no feature.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, WithJsonSchema

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive
RANGE_TEXT = "from 2000-01-01T00:00:00Z up to (not including) 2100-01-01T00:00:00Z"


def within_corridor(moment: datetime) -> datetime:
    """`moment` when it lies in the corridor's range (aware only); a ValueError saying the range otherwise.

    The local year is checked before converting: a year far out of range is refused without the conversion that
    would overflow at the ends of `datetime`'s range."""
    if moment.tzinfo is None:
        raise ValueError("a time needs a UTC offset (RFC 3339)")
    if not EARLIEST.year - 1 <= moment.year <= LATEST.year or not EARLIEST <= moment < LATEST:
        raise ValueError(f"{moment.isoformat()} is outside the corridor's range: times are {RANGE_TEXT}")
    return moment


def within_corridor_date(day: date) -> date:
    if not EARLIEST.date() <= day < LATEST.date():
        raise ValueError(f"{day.isoformat()} is outside the corridor's range: dates are 2000-01-01 to 2099-12-31")
    return day


# The bounds are in the published schema too (`formatMinimum`/`formatMaximum`, as JSON Schema validators that know
# formats read them), so a client sees the range before it is refused.
CorridorDatetime = Annotated[
    AwareDatetime,
    AfterValidator(within_corridor),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "formatMinimum": "2000-01-01T00:00:00Z",
            "formatExclusiveMaximum": "2100-01-01T00:00:00Z",
            "description": f"RFC 3339 with an offset, {RANGE_TEXT}",
        }
    ),
]
CorridorDate = Annotated[
    date,
    AfterValidator(within_corridor_date),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            "formatMinimum": "2000-01-01",
            "formatMaximum": "2099-12-31",
            "description": "A calendar date from 2000-01-01 to 2099-12-31",
        }
    ),
]
