"""Signed requests between nodes for the read endpoints (pulling missed messages, witnessed checkpoints).

A node signs `{iss, aud, iat, method, path}` as a compact JWS (`typ: dtc-request+jws`) and sends it as
`Authorization: DTC-Signature <jws>`. The receiver checks it against the trust list like an envelope, then that it
is recent and signs this very request. These reads change nothing, so replay inside the window gains an attacker
nothing they could not see already as the peer.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from transit_window import clock
from transit_window.dates import Rfc3339
from transit_window.errors import RequestNotAuthentic
from transit_window.protocol import jws
from transit_window.protocol.keys import SigningKey
from transit_window.protocol.trust import TrustList

REQUEST_TYP = "dtc-request+jws"
NODE_PATTERN = r"^[A-Z]{2}$"
SCHEME = "DTC-Signature"


class RequestClaims(BaseModel):
    """The signed payload of a request. Unknown fields are ignored, like an envelope's."""

    model_config = ConfigDict(extra="ignore")

    iss: str = Field(pattern=NODE_PATTERN)
    aud: str = Field(pattern=NODE_PATTERN)
    iat: Rfc3339
    method: str = Field(min_length=1, max_length=16)
    path: str = Field(pattern=r"^/", max_length=8192)


class PeerAuth(httpx.Auth):
    """httpx auth that signs each request as this node for the peer `aud`."""

    def __init__(self, *, key: SigningKey, iss: str, aud: str) -> None:
        self.key = key
        self.iss = iss
        self.aud = aud

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        path = request.url.raw_path.decode("ascii")
        claims = {
            "iss": self.iss,
            "aud": self.aud,
            "iat": clock.isoformat(clock.utcnow()),
            "method": request.method,
            "path": path,
        }
        token = jws.sign_compact(orjson.dumps(claims), key=self.key, typ=REQUEST_TYP)
        request.headers["Authorization"] = f"{SCHEME} {token}"
        yield request


def verify_request(
    authorization: str | None, *, trust: TrustList, me: str, method: str, path: str, skew: timedelta
) -> str:
    """Return the calling node's id, or raise `RequestNotAuthentic` naming the first check that failed (the order
    and the reasons are PROTOCOL.md §5's table). `path` is the request target as received: the path and, if there
    is one, `?` and the query string, exactly as sent."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != SCHEME.lower() or not token.strip():
        raise RequestNotAuthentic(
            "unsigned", f"sign this request as a corridor node: Authorization: {SCHEME} <compact JWS>"
        )
    token = token.strip()
    try:
        header, _ = jws.peek_compact(token)
    except jws.JWSError as exc:
        raise RequestNotAuthentic("malformed", f"the request signature is not a compact JWS: {exc}") from exc
    kid = header.get("kid")
    if header.get("alg") != "EdDSA" or header.get("typ") != REQUEST_TYP or not isinstance(kid, str) or "crit" in header:
        raise RequestNotAuthentic(
            "bad-header",
            f'the request signature\'s header must have alg "EdDSA", typ "{REQUEST_TYP}", a kid and no crit',
        )
    entry = trust.key(kid)
    if entry is None:
        raise RequestNotAuthentic("unknown-key", f"key {kid} is not in trust list version {trust.version}")
    try:
        raw = jws.verify_compact(token, key=entry.verifier)
    except (jws.SignatureError, jws.JWSError) as exc:
        raise RequestNotAuthentic("bad-signature", f"the request signature does not verify with key {kid}") from exc
    try:
        claims = RequestClaims.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestNotAuthentic(
            "bad-claims", f"the signed payload is not {{iss, aud, iat, method, path}}: {_first_error(exc)}"
        ) from exc
    if claims.iss != entry.node:
        raise RequestNotAuthentic("wrong-issuer", f"key {kid} belongs to {entry.node}, not to {claims.iss}")
    if not entry.key.valid_at(claims.iat):
        raise RequestNotAuthentic("key-not-valid", entry.key.why_not_valid_at(claims.iat))
    if claims.aud != me:
        raise RequestNotAuthentic("wrong-audience", f"the request is signed for {claims.aud}; this node is {me}")
    now = clock.utcnow()
    window = skew.total_seconds()
    if claims.iat > now + skew:
        raise RequestNotAuthentic(
            "future-iat",
            f"iat {clock.isoformat(claims.iat)} is {(claims.iat - now).total_seconds():.0f} s ahead of this node's "
            f"clock (allowed skew {window:.0f} s): check the signer's clock",
        )
    if claims.iat < now - skew:
        raise RequestNotAuthentic(
            "stale-request",
            f"iat {clock.isoformat(claims.iat)} is {(now - claims.iat).total_seconds():.0f} s old; a signed request "
            f"is valid for {window:.0f} s: sign each request when you send it",
        )
    if claims.method != method or claims.path != path:
        raise RequestNotAuthentic(
            "request-mismatch",
            f"the signature covers {claims.method} {claims.path}, this request is {method} {path}",
        )
    return claims.iss


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else None
    if first is None:
        return str(exc)
    return "/" + "/".join(str(part) for part in first["loc"]) + f": {first['msg']}"
