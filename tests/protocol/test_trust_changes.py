"""Proposed changes to the trust list: each kind builds version N+1 from N, the rules refuse what would break the
corridor, and the difference an admin reads is computed from the two versions.

Given KZ, UZ and TM (threshold 2) and UZ holding the secretariat, when a change is drafted, then the candidate is
exactly one version newer, valid as long as the current one was, and says in words what it changes.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from tests.support.keys import TestMember as Member
from tests.support.keys import make_member, signed, trust_body
from transit_window import clock
from transit_window.protocol.trust import TrustError, TrustList, TrustListBody, verify_successor
from transit_window.protocol.trust_changes import (
    ALREADY_MEMBER,
    BELOW_THRESHOLD,
    CHAIR_REMOVED,
    EXPIRED_BASE,
    NOT_A_CHANGE,
    NOT_SUCCESSOR,
    UNKNOWN_KEY,
    UNKNOWN_MEMBER,
    Change,
    ChangeRefused,
    build_successor,
    check_proposal,
    describe,
)

CHANGES: TypeAdapter[list[Change]] = TypeAdapter(list[Change])


@pytest.fixture
def people(tmp_path: Path) -> dict[str, Member]:
    return {node: make_member(node, tmp_path) for node in ("KZ", "UZ", "TM", "GE")}


@pytest.fixture
def current(people: dict[str, Member]) -> TrustListBody:
    founders = [people[node] for node in ("KZ", "UZ", "TM")]
    body = trust_body(founders, threshold=2, issued_at=clock.utcnow() - timedelta(days=1))
    today = clock.utcnow().date().isoformat()
    return TrustListBody.model_validate(
        {**body.model_dump(), "secretariat": {"members": ["UZ", "KZ", "TM"], "starts_on": today}}
    )


def draft(current: TrustListBody, *changes: dict[str, Any]) -> TrustListBody:
    return build_successor(current, CHANGES.validate_python(list(changes)))


def refused(current: TrustListBody, *changes: dict[str, Any]) -> ChangeRefused:
    with pytest.raises(ChangeRefused) as caught:
        draft(current, *changes)
    return caught.value


def test_admitting_a_member_builds_the_successor_the_members_and_the_newcomer_sign(
    current: TrustListBody, people: dict[str, Member]
) -> None:
    ge = people["GE"]
    candidate = draft(
        current,
        {"kind": "admit", "node": "GE", "name": "Georgia", "endpoint": ge.endpoint, "jwk": ge.key.public_jwk},
        {"kind": "threshold", "threshold": 3},
    )
    assert candidate.version == current.version + 1
    assert candidate.expires_at - candidate.issued_at == current.expires_at - current.issued_at
    assert [member.node for member in candidate.members] == ["KZ", "UZ", "TM", "GE"]
    assert describe(current, candidate) == [
        f"admit GE Georgia, key kid {ge.key.kid}, endpoint {ge.endpoint}",
        "threshold 2 → 3",
        f"expires {clock.isoformat(current.expires_at)} → {clock.isoformat(candidate.expires_at)}",
    ]
    base = signed(current, [people["KZ"], people["UZ"], people["TM"]])
    version = signed(candidate, [people["KZ"], people["UZ"], people["GE"]])
    verify_successor(base, version, now=clock.utcnow())
    short = signed(candidate, [people["KZ"], people["UZ"]])
    with pytest.raises(TrustError, match="signed by 2 member"):
        verify_successor(base, short, now=clock.utcnow())


def test_rotating_a_key_adds_the_new_one_and_retires_the_old_after_the_overlap(
    current: TrustListBody, tmp_path: Path
) -> None:
    spare = make_member("KZ", tmp_path, name="next")
    old_kid = current.members[0].keys[0].kid
    candidate = draft(current, {"kind": "rotate-key", "node": "KZ", "jwk": spare.key.public_jwk, "overlap_days": 3})
    keys = candidate.members[0].keys
    assert [key.kid for key in keys] == [old_kid, spare.key.kid]
    assert keys[0].not_after == candidate.issued_at + timedelta(days=3)
    assert keys[1].not_before == candidate.issued_at
    assert describe(current, candidate)[:2] == [
        f"KZ: key kid {old_kid} retires at {clock.isoformat(candidate.issued_at + timedelta(days=3))}",
        f"KZ: new key kid {spare.key.kid}, valid from {clock.isoformat(candidate.issued_at)}",
    ]


def test_revoking_a_key_takes_effect_when_the_version_is_issued(current: TrustListBody) -> None:
    kid = current.members[2].keys[0].kid
    candidate = draft(current, {"kind": "revoke-key", "node": "TM", "kid": kid})
    assert candidate.members[2].keys[0].revoked_at == candidate.issued_at
    assert describe(current, candidate)[0] == f"TM: key kid {kid} revoked at {clock.isoformat(candidate.issued_at)}"


def test_an_endpoint_a_rotation_and_a_renewal_are_changes_too(current: TrustListBody) -> None:
    moved = draft(current, {"kind": "endpoint", "node": "TM", "endpoint": "https://tm.corridor.test"})
    assert describe(current, moved)[0] == f"TM: endpoint {current.members[2].endpoint} → https://tm.corridor.test"
    assert current.secretariat is not None
    starts_on = current.secretariat.starts_on.isoformat()
    rotated = draft(current, {"kind": "rotation", "secretariat": {"members": ["KZ", "UZ"], "starts_on": starts_on}})
    assert describe(current, rotated)[0] == (
        f"secretariat UZ → KZ → TM every 12 month(s) from {starts_on} → KZ → UZ every 12 month(s) from {starts_on}"
    )
    renewed = draft(current, {"kind": "renew"})
    assert renewed.expires_at > current.expires_at
    assert describe(current, renewed) == [
        f"expires {clock.isoformat(current.expires_at)} → {clock.isoformat(renewed.expires_at)}"
    ]


def test_removing_a_member_takes_it_out_of_the_rotation(current: TrustListBody) -> None:
    candidate = draft(current, {"kind": "remove", "node": "TM"})
    assert [member.node for member in candidate.members] == ["KZ", "UZ"]
    assert candidate.secretariat is not None and candidate.secretariat.members == ["UZ", "KZ"]
    assert describe(current, candidate)[0] == "remove TM TM"


@pytest.mark.parametrize(
    ("changes", "rule", "says"),
    [
        ([{"kind": "remove", "node": "UZ"}], CHAIR_REMOVED, "UZ holds the secretariat until"),
        ([{"kind": "threshold", "threshold": 4}], BELOW_THRESHOLD, "leave 3 member(s) and a threshold of 4"),
        (
            [{"kind": "threshold", "threshold": 3}, {"kind": "remove", "node": "TM"}],
            BELOW_THRESHOLD,
            "leave 2 member(s) and a threshold of 3",
        ),
        ([{"kind": "remove", "node": "GE"}], UNKNOWN_MEMBER, "GE is not a member"),
        ([{"kind": "revoke-key", "node": "KZ", "kid": "no-such-kid"}], UNKNOWN_KEY, "KZ has no key no-such-kid"),
        ([{"kind": "endpoint", "node": "GE", "endpoint": "https://ge.test"}], UNKNOWN_MEMBER, "GE is not a member"),
        ([], NOT_A_CHANGE, "at least one change"),
    ],
)
def test_a_change_that_breaks_a_rule_is_refused_with_the_rule(
    current: TrustListBody, changes: list[dict[str, Any]], rule: str, says: str
) -> None:
    error = refused(current, *changes)
    assert error.rule == rule
    assert says in error.detail, error.detail


def test_revoking_keys_until_fewer_members_than_the_threshold_can_sign_is_refused(current: TrustListBody) -> None:
    kz, tm = current.members[0].keys[0].kid, current.members[2].keys[0].kid
    error = refused(
        current, {"kind": "revoke-key", "node": "KZ", "kid": kz}, {"kind": "revoke-key", "node": "TM", "kid": tm}
    )
    assert (error.rule, error.detail.split(":")[0]) == (
        BELOW_THRESHOLD,
        f"version {current.version + 1} would have 1 member(s) with a valid key (UZ) and a threshold of 2",
    )


def test_admitting_a_member_twice_or_with_a_key_that_is_not_ed25519_is_refused(
    current: TrustListBody, people: dict[str, Member]
) -> None:
    kz = people["KZ"]
    again = refused(current, {"kind": "admit", "node": "KZ", "name": "K", "endpoint": kz.endpoint, "jwk": {}})
    assert again.rule == ALREADY_MEMBER
    for jwk in ({"kty": "RSA", "crv": "Ed25519", "x": "AA"}, {"kty": "OKP", "crv": "Ed25519", "x": "not-a-key"}):
        bad = refused(current, {"kind": "admit", "node": "GE", "name": "Georgia", "endpoint": kz.endpoint, "jwk": jwk})
        assert bad.rule == NOT_A_CHANGE
    shared = refused(
        current, {"kind": "admit", "node": "GE", "name": "Georgia", "endpoint": kz.endpoint, "jwk": kz.key.public_jwk}
    )
    assert (shared.rule, "a key appears twice" in shared.detail) == (NOT_A_CHANGE, True)


def test_a_proposal_on_an_expired_base_or_not_the_next_version_is_refused(current: TrustListBody) -> None:
    candidate = draft(current, {"kind": "renew"})
    skipped = candidate.model_copy(update={"version": current.version + 2})
    rolled_back = candidate.model_copy(update={"version": current.version})
    for wrong in (skipped, rolled_back):
        with pytest.raises(ChangeRefused, match=f"must be version {current.version + 1}") as caught:
            check_proposal(current, wrong, now=clock.utcnow())
        assert caught.value.rule == NOT_SUCCESSOR
    after_expiry = current.expires_at + timedelta(seconds=1)
    with pytest.raises(ChangeRefused, match="expired at") as expired:
        build_successor(current, CHANGES.validate_python([{"kind": "renew"}]), now=after_expiry)
    assert expired.value.rule == EXPIRED_BASE


def test_a_change_of_an_unknown_kind_or_with_extra_fields_is_not_a_change() -> None:
    for changes in ([{"kind": "crown", "node": "KZ"}], [{"kind": "renew", "years": 5}], [{"node": "KZ"}]):
        with pytest.raises(ValidationError):
            CHANGES.validate_python(changes)


def test_the_built_version_signs_and_reads_back_as_the_same_bytes(current: TrustListBody) -> None:
    candidate = draft(current, {"kind": "renew"})
    version = TrustList.from_body(candidate)
    assert TrustList.from_json(version.to_json()).payload == version.payload
