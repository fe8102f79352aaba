"""Signed requests between nodes for the read endpoints (pulling missed messages, witnessed checkpoints).

A node signs `{iss, aud, iat, method, path}` as a compact JWS (`typ: dtc-request+jws`) and sends it as
`Authorization: DTC-Signature <jws>`. The receiver checks it against the trust list like an envelope. These reads
change nothing, so replay inside the skew window gains an attacker nothing they could not see already as the peer.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime, timedelta

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from transit_window import clock
from transit_window.errors import NotAuthentic, NotAuthenticated
from transit_window.protocol import jws
from transit_window.protocol.keys import SigningKey
from transit_window.protocol.trust import TrustList

REQUEST_TYP = "dtc-request+jws"
SCHEME = "DTC-Signature"


class RequestClaims(BaseModel):
    model_config = ConfigDict(extra="ignore")

    iss: str
    aud: str
    iat: datetime
    method: str
    path: str


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
    """Return the calling node's id, or raise."""
    if not authorization or not authorization.startswith(f"{SCHEME} "):
        raise NotAuthenticated(
            f"sign this request as a corridor node: Authorization: {SCHEME} <compact JWS>", challenge=SCHEME
        )
    token = authorization[len(SCHEME) + 1 :].strip()
    try:
        header, _ = jws.peek_compact(token)
    except jws.JWSError as exc:
        raise NotAuthentic("malformed", f"request signature is not a compact JWS: {exc}") from exc
    if header.get("typ") != REQUEST_TYP or header.get("alg") != "EdDSA":
        raise NotAuthentic("bad-header", f"request signature needs alg EdDSA and typ {REQUEST_TYP}")
    entry = trust.key(str(header.get("kid")))
    if entry is None:
        raise NotAuthentic("unknown-key", f"key {header.get('kid')} is not in the trust list")
    try:
        claims = RequestClaims.model_validate_json(jws.verify_compact(token, key=entry.verifier))
    except (jws.SignatureError, jws.JWSError, ValidationError) as exc:
        raise NotAuthentic("bad-signature", "request signature does not verify") from exc
    if claims.iss != entry.node:
        raise NotAuthentic("wrong-issuer", f"key belongs to {entry.node}, not {claims.iss}")
    if not entry.key.valid_at(claims.iat):
        raise NotAuthentic("key-not-valid", entry.key.why_not_valid_at(claims.iat))
    if claims.aud != me:
        raise NotAuthentic("wrong-audience", f"request signed for {claims.aud}; this node is {me}")
    now = clock.utcnow()
    if abs((claims.iat - now).total_seconds()) > skew.total_seconds():
        raise NotAuthentic("future-iat", "request signature is outside the allowed clock skew")
    if claims.method != method or claims.path != path:
        raise NotAuthentic("bad-payload", "request signature covers another method or path")
    return claims.iss
