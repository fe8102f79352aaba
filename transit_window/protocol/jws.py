"""JWS in the two forms the corridor uses: compact (RFC 7515 §7.1) for envelopes, receipts, requests and permits,
and JSON general serialization (§7.2.1) for the threshold-signed trust list, whose every signature is computed over
the same signing input as a compact JWS with that protected header.

Hand-written on purpose, over libsodium's Ed25519 (PyNaCl): for one fixed algorithm a compact JWS is three strict
base64url segments and one signature, and joserfc's generic path (header registry, algorithm lookup, key wrapping)
costs about 50 µs per sign and 70 µs per verify on top of the curve itself, while libsodium verifies about 1.6 times
faster than OpenSSL on these machines; a receipted message pays two signs and two verifies. Keys, PEM files, JWKs and
RFC 7638 thumbprints stay with joserfc and cryptography (`keys.py`), and the tests check every form produced here with
two independent JOSE libraries (joserfc and jwcrypto).

The algorithm is pinned to `EdDSA` (RFC 8037) as the corridor protocol says; anything else is refused.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, NamedTuple

import orjson
from nacl.exceptions import BadSignatureError

from transit_window.protocol.keys import SigningKey, VerifyingKey

_header_cache: dict[tuple[str, str], str] = {}


class JWSError(Exception):
    """The token is not a well-formed JWS of the expected shape."""


class SignatureError(Exception):
    """The signature does not verify with the given key."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, *, canonical: bool = False) -> bytes:
    """Strict base64url without padding: any other character is refused. With `canonical`, non-zero trailing bits
    are refused too, so a signature has exactly one string form (header and payload are covered by the signature,
    so their form cannot change without breaking it)."""
    if len(text) % 4 == 1:
        raise JWSError("not base64url")
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise JWSError("not base64url") from exc
    if b"=" in raw:  # strict mode takes padding, and "<signature>==" would verify as a second spelling of the token
        raise JWSError("not base64url: JWS segments carry no padding")
    try:
        data = binascii.a2b_base64(raw.translate(_TO_STANDARD) + b"=" * (-len(raw) % 4), strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise JWSError("not base64url") from exc
    if canonical and len(text) % 4 and text[-1] not in _CANONICAL_LAST[len(text) % 4]:
        raise JWSError("non-canonical base64url")
    return data


# '+' and '/' become invalid characters, refused by strict mode. bytes.translate: str.translate with a dict table
# costs about 15 ns a character, a third of a permit check's overhead.
_TO_STANDARD = bytes.maketrans(b"-_+/", b"+/-_")
# The last character of a group of 2 (3) carries 4 (2) padding bits: canonical when they are zero, i.e. when the
# text is what encoding the decoded bytes gives back (the same test, without encoding them again).
_CANONICAL_LAST = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}


def _protected(kid: str, typ: str) -> str:
    cached = _header_cache.get((kid, typ))
    if cached is None:
        cached = b64url(orjson.dumps({"alg": "EdDSA", "kid": kid, "typ": typ}))
        _header_cache[(kid, typ)] = cached
    return cached


def sign_compact(payload: bytes, *, key: SigningKey, typ: str) -> str:
    if not payload:
        # An empty payload segment is RFC 7515's detached content, which `verify_compact` refuses: signing one would
        # make a token this module cannot read back.
        raise ValueError("a corridor JWS carries its payload; there is nothing to sign")
    signing_input = f"{_protected(key.kid, typ)}.{b64url(payload)}"
    signature = key.sodium.sign(signing_input.encode("ascii")).signature
    return f"{signing_input}.{b64url(signature)}"


def _split(token: str) -> tuple[str, str, str]:
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise JWSError("a compact JWS has three non-empty base64url parts separated by dots")
    return parts[0], parts[1], parts[2]


def _header(segment: str) -> dict[str, Any]:
    """The decoded protected header. A node sees a handful of distinct headers (one per key and `typ`), so the
    decoded ones are kept: a copy is handed out, so no caller can change what the next one reads."""
    cached = _parsed_headers.get(segment)
    if cached is not None:
        return dict(cached)
    try:
        header = orjson.loads(b64url_decode(segment))
    except orjson.JSONDecodeError as exc:
        raise JWSError("the protected header is not JSON") from exc
    if not isinstance(header, dict):
        raise JWSError("the protected header is not a JSON object")
    if len(_parsed_headers) >= _PARSED_HEADERS_MAX:  # a flood of made-up headers cannot grow it without bound
        _parsed_headers.clear()
    _parsed_headers[segment] = dict(header)
    return header


_parsed_headers: dict[str, dict[str, Any]] = {}
_PARSED_HEADERS_MAX = 1024


def peek_compact(token: str) -> tuple[dict[str, Any], bytes]:
    """Header and payload of a compact JWS, *unverified*: only to find the key to verify it with."""
    header_b64, payload_b64, signature_b64 = _split(token)
    header = _header(header_b64)
    b64url_decode(signature_b64, canonical=True)
    return header, b64url_decode(payload_b64)


class Compact(NamedTuple):
    """A compact JWS taken apart once, *unverified*: the header to pick the key with, the rest for `verify_parsed`
    (a border post checking permits by the thousand decodes each part once)."""

    header: dict[str, Any]
    header_b64: str
    payload_b64: str
    signature_b64: str


def parse_compact(token: str) -> Compact:
    header_b64, payload_b64, signature_b64 = _split(token)
    return Compact(_header(header_b64), header_b64, payload_b64, signature_b64)


def verify_compact(token: str, *, key: VerifyingKey) -> bytes:
    """The payload of `token` if `key` signed it with EdDSA; raises `JWSError` or `SignatureError`."""
    return verify_parsed(parse_compact(token), key=key)


def verify_parsed(compact: Compact, *, key: VerifyingKey) -> bytes:
    """`verify_compact` of a token already taken apart by `parse_compact`."""
    header = compact.header
    if header.get("alg") != "EdDSA":
        raise JWSError('only alg "EdDSA" is accepted')
    if "crit" in header:
        raise JWSError("no critical header extensions are understood")
    signature = b64url_decode(compact.signature_b64, canonical=True)
    try:
        signing_input = f"{compact.header_b64}.{compact.payload_b64}".encode("ascii")
    except UnicodeEncodeError as exc:
        raise JWSError("not ASCII") from exc
    try:
        key.sodium.verify(signing_input, signature)
    except (BadSignatureError, ValueError) as exc:
        raise SignatureError("signature does not verify") from exc
    return b64url_decode(compact.payload_b64)


def general_signature(payload: bytes, *, key: SigningKey, typ: str) -> dict[str, str]:
    """One signature entry of a JSON general serialization over `payload`."""
    protected_b64, _payload_b64, signature_b64 = sign_compact(payload, key=key, typ=typ).split(".")
    return {"protected": protected_b64, "signature": signature_b64}


def verify_general_signature(payload_b64: str, entry: dict[str, Any], *, key: VerifyingKey) -> None:
    token = f"{entry['protected']}.{payload_b64}.{entry['signature']}"
    verify_compact(token, key=key)
