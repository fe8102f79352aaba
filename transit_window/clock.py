"""The one clock of the node. Everything that needs "now" asks here, so tests can move time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def utcnow() -> datetime:
    return datetime.now(UTC) + _offset


def set_offset(offset: timedelta) -> None:
    """Shift this process's clock (tests and the clock-skew drill only)."""
    global _offset
    _offset = offset


def isoformat(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, millisecond precision: the corridor's one time format."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time {value!r} has no offset; the corridor only accepts RFC 3339 with an offset")
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00:00+14:00 is in year 0: callers handle ValueError, not this
        raise ValueError(f"time {value!r} cannot be expressed in UTC") from exc
