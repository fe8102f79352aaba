"""The `corridor.*` message types: ping, trust-list update and log checkpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer
from sqlalchemy import insert, select, update

from transit_window import clock
from transit_window.dates import Rfc3339
from transit_window.db.session import after_commit
from transit_window.protocol import MAX_JSON_INTEGER
from transit_window.protocol.models import Checkpoint, TrustProposal, TrustVersion
from transit_window.protocol.registry import MessageTypes, Rejection
from transit_window.protocol.trust import TrustError, TrustList, verify_successor
from transit_window.text import Printable

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.protocol.envelope import VerifiedEnvelope
    from transit_window.protocol.node import Node

MESSAGES = MessageTypes()  # registered by transit_window.catalogue


class PingBody(BaseModel):
    """A liveness and reachability probe; the signed receipt is the answer."""

    model_config = ConfigDict(extra="ignore")

    note: Annotated[str, Printable] = Field(default="", max_length=500)


class TrustUpdateBody(BaseModel):
    """A new trust-list version, as its full JWS JSON document."""

    model_config = ConfigDict(extra="ignore")

    version: int = Field(ge=1)
    document: dict[str, Any]


class CheckpointBody(BaseModel):
    """A signed head of the sender's log, for the receiver to keep as a witness."""

    model_config = ConfigDict(extra="ignore")

    node: str = Field(pattern=r"^[A-Z]{2}$")
    size: int = Field(ge=1, le=MAX_JSON_INTEGER, strict=True)
    head: str = Field(pattern=r"^[0-9a-f]{64}$")
    at: Annotated[Rfc3339, PlainSerializer(clock.isoformat, return_type=str, when_used="json")]


@MESSAGES.message_type("corridor.ping", body=PingBody, summary="Reachability probe; the receipt is the answer.")
async def on_ping(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    """Nothing to apply: the stored inbox row and the signed receipt are the record of the ping."""


async def adopt_trust_list(
    session: AsyncSession, node: Node, candidate: TrustList, *, source: str, proposal: str | None = None
) -> bool:
    """Store `candidate` as the new current version if it is a valid successor; False if already current.
    `source` (at most 40 characters) is kept with the version; `proposal` names the proposal that became it."""
    current = node.trust
    if candidate.version == current.version and candidate.sha256 == current.sha256:
        return False
    verify_successor(current, candidate, now=clock.utcnow())
    exists = await session.scalar(select(TrustVersion.version).where(TrustVersion.version == candidate.version))
    if exists is not None:
        return False
    await session.execute(
        insert(TrustVersion).values(
            version=candidate.version,
            sha256=candidate.sha256,
            document=candidate.to_json().decode(),
            source=source,
            accepted_at=clock.utcnow(),
        )
    )
    how = f"proposal {proposal}, adopted by {node.id}" if proposal else source
    await _close_proposals(session, version=candidate.version, sha256=candidate.sha256, source=how)
    after_commit(session, lambda: node.set_trust(candidate))
    return True


async def _close_proposals(session: AsyncSession, *, version: int, sha256: str, source: str) -> None:
    """Whoever adopted it (an operator, a peer's update, a proposal's last signature): the open proposal that is this
    version is adopted, and every other open proposal for it or older is superseded, naming the one that won."""
    now = clock.utcnow()
    winner = await session.scalar(
        select(TrustProposal.id).where(TrustProposal.state == "open", TrustProposal.sha256 == sha256)
    )
    await session.execute(
        update(TrustProposal)
        .where(TrustProposal.state == "open", TrustProposal.sha256 == sha256)
        .values(state="adopted", closed_at=now, closed_reason=f"became version {version} ({source})")
    )
    won = f"proposal {winner}" if winner else f"a version with SHA-256 {sha256}"
    why = f"version {version} was adopted first: {won} ({source})"
    await session.execute(
        update(TrustProposal)
        .where(TrustProposal.state == "open", TrustProposal.version <= version)
        .values(state="superseded", closed_at=now, closed_reason=why)
    )


@MESSAGES.message_type(
    "corridor.trust-update",
    body=TrustUpdateBody,
    summary="A new threshold-signed trust-list version (admission, key rotation, revocation).",
)
async def on_trust_update(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    body = envelope.body
    assert isinstance(body, TrustUpdateBody)
    try:
        candidate = TrustList.from_document(body.document)
        if candidate.version != body.version:
            raise Rejection("14", f"body says version {body.version}, the document is version {candidate.version}")
        if candidate.version < node.trust.version:
            raise Rejection("15", f"version {candidate.version} is older than the current {node.trust.version}")
        await adopt_trust_list(session, node, candidate, source=f"peer:{envelope.payload.iss}")
    except TrustError as exc:
        raise Rejection("14", str(exc)) from exc


@MESSAGES.message_type("corridor.checkpoint", body=CheckpointBody, summary="A signed log head to witness.")
async def on_checkpoint(session: AsyncSession, envelope: VerifiedEnvelope, node: Node) -> None:
    body = envelope.body
    assert isinstance(body, CheckpointBody)
    if body.node != envelope.payload.iss:
        raise Rejection("15", f"{envelope.payload.iss} may only publish its own checkpoints, not {body.node}'s")
    known = await session.scalar(
        select(Checkpoint.head).where(Checkpoint.node == body.node, Checkpoint.size == body.size)
    )
    if known is not None:
        if known != body.head:
            raise Rejection("14", f"{body.node} already showed a different head at size {body.size}: its log forked")
        return
    await session.execute(
        insert(Checkpoint).values(
            node=body.node,
            size=body.size,
            head=body.head,
            at=body.at,
            signed_at=envelope.payload.body["at"],  # the text as signed (a string: `Rfc3339` let nothing else in)
            token=envelope.token,
            received_at=clock.utcnow(),
        )
    )
