"""Trust-list proposals for the node's admin (role `admin`): draft a change, see what waits for this member's
signature with the difference in words, approve (sign) or object. The work is in `protocol/proposals.py`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from transit_window.api.deps import AdminClient, NodeDep, SessionDep
from transit_window.api.pagination import Page
from transit_window.api.problems import responses
from transit_window.exchange.admin import MESSAGE_ID
from transit_window.protocol import proposals
from transit_window.protocol.models import ProposalState, TrustProposal
from transit_window.protocol.node import Node
from transit_window.protocol.trust_changes import Change
from transit_window.text import Printable

router = APIRouter(prefix="/v1/corridor/proposals", tags=["governance"])
PROPOSAL_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
ProposalId = Annotated[str, Path(pattern=PROPOSAL_ID, description="The proposal's id (UUIDv7, the proposer's).")]


class ProposalIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"changes": [{"kind": "renew"}]}]},
    )

    changes: list[Change] = Field(min_length=1, max_length=50, description="Applied in order to the current version.")


class ObjectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Printable] = Field(min_length=1, max_length=1000)


class SignatureIn(BaseModel):
    """One entry of a JWS JSON general serialization, as `transit-window trust sign` adds it to the document."""

    model_config = ConfigDict(extra="forbid")

    protected: str = Field(min_length=1, max_length=2000, pattern=r"^[A-Za-z0-9_-]+$")
    signature: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")


class ProposalOut(BaseModel):
    id: str
    version: int
    base_version: int
    sha256: str = Field(description="SHA-256 of the proposed payload: what every signer signs.")
    proposer: str
    state: ProposalState
    difference: list[str] = Field(description="What changes from the base version, computed from the two documents.")
    signers: list[str] = Field(description="Members whose valid signature this node holds.")
    waiting_for: list[str] = Field(description="Members of the proposed version that have not signed (while open).")
    objections: list[dict[str, str]]
    created_at: datetime
    expires_at: datetime
    closed_reason: str | None
    document: dict[str, Any] = Field(description="The proposed version as a JWS JSON document, signatures so far.")


class ApprovalOut(BaseModel):
    proposal: ProposalOut
    adopted: bool = Field(description="True when this signature completed the version and this node adopted it.")


class ProposalPage(Page[ProposalOut]):
    """Proposals, newest first: follow `next` (as `cursor`) until it is null."""


def _out(row: TrustProposal, node: Node) -> ProposalOut:
    view = proposals.view_of(row, node)
    return ProposalOut.model_validate(view, from_attributes=True)


@router.post(
    "",
    status_code=201,
    operation_id="corridor_propose",
    summary="Propose the next trust-list version: this node builds it, signs it and sends it to every member",
    response_model=ProposalOut,
    responses=responses(401, 403, 409, 422),
)
async def propose(payload: ProposalIn, admin: AdminClient, node: NodeDep, session: SessionDep) -> ProposalOut:
    del admin
    row = await proposals.propose(session, node, changes=payload.changes)
    return _out(row, node)


@router.get(
    "",
    operation_id="corridor_list_proposals",
    summary="Proposals this node knows, newest first (`state=open`: what waits for a decision)",
    response_model=ProposalPage,
    responses=responses(401, 403, 422),
)
async def list_proposals(
    admin: AdminClient,
    node: NodeDep,
    session: SessionDep,
    state: ProposalState | None = None,
    cursor: Annotated[str | None, Query(pattern=MESSAGE_ID, description="`next` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ProposalPage:
    del admin
    statement = select(TrustProposal).order_by(TrustProposal.id.desc()).limit(limit + 1)
    if state is not None:
        statement = statement.where(TrustProposal.state == state)
    if cursor:
        statement = statement.where(TrustProposal.id < cursor)
    rows = list((await session.scalars(statement)).all())
    return ProposalPage(
        items=[_out(row, node) for row in rows[:limit]], next=rows[limit - 1].id if len(rows) > limit else None
    )


@router.get(
    "/{proposal_id}",
    operation_id="corridor_get_proposal",
    summary="One proposal: the difference, who signed, who objected and why",
    response_model=ProposalOut,
    responses=responses(401, 403, 404, 422),
)
async def get_proposal(proposal_id: ProposalId, admin: AdminClient, node: NodeDep, session: SessionDep) -> ProposalOut:
    del admin
    row = await session.get(TrustProposal, proposal_id)
    if row is None:
        raise proposals.ProposalNotFound(proposal_id)
    return _out(row, node)


@router.post(
    "/{proposal_id}/approve",
    operation_id="corridor_approve_proposal",
    summary="Sign the proposed version with this node's key; adopt it when the signatures suffice",
    response_model=ApprovalOut,
    responses=responses(401, 403, 404, 409, 422),
)
async def approve(proposal_id: ProposalId, admin: AdminClient, node: NodeDep, session: SessionDep) -> ApprovalOut:
    del admin
    row, adopted = await proposals.approve(session, node, proposal_id=proposal_id)
    return ApprovalOut(proposal=_out(row, node), adopted=adopted)


@router.post(
    "/{proposal_id}/object",
    operation_id="corridor_object_to_proposal",
    summary="Object to a proposed version, with a reason every member sees",
    response_model=ProposalOut,
    responses=responses(401, 403, 404, 409, 422),
)
async def object_to(
    proposal_id: ProposalId, payload: ObjectionIn, admin: AdminClient, node: NodeDep, session: SessionDep
) -> ProposalOut:
    del admin
    row = await proposals.object_to(session, node, proposal_id=proposal_id, reason=payload.reason)
    return _out(row, node)


@router.post(
    "/{proposal_id}/signatures",
    operation_id="corridor_add_proposal_signature",
    summary="Attach a signature made elsewhere (a member being admitted signs offline); adopt when it completes it",
    description="A member being admitted is not in the current version, so its node cannot send corridor messages "
    "yet: its admin signs the proposed document with `transit-window trust sign` and a member's admin attaches the "
    "new entry here. It must verify with a key, valid now, of a member of the current or the proposed version.",
    response_model=ApprovalOut,
    responses=responses(401, 403, 404, 409, 422),
)
async def add_signature(
    proposal_id: ProposalId, payload: SignatureIn, admin: AdminClient, node: NodeDep, session: SessionDep
) -> ApprovalOut:
    del admin
    row, adopted = await proposals.add_signature(session, node, proposal_id=proposal_id, signature=payload.model_dump())
    return ApprovalOut(proposal=_out(row, node), adopted=adopted)
