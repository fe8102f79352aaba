"""`GET /v1/corridor/secretariat`: once the members adopt a version with a rotation, every node names the same chair.

Given KZ, UZ and TM on one dialect, when a version carrying the rotation UZ → KZ → TM (monthly, from today) is adopted
by UZ and spread to the others, then each node says UZ holds the secretariat since today's midnight and KZ is next;
and when the clock passes the term's end, each says KZ.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.inprocess import InProcessCorridor
from tests.support.keys import TestMember as Member
from tests.support.keys import signed
from transit_window import clock
from transit_window.protocol.trust import TrustListBody

SECRETARIAT = "/v1/corridor/secretariat"
ROTATION = ["UZ", "KZ", "TM"]


@pytest.fixture
def restore_clock() -> Iterator[None]:
    yield
    clock.set_offset(timedelta(0))


async def adopt_rotation(corridor: InProcessCorridor, members: dict[str, Member], *, term_months: int) -> None:
    uz = corridor["UZ"]
    current = uz.node.trust.body
    now = clock.utcnow()
    body = TrustListBody.model_validate(
        {
            **current.model_dump(),
            "version": current.version + 1,
            "issued_at": now,
            "expires_at": now + timedelta(days=90),
            "secretariat": {"members": ROTATION, "term_months": term_months, "starts_on": now.date().isoformat()},
        }
    )
    version = signed(body, [members[node] for node in ("KZ", "UZ", "TM")])
    response = await uz.client.post("/v1/admin/trust-list", json=version.document(), headers=uz.admin)
    assert response.status_code == 200, response.text
    await corridor.deliver_all()


async def test_without_a_rotation_the_answer_is_a_problem_that_says_so(corridor: InProcessCorridor) -> None:
    response = await corridor["KZ"].client.get(SECRETARIAT)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "trust list version 1 has no secretariat rotation" in response.json()["detail"]


async def test_every_node_names_the_same_chair_and_the_next(
    corridor: InProcessCorridor, members: dict[str, Member], restore_clock: None
) -> None:
    await adopt_rotation(corridor, members, term_months=1)
    today = clock.utcnow().date()
    midnight = datetime(today.year, today.month, today.day, tzinfo=UTC)
    answers = [(await corridor[node].client.get(SECRETARIAT)).json() for node in ("KZ", "UZ", "TM")]
    for answer in answers:
        assert answer["trust_version"] == 2
        assert (answer["chair"], answer["chair_name"], answer["next"]) == ("UZ", "UZ", "KZ")
        assert clock.parse(answer["since"]) == midnight
        assert clock.parse(answer["until"]) > clock.utcnow()
        assert answer["rotation"] == {"members": ROTATION, "term_months": 1, "starts_on": today.isoformat()}
    assert len({(answer["since"], answer["until"]) for answer in answers}) == 1

    term_ends = clock.parse(answers[0]["until"])
    clock.set_offset(term_ends - clock.utcnow() + timedelta(minutes=1))
    later = (await corridor["TM"].client.get(SECRETARIAT)).json()
    assert (later["chair"], later["next"], later["since"]) == ("KZ", "TM", answers[0]["until"])
