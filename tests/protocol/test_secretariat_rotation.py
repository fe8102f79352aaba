"""The secretariat's rotation: every node computes the same chair for any moment from the trust list alone.

Dates are computed (from the project's clock, or drawn by hypothesis), never written down: a term that starts on
29 February of the next leap year, terms that cross a year's end, and moments right at a term's boundary.
"""

from __future__ import annotations

import calendar
import itertools
import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.support.keys import TestMember as Member
from tests.support.keys import make_member, signed, trust_body
from transit_window import clock, dates
from transit_window.protocol import jws
from transit_window.protocol.trust import (
    MAX_TERM_MONTHS,
    Secretariat,
    TrustList,
    TrustListBody,
    add_months,
    chair_at,
    term_start,
)

NODES = ("UZ", "KZ", "KG", "TJ", "TM", "AZ")


@pytest.fixture
def members(tmp_path: Path) -> list[Member]:
    return [make_member(node, tmp_path) for node in NODES]


def with_rotation(body: TrustListBody, rotation: dict[str, Any]) -> TrustListBody:
    return TrustListBody.model_validate({**body.model_dump(), "secretariat": rotation})


def next_leap_day() -> date:
    year = next(year for year in itertools.count(clock.utcnow().year) if calendar.isleap(year))
    return date(year, 2, 29)


def rotation_body(members: list[Member], *, starts_on: date, term_months: int = 12) -> TrustListBody:
    return with_rotation(
        trust_body(members),
        {"members": list(NODES), "term_months": term_months, "starts_on": starts_on.isoformat()},
    )


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def test_a_term_starting_on_a_leap_day_starts_on_the_last_of_february_in_common_years(members: list[Member]) -> None:
    leap_day = next_leap_day()
    body = rotation_body(members, starts_on=leap_day)
    assert body.secretariat is not None
    first = chair_at(body, midnight(leap_day))
    assert first is not None
    assert (first.node, first.since, first.next) == ("UZ", midnight(leap_day), "KZ")
    common_year_end = date(leap_day.year + 1, 2, 28)
    assert first.until == midnight(common_year_end)
    assert chair_at(body, midnight(common_year_end) - timedelta(microseconds=1)) == first
    second = chair_at(body, midnight(common_year_end))
    assert second is not None and (second.node, second.next, second.term) == ("KZ", "KG", 1)
    # Four terms later it is a leap year again, and the term starts on the 29th: counted from the start each time.
    fourth = term_start(body.secretariat, 4)
    assert fourth == midnight(date(leap_day.year + 4, 2, 29))
    chair = chair_at(body, fourth)
    assert chair is not None and (chair.node, chair.since) == ("TM", fourth)  # UZ KZ KG TJ, then TM


def test_monthly_terms_cross_the_year_end_and_clamp_to_short_months(members: list[Member]) -> None:
    year = clock.utcnow().year
    december_31 = date(year, 12, 31)
    body = rotation_body(members, starts_on=december_31, term_months=1)
    january = chair_at(body, midnight(date(year + 1, 1, 15)))
    assert january is not None
    assert (january.node, january.since) == ("UZ", midnight(december_31))
    assert january.until == midnight(date(year + 1, 1, 31))
    february_end = calendar.monthrange(year + 1, 2)[1]
    february = chair_at(body, midnight(date(year + 1, 2, 10)))
    assert february is not None
    assert (february.node, february.since, february.until) == (
        "KZ",
        midnight(date(year + 1, 1, 31)),
        midnight(date(year + 1, 2, february_end)),
    )
    # The rotation wraps: the seventh term is the first member's again.
    assert body.secretariat is not None
    seventh = chair_at(body, term_start(body.secretariat, 6))
    assert seventh is not None and (seventh.node, seventh.next) == ("UZ", "KZ")


def test_before_the_first_term_and_without_a_rotation_there_is_no_chair(members: list[Member]) -> None:
    tomorrow = clock.utcnow().date() + timedelta(days=1)
    body = rotation_body(members, starts_on=tomorrow)
    assert chair_at(body, midnight(tomorrow) - timedelta(microseconds=1)) is None
    assert chair_at(body, midnight(tomorrow)) is not None
    assert chair_at(trust_body(members), clock.utcnow()) is None


def test_the_chair_is_the_same_whatever_offset_the_moment_is_written_in(members: list[Member]) -> None:
    today = clock.utcnow().date()
    body = rotation_body(members, starts_on=today, term_months=1)
    assert body.secretariat is not None
    boundary = term_start(body.secretariat, 1)
    # 23:30 the day before in UTC is already the next day in Tashkent: still the first term.
    just_before = (boundary - timedelta(minutes=30)).astimezone(timezone(timedelta(hours=5)))
    assert just_before.date() == boundary.date()
    chair = chair_at(body, just_before)
    assert chair is not None and chair.node == "UZ"


@given(
    starts_on=st.dates(min_value=dates.EARLIEST.date(), max_value=date(dates.LATEST.year - 20, 12, 31)),
    term_months=st.integers(min_value=1, max_value=24),
    count=st.integers(min_value=1, max_value=len(NODES)),
    after=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=365 * 15)),
)
def test_every_moment_falls_in_exactly_one_term_held_in_order(
    starts_on: date, term_months: int, count: int, after: timedelta
) -> None:
    rotation = Secretariat(members=list(NODES[:count]), term_months=term_months, starts_on=starts_on)
    body = TrustListBody.model_construct(secretariat=rotation)  # chair_at reads only the rotation
    moment = midnight(starts_on) + after
    chair = chair_at(body, moment)
    assert chair is not None
    assert chair.since <= moment < chair.until
    assert chair.since == term_start(rotation, chair.term)
    assert chair.until == term_start(rotation, chair.term + 1)
    assert chair.node == rotation.members[chair.term % count]
    assert chair.next == rotation.members[(chair.term + 1) % count]
    since = chair.since.date()
    assert since == add_months(starts_on, chair.term * term_months)
    assert since.day == min(starts_on.day, calendar.monthrange(since.year, since.month)[1])
    following = chair_at(body, chair.until)
    assert following is not None and (following.term, following.node) == (chair.term + 1, chair.next)


def test_a_list_without_a_rotation_serialises_without_the_field(members: list[Member]) -> None:
    trust = signed(trust_body(members), members)
    assert b"secretariat" not in trust.payload
    assert "secretariat" not in orjson.loads(trust.payload)


def test_a_rotation_is_signed_as_written_and_read_back_the_same(members: list[Member]) -> None:
    start = clock.utcnow().date()
    trust = signed(rotation_body(members, starts_on=start), members)
    payload = orjson.loads(trust.payload)
    assert payload["secretariat"] == {"members": list(NODES), "term_months": 12, "starts_on": start.isoformat()}
    again = TrustList.from_json(trust.to_json())
    assert again.payload == trust.payload and again.body.secretariat == trust.body.secretariat
    assert jws.b64url(again.body.payload_bytes()) == jws.b64url(trust.payload)


@pytest.mark.parametrize(
    ("rotation", "says"),
    [
        ({"members": ["UZ", "GE"]}, "GE, not member(s) of this version"),
        ({"members": ["UZ", "KZ", "UZ"]}, "appears twice"),
        ({"members": []}, "at least 1"),
        ({"members": ["uz"]}, "not a node id"),
        ({"members": ["UZ"], "term_months": 0}, "greater than or equal to 1"),
        ({"members": ["UZ"], "term_months": MAX_TERM_MONTHS + 1}, "less than or equal to"),
        ({"members": ["UZ"], "term_months": "12"}, "valid integer"),
        ({"members": ["UZ"], "starts_on": "midnight"}, "YYYY-MM-DD"),
        ({"members": ["UZ"], "starts_on": "datetime"}, "YYYY-MM-DD"),
        ({"members": ["UZ"], "starts_on": "number"}, "YYYY-MM-DD"),
        ({"members": ["UZ"], "starts_on": "too-early"}, "outside the corridor's range"),
        ({"members": ["UZ"], "chair": "UZ"}, "Extra inputs are not permitted"),
    ],
)
def test_a_rotation_that_two_members_could_read_two_ways_is_refused(
    members: list[Member], rotation: dict[str, Any], says: str
) -> None:
    today = clock.utcnow().date()
    spelled = {
        "midnight": f"{today.isoformat()}T00:00:00Z",
        "datetime": midnight(today),
        "number": int(midnight(today).timestamp()),
        "too-early": (dates.EARLIEST.date() - timedelta(days=1)).isoformat(),
    }
    given_on = rotation.get("starts_on", today.isoformat())
    rotation = {**rotation, "starts_on": spelled.get(given_on, given_on)}
    with pytest.raises(ValidationError, match=re.escape(says)):
        with_rotation(trust_body(members), rotation)
