"""Changes to the trust list as members propose them: what each kind does to version N, the rules a proposed N+1
must keep, and the difference between two versions in words an admin can approve.

Pure functions of trust-list bodies and a moment (no database, no HTTP): the node that drafts a proposal and every
node that is asked to sign it run the same checks on the same bodies, so a member signs what it was shown. The
difference is computed from the two bodies, never from the request that produced them: what a member approves is
the document it signs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from transit_window import clock
from transit_window.protocol.keys import thumbprint, verifying_key
from transit_window.protocol.trust import (
    Secretariat,
    TrustError,
    TrustKey,
    TrustListBody,
    TrustMember,
    chair_at,
)

# Rules a proposal can break, named in refusals (problem `reason`, receipt detail) so a program can tell them apart.
NOT_SUCCESSOR = "not-successor"
EXPIRED_BASE = "expired-base"
BELOW_THRESHOLD = "below-threshold"
CHAIR_REMOVED = "chair-removed"
NOT_A_CHANGE = "not-a-change"
UNKNOWN_MEMBER = "unknown-member"
ALREADY_MEMBER = "already-member"
UNKNOWN_KEY = "unknown-key"

DEFAULT_KEY_OVERLAP = timedelta(days=7)


class ChangeRefused(TrustError):
    """A proposed version breaks one of the corridor's rules; `rule` names it for programs, the message for people."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail


Jwk = Annotated[dict[str, str], Field(description='The public key: {"kty": "OKP", "crv": "Ed25519", "x": …}.')]
NodeId = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
Endpoint = Annotated[str, Field(pattern=r"^https?://", max_length=500)]


class AdmitMember(BaseModel):
    """A new member with its first key and endpoint (its own signature is required for the version to count)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["admit"]
    node: NodeId
    name: str = Field(min_length=1, max_length=200)
    endpoint: Endpoint
    jwk: Jwk


class RemoveMember(BaseModel):
    """A member leaves (its keys go with it; it leaves the secretariat's rotation too)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["remove"]
    node: NodeId


class RotateKey(BaseModel):
    """A member's new key, valid from the new version; its older keys retire after an overlap (`not_after`)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["rotate-key"]
    node: NodeId
    jwk: Jwk
    overlap_days: int = Field(default=DEFAULT_KEY_OVERLAP.days, ge=0, le=90, strict=True)


class RevokeKey(BaseModel):
    """A key that must stop speaking for its member now (lost, stolen): `revoked_at` is the version's `issued_at`."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["revoke-key"]
    node: NodeId
    kid: str = Field(min_length=1, max_length=100)


class ChangeEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["endpoint"]
    node: NodeId
    endpoint: Endpoint


class ChangeThreshold(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["threshold"]
    threshold: int = Field(ge=1, strict=True)


class ChangeRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["rotation"]
    secretariat: Secretariat


class Renew(BaseModel):
    """The same members, keys and rules, valid for longer: what the chair proposes before the list expires."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["renew"]


Change = Annotated[
    AdmitMember | RemoveMember | RotateKey | RevokeKey | ChangeEndpoint | ChangeThreshold | ChangeRotation | Renew,
    Field(discriminator="kind"),
]


def _member(members: list[TrustMember], node: str) -> TrustMember:
    found = next((member for member in members if member.node == node), None)
    if found is None:
        raise ChangeRefused(UNKNOWN_MEMBER, f"{node} is not a member of the corridor")
    return found


def _new_key(jwk: dict[str, str], *, at: datetime) -> TrustKey:
    if set(jwk) != {"kty", "crv", "x"} or (jwk["kty"], jwk["crv"]) != ("OKP", "Ed25519"):
        raise ChangeRefused(
            NOT_A_CHANGE, 'a key is a public Ed25519 JWK: exactly {"kty": "OKP", "crv": "Ed25519", "x": …}'
        )
    try:
        verifying_key(jwk)
        kid = thumbprint(jwk)
    except Exception as exc:  # joserfc and cryptography raise several types for a bad `x`
        raise ChangeRefused(NOT_A_CHANGE, f"the key is not an Ed25519 public key: {exc}") from exc
    return TrustKey(kid=kid, jwk=jwk, not_before=at)


def _apply(
    members: list[TrustMember], threshold: int, rotation: Secretariat | None, change: Change, *, at: datetime
) -> tuple[list[TrustMember], int, Secretariat | None]:
    if isinstance(change, AdmitMember):
        if any(member.node == change.node for member in members):
            raise ChangeRefused(ALREADY_MEMBER, f"{change.node} is already a member")
        key = _new_key(change.jwk, at=at)
        members = [*members, TrustMember(node=change.node, name=change.name, endpoint=change.endpoint, keys=[key])]
    elif isinstance(change, RemoveMember):
        _member(members, change.node)
        members = [member for member in members if member.node != change.node]
        if rotation is not None:
            remaining = [node for node in rotation.members if node != change.node]
            rotation = rotation.model_copy(update={"members": remaining}) if remaining else None
    elif isinstance(change, RotateKey):
        member = _member(members, change.node)
        retire_at = at + timedelta(days=change.overlap_days)
        kept = [
            key.model_copy(update={"not_after": retire_at})
            if key.not_after is None or key.not_after > retire_at
            else key
            for key in member.keys
        ]
        member = member.model_copy(update={"keys": [*kept, _new_key(change.jwk, at=at)]})
        members = [member if existing.node == change.node else existing for existing in members]
    elif isinstance(change, RevokeKey):
        member = _member(members, change.node)
        if not any(key.kid == change.kid for key in member.keys):
            raise ChangeRefused(UNKNOWN_KEY, f"{change.node} has no key {change.kid}")
        keys = [key.model_copy(update={"revoked_at": at}) if key.kid == change.kid else key for key in member.keys]
        members = [member.model_copy(update={"keys": keys}) if m.node == change.node else m for m in members]
    elif isinstance(change, ChangeEndpoint):
        member = _member(members, change.node)
        members = [
            member.model_copy(update={"endpoint": change.endpoint}) if m.node == change.node else m for m in members
        ]
    elif isinstance(change, ChangeThreshold):
        threshold = change.threshold
    elif isinstance(change, ChangeRotation):
        rotation = change.secretariat
    # Renew changes nothing but the version's dates, which every proposal sets.
    return members, threshold, rotation


def build_successor(current: TrustListBody, changes: list[Change], *, now: datetime | None = None) -> TrustListBody:
    """Version N+1 of `current` with `changes` applied in order, issued now and valid as long as `current` was (a
    renewal, too, gets the same span from now). Raises ChangeRefused when the result would break a rule."""
    if not changes:
        raise ChangeRefused(NOT_A_CHANGE, "a proposal needs at least one change")
    at = now or clock.utcnow()
    members = [member.model_copy(deep=True) for member in current.members]
    threshold, rotation = current.threshold, current.secretariat
    for change in changes:
        members, threshold, rotation = _apply(members, threshold, rotation, change, at=at)
    if threshold > len(members):
        raise ChangeRefused(
            BELOW_THRESHOLD,
            f"the changes leave {len(members)} member(s) and a threshold of {threshold}: nobody could change it again",
        )
    span = current.expires_at - current.issued_at
    try:
        candidate = TrustListBody(
            version=current.version + 1,
            issued_at=at,
            expires_at=at + span,
            threshold=threshold,
            members=members,
            secretariat=rotation,
        )
    except ValueError as exc:  # pydantic's ValidationError: duplicate kid, threshold above the members…
        raise ChangeRefused(NOT_A_CHANGE, f"the changed trust list is not valid: {exc}") from exc
    check_proposal(current, candidate, now=at)
    return candidate


def active_members(body: TrustListBody, moment: datetime) -> list[str]:
    """Members with at least one key valid at `moment`: the ones who can still sign."""
    return [member.node for member in body.members if any(key.valid_at(moment) for key in member.keys)]


def check_proposal(current: TrustListBody, candidate: TrustListBody, *, now: datetime) -> None:
    """The rules a proposed version must keep before anyone is asked to sign it (PROTOCOL.md §2, Governance).

    Signatures are not checked here (a proposal carries only its proposer's): the adoption rule does that."""
    if candidate.version != current.version + 1:
        raise ChangeRefused(
            NOT_SUCCESSOR,
            f"a proposal must be version {current.version + 1}, the successor of the current version "
            f"{current.version}; it is version {candidate.version}",
        )
    if current.expires_at <= now:
        raise ChangeRefused(
            EXPIRED_BASE,
            f"the current version {current.version} expired at {clock.isoformat(current.expires_at)}: "
            "no proposal can be built on it (the genesis procedure starts a new corridor)",
        )
    if candidate.expires_at <= now:
        raise ChangeRefused(EXPIRED_BASE, f"version {candidate.version} would already be expired")
    if current.members == candidate.members and current.threshold == candidate.threshold:
        same_rotation = current.secretariat == candidate.secretariat
        if same_rotation and candidate.expires_at <= current.expires_at:
            raise ChangeRefused(NOT_A_CHANGE, "the proposed version changes nothing and does not extend the expiry")
    active = active_members(candidate, candidate.issued_at)
    if len(active) < candidate.threshold:
        raise ChangeRefused(
            BELOW_THRESHOLD,
            f"version {candidate.version} would have {len(active)} member(s) with a valid key "
            f"({', '.join(active) or 'none'}) and a threshold of {candidate.threshold}: nobody could change it again",
        )
    # Whoever proposes it (the chair itself or the others), the member holding the secretariat does not leave during
    # its term: the duties run on its node, and a corridor without a chair would miss its own renewal.
    chair = chair_at(current, now)
    if chair is not None and chair.node not in {member.node for member in candidate.members}:
        raise ChangeRefused(
            CHAIR_REMOVED,
            f"{chair.node} holds the secretariat until {clock.isoformat(chair.until)}: it cannot leave the corridor "
            "during its term",
        )


def describe(old: TrustListBody, new: TrustListBody) -> list[str]:
    """What changes from `old` to `new`, one line per change, for the admin who is asked to sign."""
    lines: list[str] = []
    before = {member.node: member for member in old.members}
    after = {member.node: member for member in new.members}
    for node, member in after.items():
        if node not in before:
            kids = ", ".join(key.kid for key in member.keys)
            lines.append(f"admit {node} {member.name}, key kid {kids}, endpoint {member.endpoint}")
            continue
        was = before[node]
        if member.name != was.name:
            lines.append(f"{node}: name {was.name} → {member.name}")
        if member.endpoint != was.endpoint:
            lines.append(f"{node}: endpoint {was.endpoint} → {member.endpoint}")
        old_keys = {key.kid: key for key in was.keys}
        for key in member.keys:
            prior = old_keys.get(key.kid)
            if prior is None:
                lines.append(f"{node}: new key kid {key.kid}, valid from {clock.isoformat(key.not_before)}")
                continue
            if key.revoked_at != prior.revoked_at and key.revoked_at is not None:
                lines.append(f"{node}: key kid {key.kid} revoked at {clock.isoformat(key.revoked_at)}")
            if key.not_after != prior.not_after and key.not_after is not None:
                lines.append(f"{node}: key kid {key.kid} retires at {clock.isoformat(key.not_after)}")
        for kid in old_keys.keys() - {key.kid for key in member.keys}:
            lines.append(f"{node}: key kid {kid} removed")
    for node, member in before.items():
        if node not in after:
            lines.append(f"remove {node} {member.name}")
    if new.threshold != old.threshold:
        lines.append(f"threshold {old.threshold} → {new.threshold}")
    if new.secretariat != old.secretariat:
        lines.append(f"secretariat {_rotation_text(old.secretariat)} → {_rotation_text(new.secretariat)}")
    if new.expires_at != old.expires_at:
        lines.append(f"expires {clock.isoformat(old.expires_at)} → {clock.isoformat(new.expires_at)}")
    return lines


def _rotation_text(rotation: Secretariat | None) -> str:
    if rotation is None:
        return "none"
    return f"{' → '.join(rotation.members)} every {rotation.term_months} month(s) from {rotation.starts_on.isoformat()}"
