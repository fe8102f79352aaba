"""Trust-list proposals over the corridor: drafted by one member's admin, signed by the others through their own
nodes, adopted by whichever node first holds the signatures PROTOCOL.md §2 requires.

Messages: `corridor.trust-proposal` (the proposed document with the proposer's signature), `corridor.trust-signature`
(one member's signature over it) and `corridor.trust-objection` (a member says no, and why). A node that holds enough
signatures adopts the version through `adopt_trust_list` and spreads it with `corridor.trust-update`, as an operator's
adoption does; the other open proposals for that version are then `superseded`, naming the one that won.

Services flush, never commit: the request's (or the inbox's) transaction owns the proposal row, the outbox rows
and the adopted version together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert, or_, select, update

from transit_window import clock
from transit_window.db.session import nothing_done, unit_of_work
from transit_window.errors import Conflict, NotFound
from transit_window.ids import new_id
from transit_window.protocol import outbox
from transit_window.protocol.corridor_messages import MESSAGES, TrustUpdateBody, adopt_trust_list
from transit_window.protocol.models import TrustProposal
from transit_window.protocol.registry import Rejection
from transit_window.protocol.trust import TrustError, TrustList, chair_at, verify_successor
from transit_window.protocol.trust_changes import (
    Change,
    ChangeRefused,
    Renew,
    build_successor,
    check_proposal,
    describe,
)
from transit_window.text import Printable

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.protocol.envelope import VerifiedEnvelope
    from transit_window.protocol.node import Node

PROPOSAL_LIFETIME = timedelta(days=14)
RENEW_AHEAD = timedelta(days=30)  # the chair proposes the renewal this long before the current version expires
REMIND_EVERY = timedelta(days=1)


class ProposalError(Conflict):
    """A proposal cannot be made, signed or objected to: a 409 problem whose `reason` names the rule."""

    title = "The trust-list proposal breaks a rule of the corridor"

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail, reason=rule)
        self.rule = rule


class ProposalNotFound(NotFound):
    def __init__(self, proposal_id: str) -> None:
        super().__init__(f"this node knows no proposal {proposal_id}")


class TrustProposalBody(BaseModel):
    """A proposed trust-list version, as its JWS JSON document carrying (at least) the proposer's signature."""

    model_config = ConfigDict(extra="ignore")

    proposal: str = Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    version: int = Field(ge=1)
    expires_at: str = Field(description="When the proposal lapses unsigned (RFC 3339).")
    document: dict[str, Any]


class TrustSignatureBody(BaseModel):
    """One member's signature over a proposed version's payload: `{protected, signature}` as in the document."""

    model_config = ConfigDict(extra="ignore")

    proposal: str = Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    version: int = Field(ge=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    signature: dict[str, str]


class TrustObjectionBody(BaseModel):
    """A member will not sign a proposed version, and says why."""

    model_config = ConfigDict(extra="ignore")

    proposal: str = Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    version: int = Field(ge=1)
    reason: Annotated[str, Printable] = Field(min_length=1, max_length=1000)


@dataclass(frozen=True, slots=True)
class ProposalView:
    id: str
    version: int
    base_version: int
    sha256: str
    proposer: str
    state: str
    difference: list[str]
    signers: list[str]
    waiting_for: list[str]
    objections: list[dict[str, str]]
    created_at: datetime
    expires_at: datetime
    closed_reason: str | None
    document: dict[str, Any]


def view_of(row: TrustProposal, node: Node) -> ProposalView:
    trust = TrustList.from_json(row.document)
    now = clock.utcnow()
    by_current = trust.signing_members(node.trust, at=now) if row.base_version == node.trust.version else set()
    by_itself = trust.signing_members(trust, at=now)
    signers = sorted(by_current | by_itself)
    return ProposalView(
        id=row.id,
        version=row.version,
        base_version=row.base_version,
        sha256=row.sha256,
        proposer=row.proposer,
        state=row.state,
        difference=orjson.loads(row.difference),
        signers=signers,
        waiting_for=[member for member in trust.nodes() if member not in signers] if row.state == "open" else [],
        objections=orjson.loads(row.objections),
        created_at=row.created_at,
        expires_at=row.expires_at,
        closed_reason=row.closed_reason,
        document=trust.document(),
    )


async def propose(session: AsyncSession, node: Node, *, changes: list[Change]) -> TrustProposal:
    """Build version N+1 from this node's current version, sign it, keep it open and send it to every member."""
    now = clock.utcnow()
    current = node.trust
    try:
        body = build_successor(current.body, changes, now=now)
    except ChangeRefused as exc:
        raise ProposalError(exc.rule, exc.detail) from exc
    candidate = TrustList.from_body(body)
    candidate.sign(node.key)
    row = TrustProposal(
        id=new_id(),
        version=body.version,
        base_version=current.version,
        sha256=candidate.sha256,
        proposer=node.id,
        document=candidate.to_json().decode(),
        difference=orjson.dumps(describe(current.body, body)).decode(),
        objections="[]",
        state="open",
        created_at=now,
        expires_at=min(now + PROPOSAL_LIFETIME, current.body.expires_at),
        closed_at=None,
        closed_reason=None,
    )
    session.add(row)
    await session.flush()
    message = TrustProposalBody(
        proposal=row.id, version=row.version, expires_at=clock.isoformat(row.expires_at), document=candidate.document()
    )
    for member in current.nodes():
        if member != node.id:
            outbox.enqueue(
                session, to=member, message_type="corridor.trust-proposal", body=message, subject=f"trust:{row.version}"
            )
    return row


async def _open(session: AsyncSession, proposal_id: str) -> TrustProposal:
    row = await session.get(TrustProposal, proposal_id, with_for_update=True)
    if row is None:
        raise ProposalNotFound(proposal_id)
    return row


def _require_open(row: TrustProposal, node: Node) -> None:
    now = clock.utcnow()
    if row.state != "open":
        raise ProposalError("closed", f"proposal {row.id} is {row.state}: {row.closed_reason or 'nothing to sign'}")
    if row.expires_at <= now:
        raise ProposalError("expired", f"proposal {row.id} lapsed at {clock.isoformat(row.expires_at)}")
    if row.base_version != node.trust.version:
        raise ProposalError(
            "not-successor",
            f"proposal {row.id} builds on version {row.base_version}; the current version is {node.trust.version}",
        )


async def approve(session: AsyncSession, node: Node, *, proposal_id: str) -> tuple[TrustProposal, bool]:
    """Sign the proposed version with this node's key; adopt it when the signatures now suffice. Returns the row and
    whether this node adopted it."""
    row = await _open(session, proposal_id)
    _require_open(row, node)
    candidate = TrustList.from_json(row.document)
    if node.id in _signers(candidate, current=node.trust):
        raise ProposalError("already-signed", f"{node.id} already signed proposal {row.id}")
    candidate.sign(node.key)
    signature = candidate.signatures[-1]
    row.document = candidate.to_json().decode()
    adopted = await _adopt_if_complete(session, node, row, candidate)
    if not adopted:
        message = TrustSignatureBody(proposal=row.id, version=row.version, sha256=row.sha256, signature=signature)
        _tell(session, node, candidate.nodes(), "corridor.trust-signature", message, version=row.version)
    await session.flush()
    return row, adopted


def _tell(
    session: AsyncSession, node: Node, members: list[str], message_type: str, body: BaseModel, *, version: int
) -> None:
    """Queue `body` to every member listed but this node, under the version's subject."""
    for member in members:
        if member != node.id:
            outbox.enqueue(session, to=member, message_type=message_type, body=body, subject=f"trust:{version}")


def _signer_of(candidate: TrustList, signature: dict[str, str], *, current: TrustList) -> str | None:
    """The one member (of the current version or of the proposed one) whose key, valid now, made `signature`."""
    lone = TrustList(body=candidate.body, payload=candidate.payload, signatures=[dict(signature)])
    now = clock.utcnow()
    signed_by = lone.signing_members(current, at=now) | lone.signing_members(lone, at=now)
    return next(iter(signed_by)) if len(signed_by) == 1 else None


def _signers(candidate: TrustList, *, current: TrustList) -> set[str]:
    now = clock.utcnow()
    return candidate.signing_members(current, at=now) | candidate.signing_members(candidate, at=now)


async def add_signature(
    session: AsyncSession, node: Node, *, proposal_id: str, signature: dict[str, str]
) -> tuple[TrustProposal, bool]:
    """Attach a signature made elsewhere, typically by a member being admitted (not yet in the current version, so it
    cannot send corridor messages itself): its admin signs the proposed document offline (`transit-window trust
    sign`) and hands the `{protected, signature}` entry to a member's admin. Forwarded to every member like an
    approval; adopted here when it completes the version."""
    row = await _open(session, proposal_id)
    _require_open(row, node)
    candidate = TrustList.from_json(row.document)
    signer = _signer_of(candidate, signature, current=node.trust)
    if signer is None:
        raise ProposalError(
            "not-a-member-signature",
            "the signature is not a valid signature over this proposal by a key, valid now, of a member of the "
            "current or the proposed version (a non-member's or a revoked key's does not count)",
        )
    if signer in _signers(candidate, current=node.trust):
        raise ProposalError("already-signed", f"{signer} already signed proposal {row.id}: a member counts once")
    candidate.signatures.append(dict(signature))
    row.document = candidate.to_json().decode()
    adopted = await _adopt_if_complete(session, node, row, candidate)
    if not adopted:
        message = TrustSignatureBody(proposal=row.id, version=row.version, sha256=row.sha256, signature=signature)
        _tell(session, node, node.trust.nodes(), "corridor.trust-signature", message, version=row.version)
    await session.flush()
    return row, adopted


async def object_to(session: AsyncSession, node: Node, *, proposal_id: str, reason: str) -> TrustProposal:
    """Record this member's objection and tell every member why (the proposal stays open: others may still sign)."""
    row = await _open(session, proposal_id)
    _require_open(row, node)
    _add_objection(row, node=node.id, reason=reason)
    message = TrustObjectionBody(proposal=row.id, version=row.version, reason=reason)
    members = TrustList.from_json(row.document).nodes()
    _tell(session, node, members, "corridor.trust-objection", message, version=row.version)
    await session.flush()
    return row


def _add_objection(row: TrustProposal, *, node: str, reason: str) -> None:
    objections = [entry for entry in orjson.loads(row.objections) if entry["node"] != node]
    objections.append({"node": node, "reason": reason, "at": clock.isoformat(clock.utcnow())})
    row.objections = orjson.dumps(objections).decode()


async def _adopt_if_complete(session: AsyncSession, node: Node, row: TrustProposal, candidate: TrustList) -> bool:
    """Adopt when the version meets both thresholds (PROTOCOL.md §2) and spread it; the first proposal to reach them
    wins its version (`adopt_trust_list` closes the others as superseded)."""
    try:
        verify_successor(node.trust, candidate, now=clock.utcnow())
    except TrustError:
        return False
    await session.flush()  # the gathered signatures, before the adoption's statements close the proposal
    if not await adopt_trust_list(session, node, candidate, source="proposal", proposal=row.id):
        return False
    await session.refresh(row)
    body = TrustUpdateBody(version=candidate.version, document=candidate.document())
    for member in candidate.nodes():
        if member != node.id:
            outbox.enqueue(
                session, to=member, message_type="corridor.trust-update", body=body, subject=f"trust:{row.version}"
            )
    return True


# -- inbound ---------------------------------------------------------------------------------------------------------


def _rejection(exc: ChangeRefused | TrustError) -> Rejection:
    rule = exc.rule if isinstance(exc, ChangeRefused) else "not-a-trust-list"
    return Rejection("14", f"{rule}: {exc}")


@MESSAGES.message_type(
    "corridor.trust-proposal",
    body=TrustProposalBody,
    summary="A proposed trust-list version with its proposer's signature, for each member's admin to approve.",
)
async def on_trust_proposal(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    body = envelope.body
    assert isinstance(body, TrustProposalBody)
    sender = envelope.payload.iss
    try:
        candidate = TrustList.from_document(body.document)
        if candidate.version != body.version:
            raise Rejection("14", f"body says version {body.version}, the document is version {candidate.version}")
        check_proposal(node.trust.body, candidate.body, now=clock.utcnow())
    except (ChangeRefused, TrustError) as exc:
        raise _rejection(exc) from exc
    if sender not in candidate.signing_members(node.trust, at=clock.utcnow()):
        raise Rejection("15", f"the proposal does not carry a valid signature of its sender {sender}")
    if await session.get(TrustProposal, body.proposal) is not None:
        return
    try:
        expires_at = min(clock.parse(body.expires_at), node.trust.body.expires_at)
    except ValueError as exc:
        raise Rejection("12", f"expires_at: {exc}") from exc
    await session.execute(
        insert(TrustProposal).values(
            id=body.proposal,
            version=candidate.version,
            base_version=node.trust.version,
            sha256=candidate.sha256,
            proposer=sender,
            document=candidate.to_json().decode(),
            difference=orjson.dumps(describe(node.trust.body, candidate.body)).decode(),
            objections="[]",
            state="open",
            created_at=clock.utcnow(),
            expires_at=expires_at,
        )
    )


@MESSAGES.message_type(
    "corridor.trust-signature",
    body=TrustSignatureBody,
    summary="A member's signature over a proposed trust-list version; whoever holds enough adopts it.",
)
async def on_trust_signature(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    body = envelope.body
    assert isinstance(body, TrustSignatureBody)
    sender = envelope.payload.iss
    row = await session.get(TrustProposal, body.proposal, with_for_update=True)
    if row is None:
        raise Rejection("90", f"this node knows no proposal {body.proposal}")
    if row.sha256 != body.sha256 or row.version != body.version:
        raise Rejection("14", f"proposal {row.id} is version {row.version} with SHA-256 {row.sha256}")
    if row.state != "open":
        return  # already adopted or superseded here: a late signature changes nothing
    candidate = TrustList.from_json(row.document)
    signer = _signer_of(candidate, body.signature, current=node.trust)
    # A member signs for itself; a member being admitted (in the proposed version only) cannot send messages yet,
    # so a member may forward its signature.
    if signer is None or (signer != sender and node.trust.member(signer) is not None):
        raise Rejection(
            "15",
            f"the signature is not a valid signature of {sender} (or of a member being admitted) with a key valid "
            f"now (signed by: {signer or 'none of the members'})",
        )
    if signer in _signers(candidate, current=node.trust):
        raise Rejection("15", f"{signer} already signed proposal {row.id}: a member counts once")
    candidate.signatures = [entry for entry in candidate.signatures if entry != body.signature] + [body.signature]
    row.document = candidate.to_json().decode()
    if row.base_version == node.trust.version:
        await _adopt_if_complete(session, node, row, candidate)
    await session.flush()


@MESSAGES.message_type(
    "corridor.trust-objection",
    body=TrustObjectionBody,
    summary="A member objects to a proposed trust-list version, with its reason.",
)
async def on_trust_objection(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    body = envelope.body
    assert isinstance(body, TrustObjectionBody)
    row = await session.get(TrustProposal, body.proposal, with_for_update=True)
    if row is None:
        raise Rejection("90", f"this node knows no proposal {body.proposal}")
    _add_objection(row, node=envelope.payload.iss, reason=body.reason)
    await session.flush()
    del node


# -- the secretariat's duties -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DutiesDone:
    renewal: str | None  # the id of the renewal proposed, if one was
    reminded: int  # messages sent to members whose signature an open proposal still waits for
    expired: int  # proposals that lapsed


async def chair_duties(node: Node) -> DutiesDone:
    """Run on every node, act only on the chair's (PROTOCOL.md §2): lapse old proposals; propose the renewal when the
    current version expires within RENEW_AHEAD and no open proposal of this node builds on it; remind members that
    an open proposal still waits for, at most once a REMIND_EVERY, by sending it again with the signatures so far."""
    now = clock.utcnow()
    async with unit_of_work(node) as session:
        lapsed = await session.execute(
            update(TrustProposal)
            .where(TrustProposal.state == "open", TrustProposal.expires_at <= now)
            .values(state="expired", closed_at=now, closed_reason="lapsed before it reached the threshold")
        )
        expired = int(getattr(lapsed, "rowcount", 0) or 0)
        chair = chair_at(node.trust.body, now)
        if chair is None or chair.node != node.id:
            return DutiesDone(renewal=None, reminded=0, expired=expired)
        renewal: str | None = None
        current = node.trust
        if current.body.expires_at - now <= RENEW_AHEAD:
            own = await session.scalar(
                select(TrustProposal.id).where(
                    TrustProposal.state == "open",
                    TrustProposal.base_version == current.version,
                    TrustProposal.proposer == node.id,
                )
            )
            if own is None:
                renewal = (await propose(session, node, changes=[Renew(kind="renew")])).id
        reminded = 0
        rows = await session.scalars(
            select(TrustProposal).where(
                TrustProposal.state == "open",
                TrustProposal.base_version == current.version,
                TrustProposal.created_at <= now - REMIND_EVERY,
                or_(TrustProposal.reminded_at.is_(None), TrustProposal.reminded_at <= now - REMIND_EVERY),
            )
        )
        for row in rows:
            view = view_of(row, node)
            message = TrustProposalBody(
                proposal=row.id, version=row.version, expires_at=clock.isoformat(row.expires_at), document=view.document
            )
            for member in view.waiting_for:
                if member != node.id and member in current.nodes():
                    subject = f"trust:{row.version}"
                    outbox.enqueue(
                        session, to=member, message_type="corridor.trust-proposal", body=message, subject=subject
                    )
                    reminded += 1
            row.reminded_at = now
        await session.flush()
        if renewal is None and not reminded and not expired:
            nothing_done(session)
        return DutiesDone(renewal=renewal, reminded=reminded, expired=expired)
