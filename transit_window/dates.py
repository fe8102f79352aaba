"""The range of dates and times the corridor accepts from anyone: 2000-01-01 (inclusive) to 2100-01-01 (exclusive).

Every date and time the API takes (bodies, query parameters, cursors) is one of these types or goes through
`within_corridor`. Outside the range a date is a typing mistake or a probe, never a customs event; and near
`datetime.min`/`max` converting an offset to UTC overflows (`0001-01-01T00:00:00+14:00` is in year 0), which was a
500. A low-level module: features import it, it imports no feature.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, WithJsonSchema

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive
RANGE_TEXT = "from 2000-01-01T00:00:00Z up to (not including) 2100-01-01T00:00:00Z"


def within_corridor(moment: datetime) -> datetime:
    """`moment` when it lies in the corridor's range (aware only); a ValueError saying the range otherwise.

    The local year is checked before converting: a year far out of range is refused without the conversion that
    would overflow at the ends of `datetime`'s range."""
    if moment.tzinfo is None:
        raise ValueError("a time needs a UTC offset (RFC 3339)")
    if EARLIEST.year < moment.year < LATEST.year - 1:
        return moment  # no offset moves it out of range; comparing aware times across zones is the costly part
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


# RFC 3339 §5.6 `date-time`: a full date, `T`, a full time with an optional fraction of at most 9 digits, and `Z`
# or a numeric offset (lower-case `t` and `z` are allowed by its note). Nothing else: pydantic alone also reads a
# number, or a string of digits, as seconds since 1970, which a peer used to JWT's NumericDate `iat` might send.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)
RFC3339_TEXT = "a JSON string in RFC 3339 with an offset, e.g. 2026-05-04T06:30:00.000Z"


def rfc3339_text(value: object) -> object:
    """Let through a datetime (built in code) or an RFC 3339 string; refuse anything else a peer may send."""
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.fullmatch(value)):
        return value
    raise ValueError(f"a time is {RFC3339_TEXT}")


# The times of the protocol's own fields (an envelope's `iat`, a receipt's `at`, a signed request's `iat`, a
# checkpoint's `at`): PROTOCOL.md gives their type as exactly this.
Rfc3339 = Annotated[
    AwareDatetime,
    BeforeValidator(rfc3339_text),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
