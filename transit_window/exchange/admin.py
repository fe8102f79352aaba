"""Operator endpoints of the protocol (role `admin`): trust-list adoption, outbox, pings, audit, status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from transit_window import clock
from transit_window.api.deps import AdminClient, NodeDep, SessionDep
from transit_window.api.pagination import Page
from transit_window.api.problems import responses
from transit_window.errors import Conflict, FieldError, InvalidInput, NotFound
from transit_window.protocol import audit, outbox
from transit_window.protocol.corridor_messages import PingBody, TrustUpdateBody, adopt_trust_list
from transit_window.protocol.models import Checkpoint, InboundSequence, LogHead, OutboxMessage, OutboxState
from transit_window.protocol.trust import TrustError, TrustList
from transit_window.text import Printable

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class TrustAdoption(BaseModel):
    version: int
    sha256: str
    adopted: bool = Field(description="False when this version was already current.")
    signers: list[str]
    announced_to: list[str]


class OutboxItem(BaseModel):
    id: str
    peer: str
    seq: int
    type: str
    subject: str | None
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    receipt_status: str | None
    receipt_code: str | None
    receipt_detail: str | None


class OutboxPage(Page[OutboxItem]):
    pass


# Outbox messages carry this node's own ids (uuid7). Anything else names no message, and PostgreSQL refuses a NUL
# in a text parameter outright (a 500 once, found by tests/fuzz/test_contract.py).
MESSAGE_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class RetryRequest(BaseModel):
    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [{"state": "dead"}]}}

    ids: list[Annotated[str, Field(pattern=MESSAGE_ID)]] | None = Field(default=None, max_length=10000)
    state: Literal["dead", "pending"] | None = None


class RetryResult(BaseModel):
    retried: int


class PingRequest(BaseModel):
    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [{"to": ["UZ"], "note": "hello"}]}}

    to: list[Annotated[str, Printable]] | None = Field(
        default=None, description="Peers to ping; all members when omitted."
    )
    note: Annotated[str, Printable] = Field(default="", max_length=500)
    count: int = Field(default=1, ge=1, le=1000, description="Pings per peer (load drills).")


class PingResult(BaseModel):
    messages: dict[str, str] = Field(description="Per peer, the id of the (last) ping sent.")
    sent: int


class NodeStatus(BaseModel):
    node: str
    trust_version: int
    trust_expires_at: datetime
    members: list[str]
    outbox: dict[str, dict[str, int]]
    inbound: dict[str, dict[str, int]]
    log_size: int


@router.post(
    "/trust-list",
    operation_id="admin_adopt_trust_list",
    summary="Adopt a new threshold-signed trust-list version and announce it to every member",
    response_model=TrustAdoption,
    responses=responses(401, 403, 409, 422),
)
async def adopt(document: dict[str, Any], admin: AdminClient, node: NodeDep, session: SessionDep) -> TrustAdoption:
    del admin
    try:
        candidate = TrustList.from_document(document)
        current = node.trust
        adopted = await adopt_trust_list(session, node, candidate, source="admin")
    except TrustError as exc:
        raise Conflict(str(exc)) from exc
    announced: list[str] = []
    if adopted:
        body = TrustUpdateBody(version=candidate.version, document=candidate.document())
        for member in candidate.nodes():
            if member != node.id:
                outbox.enqueue(
                    session,
                    to=member,
                    message_type="corridor.trust-update",
                    body=body,
                    subject=f"trust:{candidate.version}",
                )
                announced.append(member)
    signers = sorted(candidate.signing_members(candidate, at=clock.utcnow()))
    del current
    return TrustAdoption(
        version=candidate.version,
        sha256=candidate.sha256,
        adopted=adopted,
        signers=signers,
        announced_to=announced,
    )


@router.get(
    "/outbox",
    operation_id="admin_list_outbox",
    summary="Outbox messages, newest first",
    response_model=OutboxPage,
    responses=responses(401, 403, 422),
)
async def list_outbox(
    admin: AdminClient,
    session: SessionDep,
    state: OutboxState | None = None,
    peer: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$")] = None,
    cursor: Annotated[str | None, Query(pattern=MESSAGE_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> OutboxPage:
    del admin
    statement = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit + 1)
    if state:
        statement = statement.where(OutboxMessage.state == state)
    if peer:
        statement = statement.where(OutboxMessage.peer == peer)
    if cursor:
        statement = statement.where(OutboxMessage.id < cursor)
    rows = list((await session.scalars(statement)).all())
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return OutboxPage(
        items=[OutboxItem.model_validate(row, from_attributes=True) for row in rows[:limit]],
        next=next_cursor,
    )


@router.post(
    "/outbox/retry",
    operation_id="admin_retry_outbox",
    summary="Send dead (or waiting) messages again now",
    response_model=RetryResult,
    responses=responses(401, 403, 422),
)
async def retry_outbox(request: RetryRequest, admin: AdminClient, node: NodeDep, session: SessionDep) -> RetryResult:
    del admin
    if not request.ids and not request.state:
        raise InvalidInput(
            "name the messages to retry by ids or by state",
            errors=[FieldError(pointer="/body/ids", detail="give ids or state", code="missing")],
        )
    retried = await outbox.retry(session, ids=request.ids, state=request.state)
    node.wake_worker()
    return RetryResult(retried=retried)


@router.post(
    "/pings",
    operation_id="admin_ping",
    summary="Send corridor.ping to peers (all members by default)",
    response_model=PingResult,
    responses=responses(401, 403, 404, 422),
)
async def ping(request: PingRequest, admin: AdminClient, node: NodeDep, session: SessionDep) -> PingResult:
    del admin
    targets = request.to if request.to is not None else node.peers()
    unknown = [target for target in targets if target not in node.trust.nodes() or target == node.id]
    if unknown:
        raise NotFound(f"not a peer in trust list version {node.trust.version}: {', '.join(unknown)}")
    ids: dict[str, str] = {}
    for target in targets:
        for _ in range(request.count):
            ids[target] = outbox.enqueue(
                session, to=target, message_type="corridor.ping", body=PingBody(note=request.note)
            )
    return PingResult(messages=ids, sent=len(targets) * request.count)


@router.get(
    "/audit",
    operation_id="admin_audit",
    summary="Verify the log chain, own checkpoints and the checkpoints peers witnessed",
    responses=responses(401, 403),
)
async def run_audit(admin: AdminClient, node: NodeDep) -> dict[str, object]:
    del admin
    return (await audit.verify(node)).as_dict()


@router.get(
    "/status",
    operation_id="admin_status",
    summary="Trust version, outbox by peer and state, inbound sequences, log size",
    response_model=NodeStatus,
    responses=responses(401, 403),
)
async def status(admin: AdminClient, node: NodeDep, session: SessionDep) -> NodeStatus:
    del admin
    counts: dict[str, dict[str, int]] = {}
    rows = await session.execute(
        select(OutboxMessage.peer, OutboxMessage.state, func.count()).group_by(OutboxMessage.peer, OutboxMessage.state)
    )
    for peer, state, count in rows:
        counts.setdefault(peer, {})[state] = int(count)
    inbound = {
        row.peer: {"contiguous": int(row.contiguous), "max_seen": int(row.max_seen)}
        for row in await session.scalars(select(InboundSequence))
    }
    size = int(await session.scalar(select(LogHead.size).where(LogHead.id == 1)) or 0)
    return NodeStatus(
        node=node.id,
        trust_version=node.trust.version,
        trust_expires_at=node.trust.body.expires_at,
        members=node.trust.nodes(),
        outbox=counts,
        inbound=inbound,
        log_size=size,
    )


class CheckpointResult(BaseModel):
    published: bool
    size: int


@router.post(
    "/checkpoints",
    operation_id="admin_checkpoint",
    summary="Sign and publish a checkpoint of the log now",
    response_model=CheckpointResult,
    responses=responses(401, 403),
)
async def checkpoint_now(admin: AdminClient, node: NodeDep) -> CheckpointResult:
    del admin
    from transit_window.protocol.checkpoints import checkpoint_due

    published = await checkpoint_due(node, force=True)
    async with node.sessionmaker() as session:  # the newest checkpoint's size (the log grew since: it was sent)
        size = int(await session.scalar(select(func.max(Checkpoint.size)).where(Checkpoint.node == node.id)) or 0)
    return CheckpointResult(published=published, size=size)
