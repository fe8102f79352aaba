"""Checking a permit with nothing but a trust list and revocation lists: the same function answers
`POST /v1/permits/verify` online and `transit-window permits verify` at a border post with no connection.

The order is the border check of the reference: the signature with the cached key set first (nothing else of an
unauthenticated token is worth reading), then revocation, validity dates and the plate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import orjson
from pydantic import ValidationError

from transit_window import clock
from transit_window.codes import normalise_plate
from transit_window.permits.signed import PERMIT_TYP, REVOCATIONS_TYP, PermitClaims, RevocationList
from transit_window.protocol import jws
from transit_window.protocol.trust import TrustList

Result = Literal[
    "valid",
    "revoked",
    "used-up",
    "expired",
    "not-yet-valid",
    "wrong-vehicle",
    "unknown-issuer",
    "untrusted-key",
    "bad-signature",
    "malformed",
]


@dataclass(slots=True)
class Verdict:
    result: Result
    reasons: list[str]
    claims: PermitClaims | None = None
    kid: str | None = None
    warnings: list[str] = field(default_factory=list)
    revocation_list_version: int | None = None
    usage: tuple[int, int, int] | None = None  # trips, entries, exits: known online only, from the node's record

    @property
    def valid(self) -> bool:
        return self.result == "valid"


_MARKS = ("?", "&", "=", "#")
_SKEW = timedelta(minutes=5)  # a border post's clock may run a little behind the issuer's


class RevocationListError(Exception):
    """A revocation list that is not authentic or not well formed."""


def read_qr_payload(text: str) -> str:
    """The compact JWS in what a scanner read: the bare token, or a URL or text that carries it."""
    text = text.strip()
    if text.count(".") == 2 and not any(mark in text for mark in _MARKS) and len(text.split()) == 1:
        return text  # the usual case, a bare token: what the loop below would find, for a fraction of the cost
    for part in text.replace("?", " ").replace("&", " ").replace("=", " ").replace("#", " ").split():
        if part.count(".") == 2:
            return part
    return text


def verify_permit(
    token: str,
    *,
    trust: TrustList,
    revocations: Mapping[str, RevocationList],
    now: datetime | None = None,
    plate: str | None = None,
) -> Verdict:
    now = now or clock.utcnow()
    token = read_qr_payload(token)
    try:
        compact = jws.parse_compact(token)
    except jws.JWSError as exc:
        return Verdict("malformed", [f"not a compact JWS: {exc}"])
    header = compact.header
    kid = header.get("kid")
    if header.get("typ") != PERMIT_TYP or header.get("alg") != "EdDSA" or not isinstance(kid, str):
        return Verdict("malformed", [f'not a permit: the header must have alg "EdDSA", typ "{PERMIT_TYP}" and a kid'])
    entry = trust.key(kid)
    if entry is None:
        return Verdict(
            "unknown-issuer", [f"key {kid} is in no member's key set of trust list version {trust.version}"], kid=kid
        )
    try:
        raw = jws.verify_parsed(compact, key=entry.verifier)
    except jws.JWSError as exc:
        return Verdict("malformed", [f"not a compact JWS: {exc}"], kid=kid)
    except jws.SignatureError:
        return Verdict("bad-signature", [f"the signature does not verify with {entry.node}'s key {kid}"], kid=kid)
    try:
        claims = PermitClaims.model_validate_json(raw)
    except ValidationError as exc:
        return Verdict("malformed", [f"signed, but not permit claims: {exc.errors()[0]['msg']}"], kid=kid)
    if claims.iss != entry.node:
        return Verdict(
            "bad-signature", [f"key {kid} belongs to {entry.node}, but the permit claims issuer {claims.iss}"], kid=kid
        )
    if entry.key.revoked_at is not None:
        return Verdict(
            "untrusted-key",
            [
                f"{claims.iss} revoked its key {kid} at {clock.isoformat(entry.key.revoked_at)}: "
                "nothing it signed counts"
            ],
            claims=claims,
            kid=kid,
        )
    if not entry.key.valid_at(claims.iat):
        return Verdict("untrusted-key", [entry.key.why_not_valid_at(claims.iat)], claims=claims, kid=kid)

    verdict = Verdict("valid", [], claims=claims, kid=kid)
    found = revocations.get(claims.iss)
    if found is None:
        verdict.warnings.append(f"no revocation list of {claims.iss} is at hand: revocation was not checked")
    else:
        verdict.revocation_list_version = found.version
        if found.is_stale(now):
            verdict.warnings.append(
                f"the revocation list of {claims.iss} (version {found.version}) was due for update at "
                f"{clock.isoformat(found.next_update)}"
            )
        revoked = found.entry(claims.id)
        if revoked is not None:
            verdict.result = "revoked"
            verdict.reasons.append(
                f"{claims.iss} revoked {claims.id} at {clock.isoformat(revoked.revoked_at)}"
                + (f": {revoked.reason}" if revoked.reason else "")
            )
    if now >= claims.exp:
        verdict.result = verdict.result if verdict.result != "valid" else "expired"
        verdict.reasons.append(f"expired at {clock.isoformat(claims.exp)}")
    elif now < claims.nbf:
        verdict.result = verdict.result if verdict.result != "valid" else "not-yet-valid"
        verdict.reasons.append(f"valid only from {clock.isoformat(claims.nbf)}")
    if plate is not None:
        seen = normalise_plate(plate)
        if seen not in (claims.plate, claims.trailer):
            verdict.result = verdict.result if verdict.result != "valid" else "wrong-vehicle"
            verdict.reasons.append(f"the permit is for truck {claims.plate}, not {seen}")
    if verdict.valid:
        verdict.reasons.append(f"signed by {claims.iss} with key {kid}, valid until {clock.isoformat(claims.exp)}")
    return verdict


def open_revocation_list(token: str, *, trust: TrustList, now: datetime | None = None) -> RevocationList:
    """The revocation list in `token` if a member signed it with a key valid when it was issued."""
    now = now or clock.utcnow()
    try:
        header, _ = jws.peek_compact(token)
    except jws.JWSError as exc:
        raise RevocationListError(f"not a compact JWS: {exc}") from exc
    kid = header.get("kid")
    if header.get("typ") != REVOCATIONS_TYP or not isinstance(kid, str):
        raise RevocationListError(f'not a revocation list: the header must have typ "{REVOCATIONS_TYP}" and a kid')
    entry = trust.key(kid)
    if entry is None:
        raise RevocationListError(f"key {kid} is not in trust list version {trust.version}")
    try:
        raw = jws.verify_compact(token, key=entry.verifier)
    except (jws.SignatureError, jws.JWSError) as exc:
        raise RevocationListError(f"the signature does not verify with {entry.node}'s key {kid}") from exc
    try:
        revocations = RevocationList.model_validate(orjson.loads(raw))
    except (ValidationError, orjson.JSONDecodeError) as exc:
        raise RevocationListError(f"signed, but not a revocation list: {exc}") from exc
    if revocations.iss != entry.node:
        raise RevocationListError(f"key {kid} belongs to {entry.node}, but the list claims issuer {revocations.iss}")
    if not entry.key.valid_at(revocations.issued_at):
        raise RevocationListError(entry.key.why_not_valid_at(revocations.issued_at))
    if revocations.issued_at > now + _SKEW:
        raise RevocationListError(f"issued in the future ({clock.isoformat(revocations.issued_at)})")
    return revocations
