"""The trust list: who may speak for a country changes only by a fresh, newer, threshold-signed version.

The first half checks `verify_genesis` and `verify_successor` directly; the second half goes through a node, by the
operator's `POST /v1/admin/trust-list` (a 409 problem when refused) and by a peer's `corridor.trust-update` message
(a signed `rejected` receipt when refused). Every refusal leaves the stored versions and the node's trust untouched.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.support.inprocess import InProcessCorridor, InProcessNode
from tests.support.keys import TestMember as Member
from tests.support.keys import make_member, signed, trust_body
from transit_window import clock
from transit_window.ids import new_id
from transit_window.protocol.envelope import digest_of, seal, verify_receipt
from transit_window.protocol.keys import SigningKey
from transit_window.protocol.models import InboxMessage, OutboxMessage, TrustVersion
from transit_window.protocol.trust import (
    TrustError,
    TrustKey,
    TrustList,
    TrustListBody,
    TrustMember,
    verify_genesis,
    verify_successor,
)

INBOX = "/v1/corridor/messages"
TRUST = "/v1/admin/trust-list"
FOUNDERS = ("KZ", "UZ", "TM")


def successor(
    current: TrustList,
    signers: list[SigningKey],
    *,
    version: int | None = None,
    members: list[TrustMember] | None = None,
    threshold: int | None = None,
    issued_at: datetime | None = None,
    valid_for: timedelta = timedelta(days=30),
) -> TrustList:
    """A next version of `current` (same members unless given), signed by `signers`."""
    issued = issued_at or clock.utcnow()
    body = TrustListBody.model_validate(
        {
            "version": current.version + 1 if version is None else version,
            "issued_at": issued,
            "expires_at": issued + valid_for,
            "threshold": threshold or current.body.threshold,
            "members": members if members is not None else current.body.members,
        }
    )
    trust = TrustList.from_body(body)
    for key in signers:
        trust.sign(key)
    return trust


def with_keys(members: list[TrustMember], node: str, keys: list[TrustKey]) -> list[TrustMember]:
    return [member.model_copy(update={"keys": keys}) if member.node == node else member for member in members]


def keys_of_member(trust: TrustList, node: str) -> list[TrustKey]:
    member = trust.member(node)
    assert member is not None
    return member.keys


def new_key(key: SigningKey, *, not_before: datetime) -> TrustKey:
    return TrustKey(kid=key.kid, jwk=key.public_jwk, not_before=not_before)


def keys_of(members: dict[str, Member], *nodes: str) -> list[SigningKey]:
    return [members[node].key for node in nodes]


@pytest.fixture
def version1(members: dict[str, Member]) -> TrustList:
    founders = [members[node] for node in FOUNDERS]
    return signed(trust_body(founders, threshold=2), founders)


# -- verify_genesis and verify_successor ---------------------------------------------------------------------------


def test_genesis_is_accepted_only_with_the_pinned_hash(version1: TrustList) -> None:
    now = clock.utcnow()
    verify_genesis(version1, pinned_sha256=version1.sha256.upper(), now=now)
    with pytest.raises(TrustError, match="does not match the pinned"):
        verify_genesis(version1, pinned_sha256="0" * 64, now=now)
    with pytest.raises(TrustError, match="TW_GENESIS_SHA256"):
        verify_genesis(version1, pinned_sha256="", now=now)


def test_genesis_below_its_own_threshold_or_expired_is_refused(members: dict[str, Member]) -> None:
    founders = [members[node] for node in FOUNDERS]
    one_signature = signed(trust_body(founders, threshold=2), founders[:1])
    with pytest.raises(TrustError, match=r"signed by 1 member\(s\) of itself \(KZ\); the threshold is 2"):
        verify_genesis(one_signature, pinned_sha256=one_signature.sha256, now=clock.utcnow())
    stale = signed(trust_body(founders, threshold=2, valid_for=timedelta(days=1)), founders)
    with pytest.raises(TrustError, match="expired at"):
        verify_genesis(stale, pinned_sha256=stale.sha256, now=clock.utcnow() + timedelta(days=2))


def test_successor_signed_by_the_threshold_is_accepted(version1: TrustList, members: dict[str, Member]) -> None:
    verify_successor(version1, successor(version1, keys_of(members, "KZ", "UZ")), now=clock.utcnow())


def test_successor_with_fewer_signatures_than_the_threshold_is_refused(
    version1: TrustList, members: dict[str, Member]
) -> None:
    lonely = successor(version1, keys_of(members, "KZ"))
    with pytest.raises(
        TrustError, match=r"signed by 1 member\(s\) of the current version 1 \(KZ\); the threshold is 2"
    ):
        verify_successor(version1, lonely, now=clock.utcnow())


def test_one_member_signing_with_many_keys_counts_once(
    version1: TrustList, members: dict[str, Member], tmp_path: Path
) -> None:
    spare = make_member("KZ", tmp_path, name="spare")
    now = clock.utcnow()
    kz_keys = [*keys_of_member(version1, "KZ"), new_key(spare.key, not_before=now - timedelta(hours=1))]
    version2 = successor(version1, keys_of(members, *FOUNDERS), members=with_keys(version1.body.members, "KZ", kz_keys))
    version3 = successor(version2, [members["KZ"].key, spare.key])
    with pytest.raises(TrustError, match=r"signed by 1 member\(s\)"):
        verify_successor(version2, version3, now=now)


def test_signatures_of_strangers_and_forged_signatures_do_not_count(
    version1: TrustList, members: dict[str, Member]
) -> None:
    candidate = successor(version1, keys_of(members, "KZ", "XX"))
    forged = dict(candidate.signatures[0])
    forged["signature"] = candidate.signatures[1]["signature"]  # KZ's header over XX's signature
    candidate.signatures.append({"protected": candidate.signatures[0]["protected"], "signature": "AAAA"})
    candidate.signatures.append(forged)
    assert candidate.signing_members(version1, at=clock.utcnow()) == {"KZ"}
    with pytest.raises(TrustError, match="threshold is 2"):
        verify_successor(version1, candidate, now=clock.utcnow())


def test_older_or_same_version_is_refused_as_a_rollback(version1: TrustList, members: dict[str, Member]) -> None:
    version2 = successor(version1, keys_of(members, *FOUNDERS))
    verify_successor(version1, version2, now=clock.utcnow())
    with pytest.raises(TrustError, match="version 1 is not newer than the current version 2"):
        verify_successor(version2, version1, now=clock.utcnow())
    other_version2 = successor(version1, keys_of(members, *FOUNDERS), threshold=3)
    with pytest.raises(TrustError, match="version 2 is not newer than the current version 2"):
        verify_successor(version2, other_version2, now=clock.utcnow())


def test_expired_successor_is_refused(version1: TrustList, members: dict[str, Member]) -> None:
    stale = successor(
        version1,
        keys_of(members, *FOUNDERS),
        issued_at=clock.utcnow() - timedelta(days=3),
        valid_for=timedelta(days=1),
    )
    with pytest.raises(TrustError, match="version 2 expired at"):
        verify_successor(version1, stale, now=clock.utcnow())


def test_successor_must_also_meet_its_own_threshold(
    version1: TrustList, members: dict[str, Member], tmp_path: Path
) -> None:
    """UZ and TM rotate to new keys; signing version 2 with only their old keys would hand it to whoever holds them."""
    now = clock.utcnow()
    new_uz, new_tm = make_member("UZ", tmp_path, name="new"), make_member("TM", tmp_path, name="new")
    rotated = with_keys(version1.body.members, "UZ", [new_key(new_uz.key, not_before=now - timedelta(minutes=1))])
    rotated = with_keys(rotated, "TM", [new_key(new_tm.key, not_before=now - timedelta(minutes=1))])
    old_keys_only = successor(version1, keys_of(members, "UZ", "TM"), members=rotated)
    with pytest.raises(TrustError, match=r"signed by 0 member\(s\) of version 2 \(none\)"):
        verify_successor(version1, old_keys_only, now=now)
    both = successor(version1, [*keys_of(members, "UZ", "TM"), new_uz.key, new_tm.key], members=rotated)
    verify_successor(version1, both, now=now)


def test_trust_list_document_round_trips_and_rejects_garbage(version1: TrustList) -> None:
    again = TrustList.from_json(version1.to_json())
    assert (again.sha256, again.signatures) == (version1.sha256, version1.signatures)
    for bad in ([], {"payload": 5}, {"payload": "e30", "signatures": []}, {"payload": "e30", "signatures": [1]}):
        with pytest.raises(TrustError):
            TrustList.from_document(bad)
    with pytest.raises(TrustError, match="not JSON"):
        TrustList.from_json(b"{")


# -- through a node: the operator's endpoint -----------------------------------------------------------------------


async def versions(node: InProcessNode) -> list[tuple[int, str]]:
    async with node.node.sessionmaker() as session:
        rows = await session.execute(select(TrustVersion.version, TrustVersion.source).order_by(TrustVersion.version))
        return [(row.version, row.source) for row in rows]


async def post_trust(node: InProcessNode, trust: TrustList | dict[str, Any]) -> httpx.Response:
    document = trust.document() if isinstance(trust, TrustList) else trust
    return await node.client.post(TRUST, json=document, headers=node.admin)


def assert_conflict(response: httpx.Response, detail_has: str) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["status"], problem["type"]) == (409, "urn:dtc:problem:conflict")
    assert detail_has in problem["detail"], problem["detail"]


async def test_admin_adopts_a_valid_version_and_peers_follow_it(
    corridor: InProcessCorridor, members: dict[str, Member]
) -> None:
    uz = corridor["UZ"]
    version2 = successor(uz.node.trust, keys_of(members, "KZ", "UZ"))
    response = await post_trust(uz, version2)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "version": 2,
        "sha256": version2.sha256,
        "adopted": True,
        "signers": ["KZ", "UZ"],
        "announced_to": ["KZ", "TM"],
    }
    assert uz.node.trust.version == 2
    again = await post_trust(uz, version2)
    assert again.status_code == 200 and again.json()["adopted"] is False

    await corridor.deliver_all()
    for node in ("KZ", "TM"):
        assert await versions(corridor[node]) == [(1, "genesis"), (2, "peer:UZ")]
        assert corridor[node].node.trust.sha256 == version2.sha256
    served = await corridor["KZ"].client.get("/v1/corridor/trust-list")
    assert served.json() == version2.document()


async def test_admin_refuses_a_version_below_the_threshold(
    corridor: InProcessCorridor, members: dict[str, Member]
) -> None:
    uz = corridor["UZ"]
    response = await post_trust(uz, successor(uz.node.trust, keys_of(members, "UZ")))
    assert_conflict(response, "signed by 1 member(s) of the current version 1 (UZ); the threshold is 2")
    assert await versions(uz) == [(1, "genesis")]
    assert uz.node.trust.version == 1
    async with uz.node.sessionmaker() as session:
        assert (await session.scalars(select(OutboxMessage))).all() == []  # nothing announced


async def test_admin_refuses_admission_of_a_new_member_below_the_threshold(
    corridor: InProcessCorridor, members: dict[str, Member]
) -> None:
    """Azerbaijan joins: KZ alone cannot let it in; KZ and UZ together can, and then AZ's messages are heard."""
    uz = corridor["UZ"]
    current = uz.node.trust
    az = members["AZ"]
    joined = [
        *current.body.members,
        TrustMember(
            node="AZ",
            name="Azerbaijan",
            endpoint=az.endpoint,
            keys=[new_key(az.key, not_before=clock.utcnow() - timedelta(hours=1))],
        ),
    ]
    hello = seal(
        key=az.key,
        message_id=new_id(),
        type="corridor.ping",
        iss="AZ",
        aud="UZ",
        iat=clock.utcnow(),
        seq=1,
        subject=None,
        trust=2,
        body={"note": "salam"},
    )

    assert_conflict(await post_trust(uz, successor(current, keys_of(members, "KZ", "AZ"), members=joined)), "(KZ)")
    assert await versions(uz) == [(1, "genesis")]
    refused = await uz.client.post(INBOX, content=hello, headers={"Content-Type": "application/jose"})
    assert (refused.status_code, refused.json()["reason"]) == (401, "unknown-key")

    admitted = await post_trust(uz, successor(current, keys_of(members, "KZ", "UZ"), members=joined))
    assert admitted.status_code == 200, admitted.text
    assert admitted.json()["announced_to"] == ["KZ", "TM", "AZ"]
    heard = await uz.client.post(INBOX, content=hello, headers={"Content-Type": "application/jose"})
    assert heard.status_code == 200 and heard.json()["status"] == "accepted"


async def test_admin_refuses_a_rollback_to_an_older_or_rival_version(
    corridor: InProcessCorridor, members: dict[str, Member]
) -> None:
    uz = corridor["UZ"]
    version1 = uz.node.trust
    version2 = successor(version1, keys_of(members, *FOUNDERS))
    assert (await post_trust(uz, version2)).status_code == 200

    assert_conflict(await post_trust(uz, version1), "version 1 is not newer than the current version 2")
    rival = successor(version1, keys_of(members, *FOUNDERS), threshold=3)
    assert_conflict(await post_trust(uz, rival), "version 2 is not newer than the current version 2")
    assert await versions(uz) == [(1, "genesis"), (2, "admin")]
    assert uz.node.trust.sha256 == version2.sha256


async def test_admin_refuses_an_expired_version(corridor: InProcessCorridor, members: dict[str, Member]) -> None:
    uz = corridor["UZ"]
    stale = successor(
        uz.node.trust,
        keys_of(members, *FOUNDERS),
        issued_at=clock.utcnow() - timedelta(days=3),
        valid_for=timedelta(days=1),
    )
    assert_conflict(await post_trust(uz, stale), "version 2 expired at")
    assert await versions(uz) == [(1, "genesis")]


async def test_admin_refuses_a_document_that_is_not_a_trust_list(corridor: InProcessCorridor) -> None:
    uz = corridor["UZ"]
    assert_conflict(await post_trust(uz, {"version": 2}), "JWS JSON general serialization")
    unauthenticated = await uz.client.post(TRUST, json=uz.node.trust.document())
    assert unauthenticated.status_code == 401
    assert await versions(uz) == [(1, "genesis")]


async def test_message_signed_by_a_rotated_out_key_after_its_not_after_is_refused(
    corridor: InProcessCorridor, members: dict[str, Member], tmp_path: Path
) -> None:
    """KZ rotates its key: the old one retires; what it signed before stays valid, anything after is refused."""
    uz = corridor["UZ"]
    now = clock.utcnow()
    retired_at = now - timedelta(minutes=1)
    fresh = make_member("KZ", tmp_path, name="2025")
    (old,) = keys_of_member(uz.node.trust, "KZ")
    rotated = with_keys(
        uz.node.trust.body.members,
        "KZ",
        [old.model_copy(update={"not_after": retired_at}), new_key(fresh.key, not_before=retired_at)],
    )
    version2 = successor(uz.node.trust, [*keys_of(members, "UZ", "TM"), fresh.key], members=rotated)
    assert (await post_trust(uz, version2)).status_code == 200

    def ping(key: SigningKey, iat: datetime) -> str:
        return seal(
            key=key,
            message_id=new_id(),
            type="corridor.ping",
            iss="KZ",
            aud="UZ",
            iat=iat,
            seq=1,
            subject=None,
            trust=2,
            body={},
        )

    async def send(token: str) -> httpx.Response:
        return await uz.client.post(INBOX, content=token, headers={"Content-Type": "application/jose"})

    late = await send(ping(members["KZ"].key, now))
    assert late.status_code == 401 and late.headers["content-type"] == "application/problem+json"
    assert late.json()["reason"] == "key-not-valid"
    assert "was retired at" in late.json()["detail"]
    async with uz.node.sessionmaker() as session:
        assert (await session.scalars(select(InboxMessage))).all() == []

    assert (await send(ping(members["KZ"].key, retired_at - timedelta(minutes=5)))).json()["status"] == "accepted"
    assert (await send(ping(fresh.key, now))).json()["status"] == "accepted"
    too_early = await send(ping(fresh.key, retired_at - timedelta(minutes=5)))
    assert (too_early.status_code, too_early.json()["reason"]) == (401, "key-not-valid")
    assert "valid only from" in too_early.json()["detail"]


# -- through a node: a peer's corridor.trust-update ----------------------------------------------------------------


async def send_trust_update(corridor: InProcessCorridor, document: dict[str, Any], *, version: int) -> dict[str, Any]:
    """KZ tells UZ about a trust-list version; returns UZ's answer after checking its receipt as KZ would."""
    message_id = new_id()
    token = seal(
        key=corridor["KZ"].member.key,
        message_id=message_id,
        type="corridor.trust-update",
        iss="KZ",
        aud="UZ",
        iat=clock.utcnow(),
        seq=1,
        subject=f"trust:{version}",
        trust=corridor["KZ"].node.trust.version,
        body={"version": version, "document": document},
    )
    response = await corridor["UZ"].client.post(INBOX, content=token, headers={"Content-Type": "application/jose"})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    receipt = verify_receipt(
        answer["receipt"],
        trust=corridor["KZ"].node.trust,
        expect_from="UZ",
        message_id=message_id,
        digest=digest_of(token),
    )
    assert (receipt.status, receipt.code) == (answer["status"], answer["code"])
    answer["detail"] = receipt.detail
    return answer


async def test_peer_update_is_adopted_when_valid(corridor: InProcessCorridor, members: dict[str, Member]) -> None:
    uz = corridor["UZ"]
    version2 = successor(uz.node.trust, keys_of(members, "KZ", "TM"))
    answer = await send_trust_update(corridor, version2.document(), version=2)
    assert answer["status"] == "accepted"
    assert await versions(uz) == [(1, "genesis"), (2, "peer:KZ")]
    assert uz.node.trust.sha256 == version2.sha256


async def test_peer_update_below_the_threshold_is_rejected(
    corridor: InProcessCorridor, members: dict[str, Member]
) -> None:
    uz = corridor["UZ"]
    version2 = successor(uz.node.trust, keys_of(members, "KZ"))
    answer = await send_trust_update(corridor, version2.document(), version=2)
    assert (answer["status"], answer["code"]) == ("rejected", "14")
    assert "the threshold is 2" in answer["detail"]
    assert await versions(uz) == [(1, "genesis")]
    assert uz.node.trust.version == 1


async def test_peer_update_to_an_older_version_is_rejected(
    corridor: InProcessCorridor, members: dict[str, Member]
) -> None:
    uz = corridor["UZ"]
    version1 = uz.node.trust
    assert (await post_trust(uz, successor(version1, keys_of(members, *FOUNDERS)))).status_code == 200
    answer = await send_trust_update(corridor, version1.document(), version=1)
    assert (answer["status"], answer["code"]) == ("rejected", "15")
    assert "older than the current 2" in answer["detail"]
    assert await versions(uz) == [(1, "genesis"), (2, "admin")]


async def test_peer_update_that_is_expired_or_mislabelled_is_rejected(
    corridor: InProcessCorridor, members: dict[str, Member]
) -> None:
    uz = corridor["UZ"]
    stale = successor(
        uz.node.trust,
        keys_of(members, *FOUNDERS),
        issued_at=clock.utcnow() - timedelta(days=3),
        valid_for=timedelta(days=1),
    )
    answer = await send_trust_update(corridor, stale.document(), version=2)
    assert (answer["status"], answer["code"]) == ("rejected", "14")
    assert "expired at" in answer["detail"]

    good = successor(uz.node.trust, keys_of(members, *FOUNDERS))
    mislabelled = await send_trust_update(corridor, good.document(), version=3)
    assert (mislabelled["status"], mislabelled["code"]) == ("rejected", "14")
    assert "body says version 3" in mislabelled["detail"]

    garbage = await send_trust_update(corridor, {"payload": "not base64 json"}, version=2)
    assert (garbage["status"], garbage["code"]) == ("rejected", "14")
    assert await versions(uz) == [(1, "genesis")]
