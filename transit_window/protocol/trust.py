"""The trust list: who is in the corridor, where they listen, and which keys speak for them.

Modelled on TUF root metadata: versioned, expiring, threshold-signed (one JWS JSON general signature per member).
A node accepts version N+1 only when it is newer, unexpired, and signed by `threshold` members of both version N and
version N+1; the genesis version is pinned by the SHA-256 of its payload bytes. Signatures count per member, not per
key, so one member holding many keys cannot reach a threshold alone.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from transit_window import clock
from transit_window.dates import Rfc3339, within_corridor_date
from transit_window.protocol import MAX_JSON_INTEGER, jws
from transit_window.protocol.keys import SigningKey, VerifyingKey, thumbprint, verifying_key

TRUST_TYP = "dtc-trust+jws"


class TrustError(Exception):
    """A trust list (or a transition to it) is not acceptable. The message says why, for an operator."""


class TrustKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kid: str
    jwk: dict[str, str]
    not_before: Rfc3339
    not_after: Rfc3339 | None = None
    revoked_at: Rfc3339 | None = None

    @model_validator(mode="after")
    def _kid_is_thumbprint(self) -> TrustKey:
        if thumbprint(self.jwk) != self.kid:
            raise ValueError(f"kid {self.kid} is not the RFC 7638 thumbprint of its jwk")
        return self

    def valid_at(self, moment: datetime) -> bool:
        if moment < self.not_before:
            return False
        if self.not_after is not None and moment > self.not_after:
            return False
        return self.revoked_at is None or moment < self.revoked_at

    def why_not_valid_at(self, moment: datetime) -> str:
        if moment < self.not_before:
            return f"key {self.kid} is valid only from {clock.isoformat(self.not_before)}"
        if self.not_after is not None and moment > self.not_after:
            return f"key {self.kid} was retired at {clock.isoformat(self.not_after)}"
        if self.revoked_at is not None and moment >= self.revoked_at:
            return f"key {self.kid} was revoked at {clock.isoformat(self.revoked_at)}"
        return "valid"


class TrustMember(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node: str = Field(pattern=r"^[A-Z]{2}$")
    name: str = Field(min_length=1, max_length=200)
    endpoint: str = Field(pattern=r"^https?://")
    keys: list[TrustKey] = Field(min_length=1)


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def _iso_day_text(value: object) -> object:
    """A `date` built in code, or exactly `YYYY-MM-DD`: pydantic alone would also read a number as a Unix time, or a
    date-time with a zero time as a day, and two members must never read one rotation two ways."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DAY.fullmatch(value):
        return value
    raise ValueError("a day is a JSON string YYYY-MM-DD (RFC 3339 full-date), e.g. 2026-01-01")


IsoDay = Annotated[
    date,
    BeforeValidator(_iso_day_text),
    AfterValidator(within_corridor_date),
    WithJsonSchema({"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}),
]

MAX_TERM_MONTHS = 120


class Secretariat(BaseModel):
    """The rotation of the corridor's secretariat, agreed like any other change of the trust list.

    Term k (k = 0, 1, 2 …) starts at 00:00 UTC on `starts_on` plus k * `term_months` calendar months, counted from
    `starts_on` each time (a term starting on 29 February starts on 28 February in a common year and on 29 February
    again in a leap year; a 31st becomes the month's last day), and is held by `members[k mod len(members)]`."""

    model_config = ConfigDict(extra="forbid")

    members: list[str] = Field(
        min_length=1, description="Node ids in the order they hold the secretariat; each a member, once."
    )
    term_months: int = Field(default=12, ge=1, le=MAX_TERM_MONTHS, strict=True, description="Length of a term.")
    starts_on: IsoDay = Field(description="The day (UTC) the first term starts.")

    @field_validator("members")
    @classmethod
    def _distinct_nodes(cls, members: list[str]) -> list[str]:
        for node in members:
            if not re.fullmatch(r"[A-Z]{2}", node, re.ASCII):
                raise ValueError(f"{node!r} is not a node id (two upper-case letters)")
        if len(set(members)) != len(members):
            raise ValueError("a node appears twice in the secretariat's rotation")
        return members


class TrustListBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=MAX_JSON_INTEGER, strict=True)
    issued_at: Rfc3339
    expires_at: Rfc3339
    threshold: int = Field(ge=1, strict=True)
    members: list[TrustMember] = Field(min_length=1)
    secretariat: Secretariat | None = Field(
        default=None,
        description="The secretariat's rotation. Omitted from the payload when there is none (never written as null).",
    )

    @field_validator("members")
    @classmethod
    def _unique(cls, members: list[TrustMember]) -> list[TrustMember]:
        nodes = [member.node for member in members]
        if len(set(nodes)) != len(nodes):
            raise ValueError("a node appears twice in members")
        kids = [key.kid for member in members for key in member.keys]
        if len(set(kids)) != len(kids):
            raise ValueError("a key appears twice in the trust list")
        return members

    @model_validator(mode="after")
    def _threshold_reachable(self) -> TrustListBody:
        if self.threshold > len(self.members):
            raise ValueError(f"threshold {self.threshold} exceeds the {len(self.members)} members")
        if self.expires_at <= self.issued_at:
            raise ValueError("expires_at must be after issued_at")
        if self.secretariat is not None:
            nodes = {member.node for member in self.members}
            strangers = [node for node in self.secretariat.members if node not in nodes]
            if strangers:
                raise ValueError(
                    f"the secretariat's rotation names {', '.join(strangers)}, not member(s) of this version"
                )
        return self

    def payload_bytes(self) -> bytes:
        """The bytes a writer signs (PROTOCOL.md §2): JCS, with `secretariat` left out when there is none."""
        document = self.model_dump(mode="json")
        if document["secretariat"] is None:
            del document["secretariat"]
        return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True, slots=True)
class Chair:
    """Who holds the secretariat over one term: from `since` (inclusive) to `until` (exclusive), then `next`."""

    node: str
    since: datetime
    until: datetime
    next: str
    term: int


def add_months(day: date, months: int) -> date:
    """`day` plus whole calendar months, the day of month clamped to the target month's length."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def term_start(rotation: Secretariat, term: int) -> datetime:
    """00:00 UTC of the day term `term` (0-based) starts, counted from `starts_on` (never from the previous term)."""
    return _midnight(add_months(rotation.starts_on, term * rotation.term_months))


def chair_at(body: TrustListBody, moment: datetime) -> Chair | None:
    """The chair at `moment` (aware) under `body`'s rotation; None without a rotation or before its first term."""
    rotation = body.secretariat
    if rotation is None:
        return None
    moment = moment.astimezone(UTC)
    if moment < term_start(rotation, 0):
        return None
    start = rotation.starts_on
    elapsed = (moment.year - start.year) * 12 + (moment.month - start.month)
    term = max(elapsed // rotation.term_months, 0)
    # Clamped days make the estimate at most one term off either way; settle it against the real boundaries.
    while term > 0 and term_start(rotation, term) > moment:
        term -= 1
    while term_start(rotation, term + 1) <= moment:
        term += 1
    members = rotation.members
    return Chair(
        node=members[term % len(members)],
        since=term_start(rotation, term),
        until=term_start(rotation, term + 1),
        next=members[(term + 1) % len(members)],
        term=term,
    )


@dataclass(frozen=True, slots=True)
class KeyEntry:
    node: str
    key: TrustKey
    verifier: VerifyingKey


@dataclass(slots=True)
class TrustList:
    """One version: its body, the exact payload bytes that were signed, and the signatures gathered so far."""

    body: TrustListBody
    payload: bytes
    signatures: list[dict[str, str]]
    _keys: dict[str, KeyEntry] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for member in self.body.members:
            for key in member.keys:
                self._keys[key.kid] = KeyEntry(node=member.node, key=key, verifier=verifying_key(key.jwk))

    @property
    def version(self) -> int:
        return self.body.version

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.payload).hexdigest()

    def key(self, kid: str) -> KeyEntry | None:
        return self._keys.get(kid)

    def member(self, node: str) -> TrustMember | None:
        return next((member for member in self.body.members if member.node == node), None)

    def nodes(self) -> list[str]:
        return [member.node for member in self.body.members]

    def current_key(self, node: str, moment: datetime) -> TrustKey | None:
        member = self.member(node)
        if member is None:
            return None
        valid = [key for key in member.keys if key.valid_at(moment)]
        return max(valid, key=lambda key: key.not_before, default=None)

    # -- serialisation -------------------------------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        return {"payload": jws.b64url(self.payload), "signatures": list(self.signatures)}

    def to_json(self) -> bytes:
        return orjson.dumps(self.document(), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_body(cls, body: TrustListBody) -> TrustList:
        return cls(body=body, payload=body.payload_bytes(), signatures=[])

    @classmethod
    def from_document(cls, document: Any) -> TrustList:
        if not isinstance(document, dict) or not isinstance(document.get("payload"), str):
            raise TrustError("a trust list is a JWS JSON general serialization: {payload, signatures}")
        signatures = document.get("signatures", [])
        if not isinstance(signatures, list) or not all(
            isinstance(entry, dict)
            and isinstance(entry.get("protected"), str)
            and isinstance(entry.get("signature"), str)
            for entry in signatures
        ):
            raise TrustError("signatures must be a list of {protected, signature}")
        try:
            payload = jws.b64url_decode(document["payload"])
            body = TrustListBody.model_validate_json(payload)
        except (jws.JWSError, ValidationError) as exc:
            raise TrustError(f"trust list payload is invalid: {exc}") from exc
        return cls(body=body, payload=payload, signatures=[dict(entry) for entry in signatures])

    @classmethod
    def from_json(cls, raw: bytes | str) -> TrustList:
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise TrustError(f"trust list is not JSON: {exc}") from exc
        return cls.from_document(document)

    # -- signing and checking ------------------------------------------------------------------------------------

    def sign(self, key: SigningKey) -> None:
        """Add (or replace) this key's signature."""
        self.signatures = [entry for entry in self.signatures if _kid_of(entry) != key.kid]
        self.signatures.append(jws.general_signature(self.payload, key=key, typ=TRUST_TYP))

    def signing_members(self, by: TrustList, *, at: datetime) -> set[str]:
        """Members of `by` whose key, valid at `at`, made a verifying signature over this version."""
        payload_b64 = jws.b64url(self.payload)
        members: set[str] = set()
        for entry in self.signatures:
            kid = _kid_of(entry)
            found = by.key(kid) if kid else None
            if found is None or not found.key.valid_at(at):
                continue
            try:
                jws.verify_general_signature(payload_b64, entry, key=found.verifier)
            except (jws.SignatureError, jws.JWSError):
                continue
            members.add(found.node)
        return members


def _kid_of(entry: dict[str, str]) -> str:
    try:
        header = orjson.loads(jws.b64url_decode(entry["protected"]))
    except (jws.JWSError, orjson.JSONDecodeError, KeyError):
        return ""
    if not isinstance(header, dict) or header.get("typ") != TRUST_TYP or header.get("alg") != "EdDSA":
        return ""
    kid = header.get("kid")
    return kid if isinstance(kid, str) else ""


def _check_fresh(candidate: TrustList, now: datetime) -> None:
    if candidate.body.expires_at <= now:
        raise TrustError(
            f"trust list version {candidate.version} expired at {clock.isoformat(candidate.body.expires_at)}"
        )


def _check_threshold(candidate: TrustList, *, by: TrustList, now: datetime, label: str) -> None:
    signers = candidate.signing_members(by, at=now)
    if len(signers) < by.body.threshold:
        raise TrustError(
            f"trust list version {candidate.version} is signed by {len(signers)} member(s) of {label} "
            f"({', '.join(sorted(signers)) or 'none'}); the threshold is {by.body.threshold}"
        )


def verify_genesis(candidate: TrustList, *, pinned_sha256: str, now: datetime) -> None:
    if not pinned_sha256:
        raise TrustError("no pinned genesis hash: set TW_GENESIS_SHA256 to the SHA-256 the corridor published")
    if candidate.sha256 != pinned_sha256.lower():
        raise TrustError(f"genesis trust list hash {candidate.sha256} does not match the pinned {pinned_sha256}")
    _check_fresh(candidate, now)
    _check_threshold(candidate, by=candidate, now=now, label="itself")


def verify_successor(current: TrustList, candidate: TrustList, *, now: datetime) -> None:
    """Raise unless `candidate` may replace `current` (no rollback, fresh, both thresholds met)."""
    if candidate.version <= current.version:
        raise TrustError(
            f"trust list version {candidate.version} is not newer than the current version {current.version}"
        )
    _check_fresh(candidate, now)
    _check_threshold(candidate, by=current, now=now, label=f"the current version {current.version}")
    _check_threshold(candidate, by=candidate, now=now, label=f"version {candidate.version}")


def next_version(current: TrustListBody, *, valid_for: timedelta, threshold: int | None = None) -> TrustListBody:
    now = clock.utcnow()
    return current.model_copy(
        update={
            "version": current.version + 1,
            "issued_at": now,
            "expires_at": now + valid_for,
            "threshold": threshold if threshold is not None else current.threshold,
            "members": [member.model_copy(deep=True) for member in current.members],
        }
    )
