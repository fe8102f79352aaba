"""Compact JWS under attack: whatever is done to a signed token, the corridor refuses it, and says so the way it was
built to, never with an exception nobody expected.

A token is taken apart the ways an attacker or a bad scanner would: a character changed anywhere, a bit flipped
inside a decoded segment, segments swapped or duplicated, the token truncated, padded or extended, the header
rewritten (alg "none", another kid or typ), the payload or signature spliced in from another token, the signature
made non-canonical (trailing bits, S + L). `verify_compact` must raise `JWSError` or `SignatureError`, and
`verify_permit` must answer with a verdict that is not "valid", unless what it read out of the text is, byte for
byte, the token that was signed (a scanner's text may wrap the token: "…?t=<token>").
"""

from __future__ import annotations

import string
from datetime import timedelta

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.support.keys import TestMember as Member
from tests.support.keys import signed, trust_body
from transit_window import clock
from transit_window.permits.signed import PERMIT_TYP, Carrier, PermitClaims, sign_permit
from transit_window.permits.verify import Verdict, read_qr_payload, verify_permit
from transit_window.protocol import jws
from transit_window.protocol.keys import VerifyingKey, verifying_key
from transit_window.protocol.trust import TrustList

B64URL = string.ascii_letters + string.digits + "-_"
# The order of the group of Ed25519's base point: S and S + L are the same scalar, so a verifier that does not
# insist on S < L accepts a second signature for every message (RFC 8032 §5.1.7 says refuse).
ED25519_L = 2**252 + 27742317777372353535851937790883648493


@pytest.fixture(scope="module")
def trust(members: dict[str, Member]) -> TrustList:
    corridor = [members[node] for node in ("KZ", "UZ", "TM")]
    return signed(trust_body(corridor, threshold=2), corridor)


@pytest.fixture(scope="module")
def permit(members: dict[str, Member]) -> str:
    now = clock.utcnow()
    claims = PermitClaims.model_validate(
        {
            "id": "UZ-KZ-2026-2-17",
            "type": "transit",
            "year": now.year,
            "iss": "UZ",
            "for": "KZ",
            "carrier": Carrier(id="230340000126", name="Almaty Fruit Export LLP"),
            "plate": "123ABC02",
            "trips": 4,
            "route": ["KZ", "UZ", "TM"],
            "nbf": now - timedelta(days=1),
            "iat": now - timedelta(hours=1),
            "exp": now + timedelta(days=30),
        }
    )
    return sign_permit(claims, key=members["UZ"].key)


# --- mutations -------------------------------------------------------------------------------------------------


def _segments(token: str) -> list[str]:
    return token.split(".")


@st.composite
def substituted(draw: st.DrawFn, token: str) -> str:
    position = draw(st.integers(0, len(token) - 1))
    character = draw(
        st.one_of(st.sampled_from(B64URL + ".=+/ \t\n"), st.characters(codec="utf-8")).filter(
            lambda c: c != token[position]
        )
    )
    return token[:position] + character + token[position + 1 :]


@st.composite
def bit_flipped(draw: st.DrawFn, token: str) -> str:
    """A bit flipped inside a decoded segment, encoded again: well-formed base64url, different content."""
    parts = _segments(token)
    index = draw(st.integers(0, 2))
    raw = bytearray(jws.b64url_decode(parts[index]))
    bit = draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    parts[index] = jws.b64url(bytes(raw))
    return ".".join(parts)


@st.composite
def rearranged(draw: st.DrawFn, token: str) -> str:
    parts = _segments(token)
    order = draw(st.lists(st.integers(0, 2), min_size=1, max_size=5).filter(lambda order: order != [0, 1, 2]))
    return ".".join(parts[index] for index in order)


@st.composite
def truncated(draw: st.DrawFn, token: str) -> str:
    start = draw(st.integers(0, len(token) - 1))
    end = draw(st.integers(start, len(token)))
    return token[start:end] if (start, end) != (0, len(token)) else token[:-1]


@st.composite
def padded(draw: st.DrawFn, token: str) -> str:
    """base64 padding, whitespace or dots added at a segment boundary, or bytes appended to a segment."""
    parts = _segments(token)
    index = draw(st.integers(0, 2))
    extra = draw(st.sampled_from(["=", "==", "===", " ", "\n", ".", "..", "A", "AA", "AAAA", "\x00"]))
    where = draw(st.sampled_from(["before", "after"]))
    parts[index] = extra + parts[index] if where == "before" else parts[index] + extra
    return ".".join(parts)


@st.composite
def inserted(draw: st.DrawFn, token: str) -> str:
    position = draw(st.integers(0, len(token)))
    return token[:position] + draw(st.text(st.sampled_from(B64URL + ".="), min_size=1, max_size=4)) + token[position:]


@st.composite
def reheadered(draw: st.DrawFn, token: str) -> str:
    """The header rewritten (the signature kept): another alg, kid or typ, a critical extension, or not JSON."""
    parts = _segments(token)
    header = orjson.loads(jws.b64url_decode(parts[0]))
    change = draw(
        st.sampled_from(
            [
                {"alg": "none"},
                {"alg": "HS256"},
                {"alg": "ES256"},
                {"alg": "eddsa"},
                {"kid": "0" * 43},
                {"kid": 7},
                {"typ": "JWT"},
                {"typ": "dtc-revocations+jws"},
                {"crit": ["exp"]},
                {"extra": "ignored?"},
            ]
        )
    )
    rewritten = draw(st.sampled_from([orjson.dumps({**header, **change}), b"[]", b"null", b"{", b"\xff\xfe"]))
    parts[0] = jws.b64url(rewritten)
    if draw(st.booleans()):
        parts[2] = ""  # alg "none" style: no signature at all
    return ".".join(parts)


def _non_canonical(token: str) -> list[str]:
    """The same signature bytes written differently: a set padding bit in the last character, and S + L."""
    header, payload, signature = _segments(token)
    last = B64URL[(B64URL.index(signature[-1]) + 1) % 64]  # the low bits of the last character are padding
    raw = jws.b64url_decode(signature)
    s = int.from_bytes(raw[32:], "little") + ED25519_L
    return [
        f"{header}.{payload}.{signature[:-1]}{last}",
        f"{header}.{payload}.{jws.b64url(raw[:32] + s.to_bytes(32, 'little'))}",
    ]


def mutations(token: str, other: str) -> st.SearchStrategy[str]:
    """Every way to spoil `token`, and splices with `other` (a token signed by the same key over other content)."""
    ours, theirs = _segments(token), _segments(other)
    spliced = [
        f"{ours[0]}.{theirs[1]}.{ours[2]}",
        f"{ours[0]}.{ours[1]}.{theirs[2]}",
        f"{theirs[0]}.{ours[1]}.{ours[2]}",
    ]
    return st.one_of(
        substituted(token),
        bit_flipped(token),
        rearranged(token),
        truncated(token),
        padded(token),
        inserted(token),
        reheadered(token),
        st.sampled_from(spliced + _non_canonical(token)),
    )


# --- compact JWS ----------------------------------------------------------------------------------------------


@given(payload=st.binary(min_size=1, max_size=512), typ=st.text(string.ascii_letters + "+-", min_size=1, max_size=20))
def test_what_is_signed_verifies_to_the_same_bytes(members: dict[str, Member], payload: bytes, typ: str) -> None:
    key = members["UZ"].key
    token = jws.sign_compact(payload, key=key, typ=typ)
    assert jws.verify_compact(token, key=_verifier(members, "UZ")) == payload
    assert jws.parse_compact(token).header == {"alg": "EdDSA", "kid": key.kid, "typ": typ}
    with pytest.raises(jws.SignatureError):
        jws.verify_compact(token, key=_verifier(members, "KZ"))


def test_an_empty_payload_is_not_signed(members: dict[str, Member]) -> None:
    """It would be detached content (an empty middle segment), which the corridor does not read."""
    with pytest.raises(ValueError, match="nothing to sign"):
        jws.sign_compact(b"", key=members["UZ"].key, typ="dtc-test+jws")


def _verifier(members: dict[str, Member], node: str) -> VerifyingKey:
    return verifying_key(members[node].key.public_jwk)


@given(data=st.data(), payload=st.binary(min_size=1, max_size=256))
def test_every_mutation_of_a_signed_token_is_refused(
    members: dict[str, Member], data: st.DataObject, payload: bytes
) -> None:
    key = members["UZ"].key
    token = jws.sign_compact(payload, key=key, typ="dtc-test+jws")
    other = jws.sign_compact(payload + b"!", key=key, typ="dtc-test+jws")
    mutated = data.draw(mutations(token, other), label="mutated")
    if mutated == token:
        return
    with pytest.raises((jws.JWSError, jws.SignatureError)):
        jws.verify_compact(mutated, key=_verifier(members, "UZ"))


@pytest.mark.parametrize("segment", [0, 1, 2])
@pytest.mark.parametrize("padding", ["=", "==", "===", "===="])
def test_base64_padding_is_not_a_second_spelling_of_a_token(
    members: dict[str, Member], segment: int, padding: str
) -> None:
    """Found by the mutation test above: "<signature>==" used to verify (strict base64 takes padding)."""
    token = jws.sign_compact(b'{"mrn":"26KZ55020T000001J9"}', key=members["UZ"].key, typ="dtc-test+jws")
    parts = _segments(token)
    parts[segment] += padding
    with pytest.raises((jws.JWSError, jws.SignatureError)):
        jws.verify_compact(".".join(parts), key=_verifier(members, "UZ"))


@given(text=st.text(st.characters(codec="utf-8"), max_size=200))
@example(text="a.b.c")
@example(text="..")
@example(text="e30.e30.AA")
def test_any_text_is_refused_as_a_jws_without_surprises(members: dict[str, Member], text: str) -> None:
    with pytest.raises((jws.JWSError, jws.SignatureError)):
        jws.verify_compact(text, key=_verifier(members, "UZ"))


@given(text=st.text(st.sampled_from(B64URL + "=+/ "), max_size=40))
def test_canonical_base64url_has_one_spelling(text: str) -> None:
    """What decodes canonically is exactly what encoding gives back: a signature cannot be written two ways."""
    try:
        decoded = jws.b64url_decode(text, canonical=True)
    except jws.JWSError:
        return
    assert jws.b64url(decoded) == text


@given(raw=st.binary(max_size=100))
def test_base64url_round_trips(raw: bytes) -> None:
    assert jws.b64url_decode(jws.b64url(raw), canonical=True) == raw


# --- permits ---------------------------------------------------------------------------------------------------


def test_the_unspoiled_permit_is_valid(trust: TrustList, permit: str) -> None:
    assert verify_permit(permit, trust=trust, revocations={}).result == "valid"


@given(data=st.data())
def test_every_mutation_of_a_permit_is_refused_with_a_verdict(
    members: dict[str, Member], trust: TrustList, permit: str, data: st.DataObject
) -> None:
    _, payload, _ = _segments(permit)
    other = sign_permit(
        PermitClaims.model_validate_json(jws.b64url_decode(payload)).model_copy(update={"trips": 100}),
        key=members["UZ"].key,
    )
    mutated = data.draw(mutations(permit, other), label="mutated")
    verdict = verify_permit(mutated, trust=trust, revocations={})
    assert isinstance(verdict, Verdict)
    if read_qr_payload(mutated) == permit:
        return  # the scanner's text carried the untouched token ("…=<token>", surrounding whitespace)
    assert verdict.result != "valid", mutated
    assert verdict.reasons and all(reason for reason in verdict.reasons)


@given(text=st.text(st.characters(codec="utf-8"), max_size=300))
@example(text="https://verify.example/?t=a.b.c&x=1")
@example(text="?=&#")
def test_any_scanned_text_gets_a_verdict(trust: TrustList, text: str) -> None:
    verdict = verify_permit(text, trust=trust, revocations={})
    assert verdict.result != "valid"
    assert verdict.reasons


def test_a_permit_signed_by_a_stranger_in_a_members_name_is_refused(
    members: dict[str, Member], trust: TrustList, permit: str
) -> None:
    """The stranger XX signs the very claims, and puts UZ's kid in the header."""
    _, payload, _ = _segments(permit)
    forged_header = jws.b64url(orjson.dumps({"alg": "EdDSA", "kid": members["UZ"].key.kid, "typ": PERMIT_TYP}))
    signing_input = f"{forged_header}.{payload}"
    signature = members["XX"].key.sodium.sign(signing_input.encode("ascii")).signature
    verdict = verify_permit(f"{signing_input}.{jws.b64url(signature)}", trust=trust, revocations={})
    assert verdict.result == "bad-signature"
