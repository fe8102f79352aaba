"""Hostile input at the inbox: whatever a peer (or anyone) sends, nothing unauthentic is ever stored or applied.

Each story sends something wrong to UZ's `POST /v1/corridor/messages` and reads UZ's database before and after. A
message that is not authentic gets a plain problem+json naming the reason; an authentic one that cannot be applied
gets a signed `rejected` receipt; a replay gets the original receipt and is applied once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from tests.support.inprocess import InProcessCorridor, InProcessNode
from tests.support.keys import TestMember as Member
from transit_window import clock
from transit_window.errors import NotAuthentic
from transit_window.ids import new_id
from transit_window.protocol import jws
from transit_window.protocol.envelope import (
    MESSAGE_TYP,
    RECEIPT_TYP,
    ReceiptPayload,
    digest_of,
    seal,
    verify_receipt,
)
from transit_window.protocol.models import (
    Checkpoint,
    InboundSequence,
    InboxMessage,
    LogEntry,
    TrustVersion,
)
from transit_window.protocol.node import Node
from transit_window.protocol.trust import TrustList, TrustListBody

INBOX = "/v1/corridor/messages"
JOSE = {"Content-Type": "application/jose"}
PROBLEM_JSON = "application/problem+json"
HEAD = "ab" * 32


def envelope(
    signer: Member,
    *,
    iss: str | None = None,
    aud: str = "UZ",
    type: str = "corridor.ping",
    body: dict[str, Any] | None = None,
    iat: datetime | None = None,
    seq: int = 1,
    message_id: str | None = None,
) -> str:
    """A message sealed with `signer`'s key; every field can be set wrong on purpose."""
    return seal(
        key=signer.key,
        message_id=message_id or new_id(),
        type=type,
        iss=iss or signer.node,
        aud=aud,
        iat=iat or clock.utcnow(),
        seq=seq,
        subject=None,
        trust=1,
        body={"note": "hello"} if body is None else body,
    )


def checkpoint_body(node: str, size: int = 1) -> dict[str, Any]:
    return {"node": node, "size": size, "head": HEAD, "at": clock.isoformat(clock.utcnow())}


def b64json(value: dict[str, Any]) -> str:
    return jws.b64url(orjson.dumps(value))


def with_payload(token: str, edit: Callable[[dict[str, Any]], dict[str, Any]]) -> str:
    """The same header and signature over an edited payload: what a man in the middle would try."""
    header, payload, signature = token.split(".")
    return f"{header}.{b64json(edit(orjson.loads(jws.b64url_decode(payload))))}.{signature}"


async def stored(node: Node) -> dict[str, int]:
    """How many rows each table a message could touch holds on `node`."""
    async with node.sessionmaker() as session:
        return {
            model.__tablename__: int(await session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (InboxMessage, LogEntry, InboundSequence, Checkpoint, TrustVersion)
        }


async def post_jose(target: InProcessNode, token: str) -> httpx.Response:
    return await target.client.post(INBOX, content=token, headers=JOSE)


def assert_problem(response: httpx.Response, *, status: int, reason: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["title"] and problem["detail"]
    if reason is not None:
        assert problem["type"] == "urn:dtc:problem:message-not-authentic"
        assert problem["reason"] == reason
        assert reason in NotAuthentic._reasons
    return problem


async def assert_refused(
    corridor: InProcessCorridor, token: str, *, status: int, reason: str, detail_has: str
) -> dict[str, Any]:
    """POST `token` to UZ alone and in a batch: refused both ways with `reason`, and UZ stores nothing."""
    uz = corridor["UZ"]
    before = await stored(uz.node)
    problem = assert_problem(await post_jose(uz, token), status=status, reason=reason)
    assert detail_has in problem["detail"]
    batch = await uz.client.post(INBOX, json={"messages": [token]})
    assert batch.status_code == 200
    (result,) = batch.json()["results"]
    assert result["receipt"] is None
    assert result["problem"]["reason"] == reason and result["problem"]["status"] == status
    assert await stored(uz.node) == before
    return problem


def receipt_of(corridor: InProcessCorridor, token: str, receipt: str, *, message_id: str) -> ReceiptPayload:
    """Check `receipt` as the sender KZ would: signed by UZ, about exactly this JWS."""
    return verify_receipt(
        receipt, trust=corridor["KZ"].node.trust, expect_from="UZ", message_id=message_id, digest=digest_of(token)
    )


def message_id_of(token: str) -> str:
    _, payload = jws.peek_compact(token)
    return str(orjson.loads(payload)["id"])


# -- not authentic: a problem, nothing stored ----------------------------------------------------------------------


async def test_a_genuine_ping_is_accepted_so_the_refusals_below_are_meaningful(corridor: InProcessCorridor) -> None:
    uz = corridor["UZ"]
    before = await stored(uz.node)
    token = envelope(corridor["KZ"].member)
    response = await post_jose(uz, token)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "accepted"
    receipt = receipt_of(corridor, token, response.json()["receipt"], message_id=message_id_of(token))
    assert (receipt.status, receipt.iss, receipt.aud) == ("accepted", "UZ", "KZ")
    after = await stored(uz.node)
    assert after["inbox"] == before["inbox"] + 1
    assert after["log_entries"] == before["log_entries"] + 2  # the envelope received and the receipt sent


async def test_tampered_payload_fails_the_signature(corridor: InProcessCorridor) -> None:
    token = envelope(corridor["KZ"].member, body={"note": "pay 10"})
    forged = with_payload(token, lambda claims: {**claims, "body": {"note": "pay 10000"}})
    await assert_refused(corridor, forged, status=401, reason="bad-signature", detail_has="does not verify")


async def test_tampered_header_fails_the_signature(corridor: InProcessCorridor) -> None:
    token = envelope(corridor["KZ"].member)
    header, payload, signature = token.split(".")
    fields = orjson.loads(jws.b64url_decode(header))
    fields["x-route"] = "via-somewhere-else"
    forged = f"{b64json(fields)}.{payload}.{signature}"
    await assert_refused(corridor, forged, status=401, reason="bad-signature", detail_has="does not verify")


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none", "typ": MESSAGE_TYP},
        {"alg": "HS256", "typ": MESSAGE_TYP},
        {"alg": "EdDSA", "typ": RECEIPT_TYP},
        {"alg": "EdDSA", "typ": MESSAGE_TYP, "kid": None},
        {"alg": "EdDSA", "typ": MESSAGE_TYP, "crit": ["exp"]},
    ],
    ids=["alg-none", "alg-hs256", "a-receipt-passed-off-as-a-message", "no-kid", "crit"],
)
async def test_unacceptable_protected_header_is_refused(corridor: InProcessCorridor, header: dict[str, Any]) -> None:
    token = envelope(corridor["KZ"].member)
    _, payload, signature = token.split(".")
    fields = {"kid": corridor["KZ"].member.key.kid, **header}
    if fields["kid"] is None:
        del fields["kid"]
    forged = f"{b64json(fields)}.{payload}.{signature}"
    await assert_refused(corridor, forged, status=400, reason="bad-header", detail_has="EdDSA")


async def test_key_that_is_in_no_trust_list_is_refused(corridor: InProcessCorridor, members: dict[str, Member]) -> None:
    token = envelope(members["XX"], iss="KZ")
    problem = await assert_refused(corridor, token, status=401, reason="unknown-key", detail_has=members["XX"].key.kid)
    assert problem["trust_version"] == 1


async def test_member_signing_as_another_member_is_refused(corridor: InProcessCorridor) -> None:
    token = envelope(corridor["KZ"].member, iss="TM")
    await assert_refused(corridor, token, status=403, reason="wrong-issuer", detail_has="belongs to KZ")


async def test_message_for_another_node_is_refused(corridor: InProcessCorridor) -> None:
    token = envelope(corridor["KZ"].member, aud="TM")
    await assert_refused(corridor, token, status=403, reason="wrong-audience", detail_has="addressed to TM")


async def test_iat_far_in_the_future_is_refused_but_small_skew_is_tolerated(corridor: InProcessCorridor) -> None:
    kz = corridor["KZ"].member
    future = envelope(kz, iat=clock.utcnow() + timedelta(minutes=10))
    await assert_refused(corridor, future, status=403, reason="future-iat", detail_has="check the sender's clock")
    slightly_ahead = envelope(kz, iat=clock.utcnow() + timedelta(seconds=30))
    response = await post_jose(corridor["UZ"], slightly_ahead)
    assert response.status_code == 200 and response.json()["status"] == "accepted"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "hello",
        "a.b",
        "a..c",
        "a.b.c.d",
        "!!!.???.###",
        f"{jws.b64url(b'not json')}.e30.c2ln",
        f"{b64json({'alg': 'none', 'typ': MESSAGE_TYP})}.{b64json({'id': 'x'})}.",
    ],
    ids=[
        "empty",
        "one-part",
        "two-parts",
        "empty-part",
        "four-parts",
        "not-base64url",
        "header-not-json",
        "unsecured-alg-none",  # PROTOCOL.md §3: an empty signature part is malformed, before the header is read
    ],
)
async def test_malformed_jws_is_refused(corridor: InProcessCorridor, token: str) -> None:
    await assert_refused(corridor, token, status=400, reason="malformed", detail_has="not a compact JWS")


async def test_signed_payload_that_is_not_json_is_refused(corridor: InProcessCorridor) -> None:
    token = jws.sign_compact(b"<transit>not json</transit>", key=corridor["KZ"].member.key, typ=MESSAGE_TYP)
    await assert_refused(corridor, token, status=400, reason="bad-payload", detail_has="/")


async def test_signed_payload_missing_envelope_fields_is_refused(corridor: InProcessCorridor) -> None:
    claims = {"id": new_id(), "type": "corridor.ping", "iss": "KZ", "aud": "UZ", "body": {}}
    token = jws.sign_compact(orjson.dumps(claims), key=corridor["KZ"].member.key, typ=MESSAGE_TYP)
    await assert_refused(corridor, token, status=400, reason="bad-payload", detail_has="/iat")


async def test_unknown_message_type_is_refused(corridor: InProcessCorridor) -> None:
    token = envelope(corridor["KZ"].member, type="transit.teleported")
    await assert_refused(corridor, token, status=400, reason="unknown-type", detail_has="transit.teleported")


async def test_body_failing_its_schema_is_refused(corridor: InProcessCorridor) -> None:
    body = {"node": "KZ", "size": 0, "head": "not-a-hash", "at": "yesterday"}
    token = envelope(corridor["KZ"].member, type="corridor.checkpoint", body=body)
    problem = await assert_refused(corridor, token, status=400, reason="invalid-body", detail_has="corridor.checkpoint")
    assert "/size" in problem["detail"] and "more" in problem["detail"]


async def test_message_signed_with_a_key_revoked_before_its_iat_is_refused(
    corridor: InProcessCorridor, members: dict[str, Member]
) -> None:
    uz = corridor["UZ"]
    revoked_at = clock.utcnow() - timedelta(hours=1)
    current = uz.node.trust
    body = TrustListBody.model_validate(
        {
            **current.body.model_dump(),
            "version": 2,
            "issued_at": clock.utcnow(),
            "expires_at": clock.utcnow() + timedelta(days=30),
            "members": [
                member.model_copy(update={"keys": [member.keys[0].model_copy(update={"revoked_at": revoked_at})]})
                if member.node == "KZ"
                else member
                for member in current.body.members
            ],
        }
    )
    version2 = TrustList.from_body(body)
    for node in ("UZ", "TM"):
        version2.sign(members[node].key)
    adopted = await uz.client.post("/v1/admin/trust-list", json=version2.document(), headers=uz.admin)
    assert adopted.status_code == 200, adopted.text
    assert uz.node.trust.version == 2

    after_revocation = envelope(members["KZ"])
    await assert_refused(corridor, after_revocation, status=401, reason="key-not-valid", detail_has="was revoked at")

    # What KZ signed before the revocation stays verifiable (and, here, still deliverable).
    before_revocation = envelope(members["KZ"], iat=revoked_at - timedelta(minutes=5))
    response = await post_jose(uz, before_revocation)
    assert response.status_code == 200 and response.json()["status"] == "accepted"


async def test_body_over_one_mebibyte_is_refused_before_it_is_read(corridor: InProcessCorridor) -> None:
    uz = corridor["UZ"]
    limit = uz.settings.max_message_bytes
    assert limit == 1024 * 1024
    before = await stored(uz.node)
    # A genuine message padded past the limit: size alone is the reason for the refusal.
    huge = envelope(corridor["KZ"].member, body={"note": "x" * 100, "padding": "y" * limit})
    problem = assert_problem(await post_jose(uz, huge), status=413)
    assert problem["type"] == "urn:dtc:problem:payload-too-large"
    assert str(limit) in problem["detail"]

    batch = {"messages": [huge]}
    assert_problem(await uz.client.post(INBOX, json=batch), status=413)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(20):
            yield b"x" * (64 * 1024)

    streamed = await uz.client.post(INBOX, content=chunks(), headers=JOSE)
    assert "content-length" not in streamed.request.headers
    assert_problem(streamed, status=413)
    assert await stored(uz.node) == before


async def test_unsupported_media_type_and_malformed_batch_are_problems(corridor: InProcessCorridor) -> None:
    uz = corridor["UZ"]
    before = await stored(uz.node)
    token = envelope(corridor["KZ"].member)
    assert_problem(await uz.client.post(INBOX, content=token, headers={"Content-Type": "text/plain"}), status=415)
    for bad in (b"not json", b'{"messages": []}', b'{"messages": "one"}', b"[]"):
        problem = assert_problem(
            await uz.client.post(INBOX, content=bad, headers={"Content-Type": "application/json"}), status=422
        )
        assert problem["errors"][0]["pointer"] == "/body/messages"
    assert await stored(uz.node) == before


# -- authentic: receipts, replays, rejections ----------------------------------------------------------------------


async def test_replayed_message_gets_the_original_receipt_and_is_applied_once(corridor: InProcessCorridor) -> None:
    uz = corridor["UZ"]
    token = envelope(corridor["KZ"].member, type="corridor.checkpoint", body=checkpoint_body("KZ"))
    first = await post_jose(uz, token)
    assert first.status_code == 200 and first.json()["status"] == "accepted"
    after_first = await stored(uz.node)

    again = await post_jose(uz, token)
    in_batch = await uz.client.post(INBOX, json={"messages": [token]})

    assert again.status_code == 200
    assert again.json() == first.json()  # byte-identical receipt, original `at`
    assert in_batch.json()["results"][0]["receipt"] == first.json()["receipt"]
    assert await stored(uz.node) == after_first  # no new inbox row, log entry or checkpoint
    async with uz.node.sessionmaker() as session:
        row = (await session.scalars(select(InboxMessage))).one()
        assert row.receipt == first.json()["receipt"] and row.token == token
        assert await session.scalar(select(func.count()).select_from(Checkpoint)) == 1


async def test_same_message_twice_in_one_batch_is_applied_once(corridor: InProcessCorridor) -> None:
    uz, kz = corridor["UZ"], corridor["KZ"].member
    before = await stored(uz.node)
    message_id = new_id()
    token = envelope(kz, message_id=message_id)
    impostor = envelope(kz, message_id=message_id, body={"note": "same id, other content"})
    response = await uz.client.post(INBOX, json={"messages": [token, token, impostor]})
    assert response.status_code == 200
    first, second, third = response.json()["results"]
    assert first["status"] == "accepted"
    assert second["receipt"] == first["receipt"]
    assert (third["status"], third["code"]) == ("duplicate", "26")
    assert receipt_of(corridor, impostor, third["receipt"], message_id=message_id).status == "duplicate"
    after = await stored(uz.node)
    assert after["inbox"] == before["inbox"] + 1
    assert after["log_entries"] == before["log_entries"] + 2


async def test_message_id_reused_for_different_content_is_a_signed_duplicate(corridor: InProcessCorridor) -> None:
    uz, kz = corridor["UZ"], corridor["KZ"].member
    message_id = new_id()
    original = envelope(kz, message_id=message_id, body={"note": "original"})
    assert (await post_jose(uz, original)).json()["status"] == "accepted"
    before = await stored(uz.node)

    impostor = envelope(kz, message_id=message_id, body={"note": "something else"})
    response = await post_jose(uz, impostor)
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["code"]) == ("duplicate", "26")
    receipt = receipt_of(corridor, impostor, response.json()["receipt"], message_id=message_id)
    assert (receipt.status, receipt.code) == ("duplicate", "26")
    assert "different content" in (receipt.detail or "")

    assert await stored(uz.node) == before
    async with uz.node.sessionmaker() as session:
        row = await session.get(InboxMessage, ("KZ", message_id))
        assert row is not None and row.token == original and row.digest == digest_of(original)


async def test_authentic_but_inapplicable_message_gets_a_signed_rejected_receipt(corridor: InProcessCorridor) -> None:
    """KZ may not publish TM's checkpoint: the message is authentic, so UZ answers with a signed refusal."""
    uz = corridor["UZ"]
    token = envelope(corridor["KZ"].member, type="corridor.checkpoint", body=checkpoint_body("TM"))
    response = await post_jose(uz, token)
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["code"]) == ("rejected", "15")
    receipt = receipt_of(corridor, token, response.json()["receipt"], message_id=message_id_of(token))
    assert (receipt.status, receipt.code) == ("rejected", "15")
    assert "TM" in (receipt.detail or "")
    async with uz.node.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Checkpoint)) == 0
        row = await session.get(InboxMessage, ("KZ", message_id_of(token)))
        assert row is not None and (row.status, row.code) == ("rejected", "15")

    # The sender cannot turn the refusal into an acceptance by resending.
    assert (await post_jose(uz, token)).json() == response.json()


async def test_forked_log_head_is_rejected_and_the_first_head_kept(corridor: InProcessCorridor) -> None:
    uz, kz = corridor["UZ"], corridor["KZ"].member
    honest = envelope(kz, type="corridor.checkpoint", body=checkpoint_body("KZ", size=7), seq=1)
    forked_body = {**checkpoint_body("KZ", size=7), "head": "cd" * 32}
    forked = envelope(kz, type="corridor.checkpoint", body=forked_body, seq=2)
    assert (await post_jose(uz, honest)).json()["status"] == "accepted"
    response = await post_jose(uz, forked)
    assert (response.json()["status"], response.json()["code"]) == ("rejected", "14")
    async with uz.node.sessionmaker() as session:
        assert (await session.scalars(select(Checkpoint.head))).all() == [HEAD]


async def test_batch_mixing_good_and_bad_messages_applies_the_good_and_answers_each(
    corridor: InProcessCorridor, members: dict[str, Member]
) -> None:
    uz, kz = corridor["UZ"], members["KZ"]
    good_ping = envelope(kz, seq=1)
    tampered = with_payload(envelope(kz, seq=2), lambda claims: {**claims, "seq": 20})
    good_checkpoint = envelope(kz, type="corridor.checkpoint", body=checkpoint_body("KZ"), seq=3)
    stranger = envelope(members["XX"], iss="KZ", seq=4)
    inapplicable = envelope(kz, type="corridor.checkpoint", body=checkpoint_body("UZ", size=2), seq=5)
    from_tm = envelope(members["TM"], seq=1)
    before = await stored(uz.node)

    response = await uz.client.post(
        INBOX, json={"messages": [good_ping, tampered, good_checkpoint, stranger, inapplicable, "junk", from_tm]}
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert [result["status"] or result["problem"]["reason"] for result in results] == [
        "accepted",
        "bad-signature",
        "accepted",
        "unknown-key",
        "rejected",
        "malformed",
        "accepted",
    ]
    for token, result in zip(
        [good_ping, good_checkpoint, inapplicable], [results[0], results[2], results[4]], strict=True
    ):
        receipt = receipt_of(corridor, token, result["receipt"], message_id=message_id_of(token))
        assert receipt.status == result["status"]
    for result in (results[1], results[3], results[5]):
        assert result["receipt"] is None and result["problem"]["detail"]

    after = await stored(uz.node)
    assert after["inbox"] == before["inbox"] + 4
    assert after["checkpoints"] == before["checkpoints"] + 1
    assert after["log_entries"] == before["log_entries"] + 8
    async with uz.node.sessionmaker() as session:
        kept = set((await session.scalars(select(InboxMessage.token))).all())
    assert kept == {good_ping, good_checkpoint, inapplicable, from_tm}
