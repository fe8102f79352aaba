"""Envelopes and receipts as compact JWS: sealed by one node, opened by another, checkable with any JOSE library.

The last tests verify what we sign with `jwcrypto`, a JOSE implementation the project does not use, from the public
JWK in the trust list alone: proof that a partner building a node in another stack can check our messages.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

import orjson
import pytest
from jwcrypto import jwk as jc_jwk
from jwcrypto import jws as jc_jws

from tests.support.keys import signed, trust_body
from transit_window import clock, ids
from transit_window.errors import NotAuthentic
from transit_window.protocol import jws
from transit_window.protocol.corridor_messages import PingBody
from transit_window.protocol.envelope import (
    MESSAGE_TYP,
    RECEIPT_TYP,
    ReceiptError,
    digest_of,
    open_envelope,
    seal,
    sign_receipt,
    verify_receipt,
)
from transit_window.protocol.trust import TrustList

if TYPE_CHECKING:
    from tests.support.keys import TestMember  # not imported at run time: pytest would try to collect it

SKEW = timedelta(minutes=2)


@pytest.fixture
def trust(members: dict[str, TestMember]) -> TrustList:
    """KZ, UZ and TM; XX is a stranger whose key is in no trust list."""
    three = [members[node] for node in ("KZ", "UZ", "TM")]
    return signed(trust_body(three, threshold=2), three)


def _ping(sender: TestMember, *, aud: str = "UZ", note: str = "hello", seq: int = 1, iss: str | None = None) -> str:
    return seal(
        key=sender.key,
        message_id=ids.new_id(),
        type="corridor.ping",
        iss=iss or sender.node,
        aud=aud,
        iat=clock.utcnow(),
        seq=seq,
        subject="ping",
        trust=1,
        body={"note": note},
    )


def _flip_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    return f"{header}.{payload}.{flipped}"


def test_sealed_ping_from_kz_opens_at_uz_with_every_field_intact(
    members: dict[str, TestMember], trust: TrustList
) -> None:
    message_id = ids.new_id()
    iat = clock.utcnow()
    token = seal(
        key=members["KZ"].key,
        message_id=message_id,
        type="corridor.ping",
        iss="KZ",
        aud="UZ",
        iat=iat,
        seq=7,
        subject="ping:test",
        trust=1,
        body={"note": "salem"},
    )

    opened = open_envelope(token, trust=trust, me="UZ", now=clock.utcnow(), skew=SKEW)

    assert opened.token == token
    assert opened.digest == hashlib.sha256(token.encode()).hexdigest() == digest_of(token)
    assert opened.kid == members["KZ"].key.kid
    payload = opened.payload
    assert (payload.id, payload.type, payload.iss, payload.aud, payload.seq) == (
        message_id,
        "corridor.ping",
        "KZ",
        "UZ",
        7,
    )
    assert (payload.subject, payload.trust) == ("ping:test", 1)
    assert abs(payload.iat - iat) < timedelta(milliseconds=1)
    assert isinstance(opened.body, PingBody) and opened.body.note == "salem"


def test_envelope_that_is_not_authentic_is_refused_naming_the_first_thing_wrong(
    members: dict[str, TestMember], trust: TrustList
) -> None:
    now = clock.utcnow()
    token = _ping(members["KZ"])
    cases = {
        "bad-signature": _flip_signature(token),
        "unknown-key": _ping(members["XX"]),
        "wrong-issuer": _ping(members["KZ"], iss="TM"),
        "wrong-audience": _ping(members["KZ"], aud="TM"),
        "malformed": "not.a-jws",
    }
    for slug, candidate in cases.items():
        with pytest.raises(NotAuthentic) as refused:
            open_envelope(candidate, trust=trust, me="UZ", now=now, skew=SKEW)
        assert refused.value.reason == slug, (slug, refused.value.detail)
    with pytest.raises(NotAuthentic) as future:
        open_envelope(token, trust=trust, me="UZ", now=now - timedelta(minutes=10), skew=SKEW)
    assert future.value.reason == "future-iat" and "check the sender's clock" in future.value.detail


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "019DF1AD-EA40-7000-8000-000000000001"),
        ("id", "{019df1ad-ea40-7000-8000-000000000001}"),
        ("iat", 1777876200),
        ("iat", "1777876200"),
        ("iat", "2026-05-04 06:30:00Z"),
        ("seq", 2**53),
        ("seq", 1.0),
        ("trust", "1"),
    ],
    ids=[
        "id-upper-case",
        "id-in-braces",
        "iat-a-number",
        "iat-digits",
        "iat-with-a-space",
        "seq-past-2^53-1",
        "seq-a-float",
        "trust-a-string",
    ],
)
def test_envelope_fields_of_another_type_than_the_table_says_are_refused_as_bad_payload(
    members: dict[str, TestMember], trust: TrustList, field: str, value: object
) -> None:
    """PROTOCOL.md's types are exact: what another JSON library might write instead is refused, never reread."""
    payload = {
        "id": ids.new_id(),
        "type": "corridor.ping",
        "iss": "KZ",
        "aud": "UZ",
        "iat": clock.isoformat(clock.utcnow()),
        "seq": 1,
        "subject": None,
        "trust": 1,
        "body": {"note": "typed"},
        field: value,
    }
    token = jws.sign_compact(orjson.dumps(payload), key=members["KZ"].key, typ=MESSAGE_TYP)
    with pytest.raises(NotAuthentic) as refused:
        open_envelope(token, trust=trust, me="UZ", now=clock.utcnow(), skew=SKEW)
    assert refused.value.reason == "bad-payload", refused.value.detail


def test_receipt_signed_by_uz_proves_delivery_of_exactly_that_message(
    members: dict[str, TestMember], trust: TrustList
) -> None:
    token = _ping(members["KZ"])
    message_id = open_envelope(token, trust=trust, me="UZ", now=clock.utcnow(), skew=SKEW).payload.id
    digest = digest_of(token)
    receipt = sign_receipt(
        key=members["UZ"].key,
        message_id=message_id,
        digest=digest,
        status="accepted",
        code=None,
        detail=None,
        iss="UZ",
        aud="KZ",
        at=clock.utcnow(),
    )

    checked = verify_receipt(receipt, trust=trust, expect_from="UZ", message_id=message_id, digest=digest)
    assert (checked.msg, checked.digest, checked.status, checked.iss, checked.aud) == (
        message_id,
        digest,
        "accepted",
        "UZ",
        "KZ",
    )

    with pytest.raises(ReceiptError, match="answers another message"):
        verify_receipt(receipt, trust=trust, expect_from="UZ", message_id=ids.new_id(), digest=digest)
    with pytest.raises(ReceiptError, match="answers another message"):
        verify_receipt(receipt, trust=trust, expect_from="UZ", message_id=message_id, digest="0" * 64)
    with pytest.raises(ReceiptError, match="is not a key of TM"):
        verify_receipt(receipt, trust=trust, expect_from="TM", message_id=message_id, digest=digest)
    with pytest.raises(ReceiptError, match="does not verify"):
        verify_receipt(_flip_signature(receipt), trust=trust, expect_from="UZ", message_id=message_id, digest=digest)
    stranger = sign_receipt(
        key=members["XX"].key,
        message_id=message_id,
        digest=digest,
        status="accepted",
        code=None,
        detail=None,
        iss="UZ",
        aud="KZ",
        at=clock.utcnow(),
    )
    with pytest.raises(ReceiptError, match="is not a key of UZ"):
        verify_receipt(stranger, trust=trust, expect_from="UZ", message_id=message_id, digest=digest)


def test_message_ids_are_uuid7_and_sort_in_creation_order() -> None:
    before_ms = time.time_ns() // 1_000_000
    made = [ids.new_id() for _ in range(2000)]
    after_ms = time.time_ns() // 1_000_000

    parsed = [uuid.UUID(value) for value in made]
    assert all(value.version == 7 and value.variant == uuid.RFC_4122 for value in parsed)
    assert len(set(made)) == len(made)
    assert made == sorted(made), "ids made later must sort later (as text and as 128-bit numbers)"
    assert [value.int for value in parsed] == sorted(value.int for value in parsed)
    for value in (parsed[0], parsed[-1]):
        millis = value.int >> 80
        assert before_ms <= millis <= after_ms + 1


def _jwcrypto_key(trust: TrustList, node: str) -> jc_jwk.JWK:
    """The member's public key exactly as the trust list publishes it, and nothing else."""
    member = trust.member(node)
    assert member is not None
    return jc_jwk.JWK(**member.keys[0].jwk)


def test_an_independent_jose_library_verifies_our_envelope_from_the_trust_list_alone(
    members: dict[str, TestMember], trust: TrustList
) -> None:
    token = _ping(members["KZ"], note="checked elsewhere")
    published = TrustList.from_json(trust.to_json())  # what a partner downloads
    key = _jwcrypto_key(published, "KZ")
    assert key.thumbprint() == members["KZ"].key.kid, "kid must be the RFC 7638 thumbprint"

    verifier = jc_jws.JWS()
    verifier.deserialize(token)
    verifier.verify(key, alg="EdDSA")
    assert verifier.jose_header == {"alg": "EdDSA", "kid": key.thumbprint(), "typ": MESSAGE_TYP}
    payload = orjson.loads(verifier.payload)
    assert (payload["iss"], payload["aud"], payload["type"]) == ("KZ", "UZ", "corridor.ping")
    assert payload["body"] == {"note": "checked elsewhere"}

    other = jc_jws.JWS()
    other.deserialize(token)
    with pytest.raises(jc_jws.InvalidJWSSignature):
        other.verify(_jwcrypto_key(published, "UZ"), alg="EdDSA")
    tampered = jc_jws.JWS()
    tampered.deserialize(_flip_signature(token))
    with pytest.raises(jc_jws.InvalidJWSSignature):
        tampered.verify(key, alg="EdDSA")


def test_an_independent_jose_library_verifies_our_receipt_from_the_trust_list_alone(
    members: dict[str, TestMember], trust: TrustList
) -> None:
    token = _ping(members["KZ"])
    receipt = sign_receipt(
        key=members["UZ"].key,
        message_id=ids.new_id(),
        digest=digest_of(token),
        status="rejected",
        code="14",
        detail="rule violation",
        iss="UZ",
        aud="KZ",
        at=clock.utcnow(),
    )
    published = TrustList.from_json(trust.to_json())

    verifier = jc_jws.JWS()
    verifier.deserialize(receipt)
    verifier.verify(_jwcrypto_key(published, "UZ"), alg="EdDSA")
    assert verifier.jose_header["typ"] == RECEIPT_TYP
    payload = orjson.loads(verifier.payload)
    assert (payload["digest"], payload["status"], payload["code"], payload["iss"]) == (
        hashlib.sha256(token.encode()).hexdigest(),
        "rejected",
        "14",
        "UZ",
    )
    with pytest.raises(jc_jws.InvalidJWSSignature):
        jc_jws.JWS().deserialize(receipt, key=_jwcrypto_key(published, "KZ"), alg="EdDSA")
