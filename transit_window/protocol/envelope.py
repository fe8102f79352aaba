"""Envelopes (`dtc-msg+jws`) and receipts (`dtc-receipt+jws`): building, sealing and verifying them.

The stored, forwarded and audited form is always the exact compact JWS string; nothing here re-serialises a
signed message. Verification runs the checks in a fixed order so a refusal always names the first thing wrong.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from transit_window import clock
from transit_window.dates import Rfc3339
from transit_window.errors import NotAuthentic
from transit_window.protocol import MAX_JSON_INTEGER, jws
from transit_window.protocol.keys import SigningKey
from transit_window.protocol.registry import REGISTRY, require_complete
from transit_window.protocol.trust import TrustList

MESSAGE_TYP = "dtc-msg+jws"
RECEIPT_TYP = "dtc-receipt+jws"
NODE_PATTERN = r"^[A-Z]{2}$"
# A UUIDv7 (RFC 9562) in its one spelling: lower case, hyphens, version 7 and the RFC variant. A receipt's `msg`
# repeats the id, so a receiver that normalised another spelling would answer an id its sender never used.
UUID7_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
DIGEST_PATTERN = r"^[0-9a-f]{64}$"


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


class EnvelopePayload(BaseModel):
    """The signed payload of a corridor message. Unknown extra fields are ignored: a newer peer may add some."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(pattern=UUID7_PATTERN)
    type: str = Field(min_length=1, max_length=100)
    iss: str = Field(pattern=NODE_PATTERN)
    aud: str = Field(pattern=NODE_PATTERN)
    iat: Rfc3339
    seq: int = Field(ge=1, le=MAX_JSON_INTEGER, strict=True)
    subject: str | None = Field(default=None, max_length=200)
    trust: int = Field(ge=1, le=MAX_JSON_INTEGER, strict=True)
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class VerifiedEnvelope:
    payload: EnvelopePayload
    body: BaseModel
    token: str
    digest: str
    kid: str


def seal(
    *,
    key: SigningKey,
    message_id: str,
    type: str,
    iss: str,
    aud: str,
    iat: datetime,
    seq: int,
    subject: str | None,
    trust: int,
    body: dict[str, Any],
) -> str:
    payload = {
        "id": message_id,
        "type": type,
        "iss": iss,
        "aud": aud,
        "iat": clock.isoformat(iat),
        "seq": seq,
        "subject": subject,
        "trust": trust,
        "body": body,
    }
    return jws.sign_compact(orjson.dumps(payload), key=key, typ=MESSAGE_TYP)


def open_envelope(token: str, *, trust: TrustList, me: str, now: datetime, skew: timedelta) -> VerifiedEnvelope:
    """Verify a message addressed to `me`. Raises `NotAuthentic` with the first failing check, and refuses to run
    at all in a process whose registry was never sealed (`IncompleteRegistry`): an unknown type must mean unknown
    to the corridor, never forgotten by this process."""
    require_complete()
    try:
        header, _unverified = jws.peek_compact(token)
    except jws.JWSError as exc:
        raise NotAuthentic("malformed", f"not a compact JWS: {exc}") from exc
    if (
        header.get("alg") != "EdDSA"
        or header.get("typ") != MESSAGE_TYP
        or not isinstance(header.get("kid"), str)
        or "crit" in header
    ):
        raise NotAuthentic(
            "bad-header", f'the protected header must have alg "EdDSA", typ "{MESSAGE_TYP}", a kid and no crit'
        )
    kid: str = header["kid"]
    entry = trust.key(kid)
    if entry is None:
        raise NotAuthentic(
            "unknown-key",
            f"key {kid} is not in trust list version {trust.version}",
            trust_version=trust.version,
        )
    try:
        raw = jws.verify_compact(token, key=entry.verifier)
    except (jws.SignatureError, jws.JWSError) as exc:
        raise NotAuthentic("bad-signature", f"the signature does not verify with key {kid}") from exc
    try:
        payload = EnvelopePayload.model_validate_json(raw)
    except ValidationError as exc:
        raise NotAuthentic("bad-payload", _first_error(exc)) from exc
    if payload.iss != entry.node:
        raise NotAuthentic(
            "wrong-issuer", f"key {kid} belongs to {entry.node}, but the message claims iss {payload.iss}"
        )
    if not entry.key.valid_at(payload.iat):
        raise NotAuthentic(
            "key-not-valid",
            f"{entry.key.why_not_valid_at(payload.iat)}; the message iat is {clock.isoformat(payload.iat)}",
        )
    if payload.aud != me:
        raise NotAuthentic("wrong-audience", f"the message is addressed to {payload.aud}; this node is {me}")
    if payload.iat > now + skew:
        ahead = (payload.iat - now).total_seconds()
        raise NotAuthentic(
            "future-iat",
            f"iat {clock.isoformat(payload.iat)} is {ahead:.0f} s ahead of this node's clock "
            f"(allowed skew {skew.total_seconds():.0f} s): check the sender's clock",
        )
    message_type = REGISTRY.get(payload.type)
    if message_type is None:
        raise NotAuthentic("unknown-type", f"unknown message type {payload.type!r}")
    try:
        body = message_type.body_model.model_validate(payload.body)
    except ValidationError as exc:
        raise NotAuthentic("invalid-body", f"{payload.type} body: {_first_error(exc)}") from exc
    return VerifiedEnvelope(payload=payload, body=body, token=token, digest=digest_of(token), kid=kid)


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return str(exc)
    first = errors[0]
    where = "/" + "/".join(str(part) for part in first["loc"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


# -- receipts ------------------------------------------------------------------------------------------------------

ReceiptStatus = Literal["accepted", "duplicate", "rejected"]


class ReceiptPayload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    msg: str = Field(pattern=UUID7_PATTERN)
    digest: str = Field(pattern=DIGEST_PATTERN)
    status: ReceiptStatus
    code: str | None = None
    detail: str | None = None
    at: Rfc3339
    iss: str = Field(pattern=NODE_PATTERN)
    aud: str = Field(pattern=NODE_PATTERN)


class ReceiptError(Exception):
    """A receipt that does not prove delivery of the message it is said to answer."""


def sign_receipt(
    *,
    key: SigningKey,
    message_id: str,
    digest: str,
    status: ReceiptStatus,
    code: str | None,
    detail: str | None,
    iss: str,
    aud: str,
    at: datetime,
) -> str:
    payload = {
        "msg": message_id,
        "digest": digest,
        "status": status,
        "code": code,
        "detail": detail,
        "at": clock.isoformat(at),
        "iss": iss,
        "aud": aud,
    }
    return jws.sign_compact(orjson.dumps(payload), key=key, typ=RECEIPT_TYP)


def verify_receipt(token: str, *, trust: TrustList, expect_from: str, message_id: str, digest: str) -> ReceiptPayload:
    try:
        header, _ = jws.peek_compact(token)
    except jws.JWSError as exc:
        raise ReceiptError(f"receipt is not a compact JWS: {exc}") from exc
    if header.get("typ") != RECEIPT_TYP or header.get("alg") != "EdDSA":
        raise ReceiptError("receipt header must have alg EdDSA and typ dtc-receipt+jws")
    entry = trust.key(str(header.get("kid")))
    if entry is None or entry.node != expect_from:
        raise ReceiptError(f"receipt key {header.get('kid')} is not a key of {expect_from}")
    try:
        raw = jws.verify_compact(token, key=entry.verifier)
        receipt = ReceiptPayload.model_validate_json(raw)
    except (jws.SignatureError, jws.JWSError, ValidationError) as exc:
        raise ReceiptError(f"receipt does not verify: {exc}") from exc
    if receipt.msg != message_id or receipt.digest != digest or receipt.iss != expect_from:
        raise ReceiptError(f"receipt from {expect_from} answers another message ({receipt.msg})")
    if not entry.key.valid_at(receipt.at):
        raise ReceiptError(entry.key.why_not_valid_at(receipt.at))
    return receipt
