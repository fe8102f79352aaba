"""JWS in the two forms the corridor uses, on top of joserfc.

* compact (RFC 7515 §7.1) for envelopes, receipts and permits;
* JSON general serialization (§7.2.1) for the threshold-signed trust list. Each of its signatures is computed over
  the same signing input as a compact JWS with that protected header, so we build and check them through joserfc's
  compact functions instead of hand-writing any crypto.

The algorithm is pinned to `EdDSA` (RFC 8037) as the corridor protocol says; joserfc warns that RFC 9864 prefers the
fully specified `Ed25519` name, which the independent verifiers our partners use do not all know yet, so that one
warning is silenced here and nowhere else.
"""

from __future__ import annotations

import base64
import warnings
from typing import Any

import orjson
from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning

from transit_window.protocol.keys import SigningKey, VerifyingKey

warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)

ALGORITHMS = ["EdDSA"]


class JWSError(Exception):
    """The token is not a well-formed JWS of the expected shape."""


class SignatureError(Exception):
    """The signature does not verify with the given key."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    padding = "=" * (-len(text) % 4)
    try:
        return base64.urlsafe_b64decode(text + padding)
    except (ValueError, TypeError) as exc:
        raise JWSError("not base64url") from exc


def sign_compact(payload: bytes, *, key: SigningKey, typ: str) -> str:
    header = {"alg": "EdDSA", "kid": key.kid, "typ": typ}
    return jws.serialize_compact(header, payload, key.jose_key, algorithms=ALGORITHMS)


def peek_compact(token: str) -> tuple[dict[str, Any], bytes]:
    """Header and payload of a compact JWS, *unverified*: only to find the key to verify it with."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise JWSError("a compact JWS has three non-empty base64url parts separated by dots")
    try:
        header = orjson.loads(b64url_decode(parts[0]))
    except orjson.JSONDecodeError as exc:
        raise JWSError("the protected header is not JSON") from exc
    if not isinstance(header, dict):
        raise JWSError("the protected header is not a JSON object")
    return header, b64url_decode(parts[1])


def verify_compact(token: str, *, key: VerifyingKey) -> bytes:
    try:
        obj = jws.deserialize_compact(token, key.jose_key, algorithms=ALGORITHMS)
    except JoseError as exc:
        raise SignatureError(str(exc) or type(exc).__name__) from exc
    except ValueError as exc:
        raise JWSError(str(exc)) from exc
    return obj.payload


def general_signature(payload: bytes, *, key: SigningKey, typ: str) -> dict[str, str]:
    """One signature entry of a JSON general serialization over `payload`."""
    protected_b64, _payload_b64, signature_b64 = sign_compact(payload, key=key, typ=typ).split(".")
    return {"protected": protected_b64, "signature": signature_b64}


def verify_general_signature(payload_b64: str, entry: dict[str, Any], *, key: VerifyingKey) -> None:
    token = f"{entry['protected']}.{payload_b64}.{entry['signature']}"
    verify_compact(token, key=key)
