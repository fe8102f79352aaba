"""Trust-list proposals over the corridor, on each database: drafted at one node, signed through the others' APIs,
adopted by whoever first holds the signatures, and refused (nothing stored, nothing sent, nothing adopted) when a
rule is broken.

Given KZ, UZ and TM (threshold 2), when Kazakhstan proposes a renewal and Uzbekistan's admin approves it, then
Uzbekistan adopts version 2 and every node follows; when two proposals compete for version 2, the one that reaches
the threshold first wins and the other says it was superseded.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import TypeAdapter
from sqlalchemy import func, select

from tests.support.inprocess import InProcessCorridor, InProcessNode
from tests.support.keys import TestMember as Member
from tests.support.keys import signed
from transit_window import clock
from transit_window.ids import new_id
from transit_window.protocol.envelope import digest_of, seal, verify_receipt
from transit_window.protocol.models import OutboxMessage, TrustProposal, TrustVersion
from transit_window.protocol.trust import TrustList
from transit_window.protocol.trust_changes import Change, build_successor

PROPOSALS = "/v1/corridor/proposals"
INBOX = "/v1/corridor/messages"


async def propose(node: InProcessNode, *changes: dict[str, Any]) -> httpx.Response:
    return await node.client.post(PROPOSALS, json={"changes": list(changes)}, headers=node.admin)


async def open_proposals(node: InProcessNode) -> list[dict[str, Any]]:
    response = await node.client.get(PROPOSALS, params={"state": "open"}, headers=node.admin)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def count(node: InProcessNode, model: type[Any]) -> int:
    async with node.node.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_renewal_proposed_by_one_member_is_adopted_when_a_second_approves(corridor: InProcessCorridor) -> None:
    kz, uz, tm = corridor["KZ"], corridor["UZ"], corridor["TM"]
    expires = kz.node.trust.body.expires_at
    created = await propose(kz, {"kind": "renew"})
    assert created.status_code == 201, created.text
    proposal = created.json()
    assert (proposal["version"], proposal["state"], proposal["signers"]) == (2, "open", ["KZ"])
    assert proposal["waiting_for"] == ["UZ", "TM"]
    assert proposal["difference"] == [
        f"expires {clock.isoformat(expires)} → {proposal['difference'][0].split(' → ')[1]}"
    ]
    await corridor.deliver_all()

    waiting = await open_proposals(uz)
    assert [(item["id"], item["proposer"], item["signers"]) for item in waiting] == [(proposal["id"], "KZ", ["KZ"])]
    assert waiting[0]["difference"] == proposal["difference"]

    approved = await uz.client.post(f"{PROPOSALS}/{proposal['id']}/approve", headers=uz.admin)
    assert approved.status_code == 200, approved.text
    assert approved.json()["adopted"] is True
    assert approved.json()["proposal"]["state"] == "adopted"
    await corridor.deliver_all()
    for node in (kz, uz, tm):
        assert node.node.trust.version == 2
        assert node.node.trust.body.expires_at > expires
        assert await open_proposals(node) == []
    shown = await kz.client.get(f"{PROPOSALS}/{proposal['id']}", headers=kz.admin)
    assert shown.json()["state"] == "adopted"


async def test_of_two_proposals_for_one_version_the_first_to_reach_the_threshold_wins(
    corridor: InProcessCorridor,
) -> None:
    kz, uz, tm = corridor["KZ"], corridor["UZ"], corridor["TM"]
    renewal = (await propose(kz, {"kind": "renew"})).json()
    moved = (await propose(tm, {"kind": "endpoint", "node": "TM", "endpoint": "https://tm.corridor.test"})).json()
    assert renewal["version"] == moved["version"] == 2
    await corridor.deliver_all()
    assert {item["id"] for item in await open_proposals(uz)} == {renewal["id"], moved["id"]}

    won = await uz.client.post(f"{PROPOSALS}/{moved['id']}/approve", headers=uz.admin)
    assert won.json()["adopted"] is True
    await corridor.deliver_all()
    for node in (kz, uz, tm):
        assert node.node.trust.version == 2 and node.node.trust.sha256 == moved["sha256"]
        lost = (await node.client.get(f"{PROPOSALS}/{renewal['id']}", headers=node.admin)).json()
        assert lost["state"] == "superseded"
        assert "version 2 was adopted first" in lost["closed_reason"]
        assert f"proposal {moved['id']}" in lost["closed_reason"]
    late = await kz.client.post(f"{PROPOSALS}/{renewal['id']}/approve", headers=kz.admin)
    assert late.status_code == 409 and late.json()["reason"] == "closed"


async def test_an_objection_is_recorded_everywhere_with_its_reason(corridor: InProcessCorridor) -> None:
    kz, uz = corridor["KZ"], corridor["UZ"]
    proposal = (await propose(kz, {"kind": "threshold", "threshold": 3})).json()
    await corridor.deliver_all()
    objected = await uz.client.post(
        f"{PROPOSALS}/{proposal['id']}/object", json={"reason": "not before the ministers meet"}, headers=uz.admin
    )
    assert objected.status_code == 200, objected.text
    await corridor.deliver_all()
    shown = (await kz.client.get(f"{PROPOSALS}/{proposal['id']}", headers=kz.admin)).json()
    assert [(entry["node"], entry["reason"]) for entry in shown["objections"]] == [
        ("UZ", "not before the ministers meet")
    ]
    assert shown["state"] == "open" and kz.node.trust.version == 1


async def test_a_proposal_that_breaks_a_rule_is_refused_and_nothing_is_stored_or_sent(
    corridor: InProcessCorridor,
) -> None:
    kz = corridor["KZ"]
    cases = [
        ([{"kind": "threshold", "threshold": 4}], "below-threshold", "threshold of 4"),
        ([{"kind": "remove", "node": "GE"}], "unknown-member", "GE is not a member"),
        (
            [{"kind": "admit", "node": "UZ", "name": "U", "endpoint": "https://uz.test", "jwk": {}}],
            "already-member",
            "",
        ),
    ]
    for changes, reason, says in cases:
        response = await propose(kz, *changes)
        assert response.status_code == 409, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["reason"] == reason and says in response.json()["detail"]
    not_a_list = await kz.client.post(PROPOSALS, json={"changes": [{"kind": "crown"}]}, headers=kz.admin)
    assert not_a_list.status_code == 422
    unknown = await kz.client.post(f"{PROPOSALS}/{new_id()}/approve", headers=kz.admin)
    assert unknown.status_code == 404
    assert await count(kz, TrustProposal) == 0
    assert await count(kz, OutboxMessage) == 0
    assert await count(kz, TrustVersion) == 1

    proposal = (await propose(kz, {"kind": "renew"})).json()
    twice = await kz.client.post(f"{PROPOSALS}/{proposal['id']}/approve", headers=kz.admin)
    assert twice.status_code == 409 and twice.json()["reason"] == "already-signed"
    assert kz.node.trust.version == 1


async def send(corridor: InProcessCorridor, *, type_: str, body: dict[str, Any], sender: str = "KZ") -> dict[str, Any]:
    """`sender` sends UZ one message; UZ's answer, its receipt checked as the sender would."""
    message_id = new_id()
    token = seal(
        key=corridor[sender].member.key,
        message_id=message_id,
        type=type_,
        iss=sender,
        aud="UZ",
        iat=clock.utcnow(),
        seq=1,
        subject="trust:proposal",
        trust=corridor[sender].node.trust.version,
        body=body,
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
    answer["detail"] = receipt.detail
    return answer


def draft(trust: TrustList, changes: list[dict[str, Any]], *, version: int | None = None) -> TrustList:
    body = build_successor(trust.body, TypeAdapter(list[Change]).validate_python(changes))
    if version is not None:
        body = body.model_copy(update={"version": version})
    return TrustList.from_body(body)


async def test_a_proposal_message_that_breaks_a_rule_gets_a_signed_rejection(
    corridor: InProcessCorridor, members: dict[str, Member]
) -> None:
    uz = corridor["UZ"]
    trust = uz.node.trust
    expires = clock.isoformat(trust.body.expires_at)

    def message(version: TrustList) -> dict[str, Any]:
        return {"proposal": new_id(), "version": version.version, "expires_at": expires, "document": version.document()}

    skipped = draft(trust, [{"kind": "renew"}], version=3)
    skipped.sign(members["KZ"].key)
    unsigned = draft(trust, [{"kind": "renew"}])
    by_other = signed(draft(trust, [{"kind": "renew"}]).body, [members["TM"]])
    cases = [
        (message(skipped), "not-successor"),
        (message(unsigned), "valid signature of its sender KZ"),
        (message(by_other), "valid signature of its sender KZ"),
        ({**message(unsigned), "document": {"payload": "e30", "signatures": []}}, "not-a-trust-list"),
    ]
    for body, says in cases:
        answer = await send(corridor, type_="corridor.trust-proposal", body=body)
        assert answer["status"] == "rejected", answer
        assert says in answer["detail"], answer["detail"]
    assert await count(uz, TrustProposal) == 0
    assert uz.node.trust.version == 1


async def test_a_signature_by_a_non_member_or_the_same_member_twice_is_rejected(
    corridor: InProcessCorridor, members: dict[str, Member]
) -> None:
    kz, uz = corridor["KZ"], corridor["UZ"]
    proposal = (await propose(kz, {"kind": "renew"})).json()
    await corridor.deliver_all()
    version = TrustList.from_document(proposal["document"])
    stranger = TrustList.from_document(proposal["document"])
    stranger.sign(members["XX"].key)
    again = TrustList.from_document(proposal["document"])
    base = {"proposal": proposal["id"], "version": 2, "sha256": version.sha256}
    # TM forwards a signature of a key no member holds: it is not TM's.
    by_stranger = await send(
        corridor, type_="corridor.trust-signature", body={**base, "signature": stranger.signatures[-1]}, sender="TM"
    )
    assert by_stranger["status"] == "rejected" and "not a valid signature of TM" in by_stranger["detail"]
    twice = await send(corridor, type_="corridor.trust-signature", body={**base, "signature": again.signatures[0]})
    assert twice["status"] == "rejected" and "KZ already signed" in twice["detail"]
    assert uz.node.trust.version == 1
    assert [item["signers"] for item in await open_proposals(uz)] == [["KZ"]]


async def test_a_key_revoked_by_proposal_no_longer_speaks_for_its_member(corridor: InProcessCorridor) -> None:
    kz, uz = corridor["KZ"], corridor["UZ"]
    tm_kid = corridor["TM"].member.key.kid
    proposal = (await propose(kz, {"kind": "revoke-key", "node": "TM", "kid": tm_kid})).json()
    assert proposal["difference"][0].startswith(f"TM: key kid {tm_kid} revoked at ")
    await corridor.deliver_all()
    approved = await uz.client.post(f"{PROPOSALS}/{proposal['id']}/approve", headers=uz.admin)
    assert approved.json()["adopted"] is True
    await corridor.deliver_all()
    assert kz.node.trust.version == 2

    token = seal(
        key=corridor["TM"].member.key,
        message_id=new_id(),
        type="corridor.ping",
        iss="TM",
        aud="KZ",
        iat=clock.utcnow(),
        seq=1,
        subject=None,
        trust=2,
        body={"note": "still here?"},
    )
    refused = await kz.client.post(INBOX, content=token, headers={"Content-Type": "application/jose"})
    assert refused.status_code == 401, refused.text
    assert refused.json()["reason"] == "key-not-valid"
    assert "revoked at" in refused.json()["detail"]


async def test_a_member_admitted_by_proposal_signs_offline_and_then_speaks_for_itself(
    corridor: InProcessCorridor, members: dict[str, Member]
) -> None:
    kz, uz, tm = corridor["KZ"], corridor["UZ"], corridor["TM"]
    az = members["AZ"]
    admit = {"kind": "admit", "node": "AZ", "name": "Azerbaijan", "endpoint": az.endpoint, "jwk": az.key.public_jwk}
    proposal = (await propose(kz, admit, {"kind": "threshold", "threshold": 4})).json()
    assert proposal["difference"][:2] == [
        f"admit AZ Azerbaijan, key kid {az.key.kid}, endpoint {az.endpoint}",
        "threshold 2 → 4",
    ]
    await corridor.deliver_all()
    for node in (uz, tm):
        approved = await node.client.post(f"{PROPOSALS}/{proposal['id']}/approve", headers=node.admin)
        assert approved.json()["adopted"] is False  # three of the four the new version needs
    await corridor.deliver_all()
    waiting = (await kz.client.get(f"{PROPOSALS}/{proposal['id']}", headers=kz.admin)).json()
    assert (waiting["signers"], waiting["waiting_for"]) == (["KZ", "TM", "UZ"], ["AZ"])

    # Azerbaijan's admin signs the proposed document offline; a stranger's signature is refused first.
    stranger = TrustList.from_document(waiting["document"])
    stranger.sign(members["XX"].key)
    refused = await kz.client.post(
        f"{PROPOSALS}/{proposal['id']}/signatures", json=stranger.signatures[-1], headers=kz.admin
    )
    assert refused.status_code == 409 and refused.json()["reason"] == "not-a-member-signature"
    offline = TrustList.from_document(waiting["document"])
    offline.sign(az.key)
    attached = await kz.client.post(
        f"{PROPOSALS}/{proposal['id']}/signatures", json=offline.signatures[-1], headers=kz.admin
    )
    assert attached.status_code == 200, attached.text
    assert attached.json()["adopted"] is True
    await corridor.deliver_all()
    for node in (kz, uz, tm):
        assert node.node.trust.version == 2 and node.node.trust.member("AZ") is not None

    message_id = new_id()
    token = seal(
        key=az.key,
        message_id=message_id,
        type="corridor.ping",
        iss="AZ",
        aud="KZ",
        iat=clock.utcnow(),
        seq=1,
        subject=None,
        trust=2,
        body={"note": "salam"},
    )
    accepted = await kz.client.post(INBOX, content=token, headers={"Content-Type": "application/jose"})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"


async def test_the_list_pages_newest_first_with_a_cursor(corridor: InProcessCorridor) -> None:
    kz = corridor["KZ"]
    made = []
    for _ in range(3):  # competing proposals for the same version: each is listed
        created = await propose(kz, {"kind": "renew"})
        assert created.status_code == 201, created.text
        made.append(created.json()["id"])
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await kz.client.get(PROPOSALS, params=params, headers=kz.admin)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == sorted(made, reverse=True)
    bad = await kz.client.get(PROPOSALS, params={"cursor": "not-an-id"}, headers=kz.admin)
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
