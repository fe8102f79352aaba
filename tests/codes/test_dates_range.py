"""`within_corridor` answers as its definition does for every aware time: in [2000-01-01Z, 2100-01-01Z).

The function skips the cross-zone comparison for years that no offset can move out of range; this checks that
shortcut against the plain comparison, at the edges above all (the years 1999, 2000, 2099 and 2100 with offsets up
to ±23:59, which carry a local date across a boundary)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transit_window.dates import EARLIEST, LATEST, within_corridor

offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
edge_years = st.sampled_from([1, 1999, 2000, 2001, 2098, 2099, 2100, 9999])
any_years = st.integers(min_value=1, max_value=9999)


def defined(moment: datetime) -> bool:
    try:
        return EARLIEST <= moment.astimezone(UTC) < LATEST
    except OverflowError:
        return False


@given(
    year=st.one_of(edge_years, any_years),
    month=st.integers(1, 12),
    day=st.integers(1, 28),
    minute=st.integers(0, 24 * 60 - 1),
    zone=offsets,
)
def test_agrees_with_the_definition(year: int, month: int, day: int, minute: int, zone: timezone) -> None:
    check(datetime(year, month, day, minute // 60, minute % 60, tzinfo=zone))


@given(
    boundary=st.sampled_from([EARLIEST, LATEST]),
    shift=st.integers(min_value=-3 * 24 * 60, max_value=3 * 24 * 60).map(lambda minutes: timedelta(minutes=minutes)),
    zone=offsets,
)
def test_agrees_near_the_boundaries(boundary: datetime, shift: timedelta, zone: timezone) -> None:
    check((boundary + shift).astimezone(zone))


def check(moment: datetime) -> None:
    if defined(moment):
        assert within_corridor(moment) is moment
    else:
        with pytest.raises(ValueError, match="outside the corridor's range"):
            within_corridor(moment)


def test_the_edges() -> None:
    plus5 = timezone(timedelta(hours=5))
    assert within_corridor(datetime(2000, 1, 1, 5, 0, tzinfo=plus5))  # 2000-01-01T00:00Z, the first moment
    with pytest.raises(ValueError, match="outside"):
        within_corridor(datetime(2000, 1, 1, 4, 59, tzinfo=plus5))  # 1999-12-31T23:59Z
    assert within_corridor(datetime(2099, 12, 31, 23, 59, tzinfo=UTC))
    with pytest.raises(ValueError, match="outside"):
        within_corridor(datetime(2099, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))))  # 2100-01-01T04:00Z
    with pytest.raises(ValueError, match="UTC offset"):
        within_corridor(datetime(2050, 1, 1))  # a naive time: the point of the check
