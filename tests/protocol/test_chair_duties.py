"""The secretariat's duties run only on the chair's node: the renewal before the trust list expires, reminders of
what still waits for members' signatures, and the lapse of proposals nobody completed.

Given KZ, UZ and TM with the rotation UZ → KZ → TM from today and a version valid for 90 days, when the project's
clock moves to 30 days before the expiry, then Uzbekistan's node (the chair) proposes the renewal once, the others'
nodes do nothing, a day later the chair reminds the members that have not signed, and once Kazakhstan approves,
every node holds the renewed version.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from tests.support.inprocess import InProcessCorridor
from tests.support.keys import TestMember as Member
from tests.support.keys import signed
from transit_window import clock
from transit_window.protocol.proposals import PROPOSAL_LIFETIME, RENEW_AHEAD, chair_duties
from transit_window.protocol.trust import TrustListBody

VALID_FOR = timedelta(days=90)


@pytest.fixture
def restore_clock() -> Iterator[None]:
    yield
    clock.set_offset(timedelta(0))


def move_clock_to(moment: datetime) -> None:
    """The project's clock (this process) reads `moment` now."""
    clock.set_offset(timedelta(0))
    clock.set_offset(moment - clock.utcnow())


async def adopt_rotation(corridor: InProcessCorridor, members: dict[str, Member]) -> None:
    uz = corridor["UZ"]
    current = uz.node.trust.body
    now = clock.utcnow()
    body = TrustListBody.model_validate(
        {
            **current.model_dump(),
            "version": current.version + 1,
            "issued_at": now,
            "expires_at": now + VALID_FOR,
            "secretariat": {"members": ["UZ", "KZ", "TM"], "starts_on": now.date().isoformat()},
        }
    )
    version = signed(body, [members[node] for node in ("KZ", "UZ", "TM")])
    response = await uz.client.post("/v1/admin/trust-list", json=version.document(), headers=uz.admin)
    assert response.status_code == 200, response.text
    await corridor.deliver_all()


async def test_the_chair_proposes_the_renewal_once_reminds_and_the_others_adopt_it(
    corridor: InProcessCorridor, members: dict[str, Member], restore_clock: None
) -> None:
    await adopt_rotation(corridor, members)
    kz, uz, tm = corridor["KZ"], corridor["UZ"], corridor["TM"]
    for node in (kz, uz, tm):
        assert (await chair_duties(node.node)).renewal is None  # 90 days left: nothing due

    expires = uz.node.trust.body.expires_at
    move_clock_to(expires - RENEW_AHEAD + timedelta(hours=1))
    assert (await chair_duties(kz.node)).renewal is None  # not the chair
    assert (await chair_duties(tm.node)).renewal is None
    first = await chair_duties(uz.node)
    assert first.renewal is not None
    assert (await chair_duties(uz.node)).renewal is None  # one open renewal is enough
    await corridor.deliver_all()
    for node in (kz, tm):
        listed = (await node.client.get("/v1/corridor/proposals", params={"state": "open"}, headers=node.admin)).json()
        assert [(item["id"], item["proposer"], item["version"]) for item in listed["items"]] == [
            (first.renewal, "UZ", 3)
        ]

    move_clock_to(expires - RENEW_AHEAD + timedelta(days=1, hours=2))
    reminded = await chair_duties(uz.node)
    assert (reminded.renewal, reminded.reminded) == (None, 2)
    assert (await chair_duties(uz.node)).reminded == 0  # once a day

    approved = await kz.client.post(f"/v1/corridor/proposals/{first.renewal}/approve", headers=kz.admin)
    assert approved.status_code == 200 and approved.json()["adopted"] is True
    await corridor.deliver_all()
    for node in (kz, uz, tm):
        assert node.node.trust.version == 3
        assert node.node.trust.body.expires_at > expires


async def test_a_proposal_nobody_completes_lapses(
    corridor: InProcessCorridor, members: dict[str, Member], restore_clock: None
) -> None:
    await adopt_rotation(corridor, members)
    kz = corridor["KZ"]
    created = await kz.client.post("/v1/corridor/proposals", json={"changes": [{"kind": "renew"}]}, headers=kz.admin)
    proposal = created.json()
    clock.set_offset(PROPOSAL_LIFETIME + timedelta(minutes=1))
    assert (await chair_duties(kz.node)).expired == 1
    shown = (await kz.client.get(f"/v1/corridor/proposals/{proposal['id']}", headers=kz.admin)).json()
    assert (shown["state"], shown["closed_reason"]) == ("expired", "lapsed before it reached the threshold")
    late = await kz.client.post(f"/v1/corridor/proposals/{proposal['id']}/approve", headers=kz.admin)
    assert late.status_code == 409
