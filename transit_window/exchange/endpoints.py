"""HTTP endpoints of the corridor protocol: the inbox, pulls, the trust list and witnessed checkpoints."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from transit_window import clock
from transit_window.api.deps import NodeDep, SessionDep, VerifiedPeer
from transit_window.api.problems import problem_response, responses
from transit_window.errors import FieldError, Forbidden, InvalidInput, NotFound, Problem
from transit_window.protocol import MAX_JSON_INTEGER, inbox
from transit_window.protocol.models import Checkpoint, TrustVersion
from transit_window.protocol.pull import stored_messages_for
from transit_window.protocol.trust import Secretariat, TrustMember, chair_at

router = APIRouter(prefix="/v1/corridor", tags=["corridor"])
# `trust_versions.version` is a 32-bit integer column: a larger number names no stored version, and PostgreSQL refuses
# it as a parameter outright (a 500 the contract fuzzer found), so the path refuses it first.
STORED_VERSION_MAX = 2**31 - 1
MAX_BATCH = 1000


class Batch(BaseModel):
    messages: list[str] = Field(min_length=1, max_length=MAX_BATCH, description="Compact JWS envelopes.")


class ReceiptOut(BaseModel):
    receipt: str = Field(description="The signed receipt (compact JWS, typ dtc-receipt+jws).")
    status: str = Field(description="accepted, duplicate or rejected (as inside the receipt).")
    code: str | None = None


class BatchResult(BaseModel):
    receipt: str | None = None
    status: str | None = None
    code: str | None = None
    problem: dict[str, Any] | None = None


class BatchOut(BaseModel):
    results: list[BatchResult]


class PulledMessages(BaseModel):
    messages: list[str]


class WitnessedCheckpoint(BaseModel):
    node: str = Field(description="The node whose log it is.")
    size: int = Field(description="How many entries the log held.")
    head: str = Field(description="The entry_hash of entry `size`, 64 lower-case hex digits.")
    at: str = Field(description="When the node signed it: the string exactly as signed (RFC 3339).")
    token: str = Field(
        description="The compact JWS that carried it, as received: a `corridor.checkpoint` envelope from `node` "
        "(typ dtc-msg+jws) or, for this node's own checkpoints, the checkpoint itself (typ dtc-checkpoint+jws)."
    )


class WitnessedCheckpoints(BaseModel):
    checkpoints: list[WitnessedCheckpoint]


class SecretariatOut(BaseModel):
    chair: str | None = Field(description="The member holding the secretariat now; null before the first term.")
    chair_name: str | None = Field(description="Its name in the trust list.")
    since: str | None = Field(description="When its term started (RFC 3339, UTC).")
    until: str | None = Field(description="When its term ends and the next chair's starts (RFC 3339, UTC).")
    next: str = Field(description="Who holds it next: after `until`, or from the first term when there is no chair.")
    next_name: str = Field(description="Its name in the trust list.")
    rotation: Secretariat = Field(description="The rotation as the trust list states it.")
    trust_version: int = Field(description="The trust-list version this answer was computed from.")
    at: str = Field(description="The moment the answer is for: this node's clock (RFC 3339, UTC).")


_INBOX_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/jose": {
                "schema": {"type": "string", "description": "One compact JWS envelope."},
                "example": "eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiIsInR5cCI6ImR0Yy1tc2crandzIn0.eyJpZCI6Ii4uLiJ9.c2ln",
            },
            "application/json": {
                "schema": Batch.model_json_schema(),
                "example": {"messages": ["eyJhbGciOiJFZERTQSJ9.eyJpZCI6Ii4uLiJ9.c2ln"]},
            },
        },
    }
}


def _inbox_responses() -> dict[int | str, dict[str, Any]]:
    """`responses=` of the inbox: a refused envelope's status by its `reason` (PROTOCOL.md §3), or the request's."""
    declared = responses(400, 401, 403, 409, 413, 415, 422)
    refused = "A single envelope (application/jose) refused, problem type `urn:dtc:problem:message-not-authentic`: "
    declared[400]["description"] = refused + "malformed, bad-header, bad-payload, unknown-type or invalid-body"
    declared[401]["description"] = refused + "unknown-key, bad-signature or key-not-valid"
    declared[403]["description"] = refused + "wrong-issuer, wrong-audience or future-iat"
    declared[409]["description"] = "A concurrent delivery of the same message: retry"
    declared[422]["description"] = 'A batch that is not {"messages": [...]} with 1 to 1000 JWS strings'
    return declared


def _signed_read_responses(forbidden: str | None = None) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a read between nodes: what each refusal means (PROTOCOL.md §5, "Signed requests")."""
    declared = responses(401, 403, 422) if forbidden else responses(401, 422)
    declared[401] |= {
        "description": "The request signature does not authenticate this request (problem type "
        "`urn:dtc:problem:request-not-authentic`); `reason` names the first failed check: unsigned, malformed, "
        "bad-header, unknown-key, bad-signature, bad-claims, wrong-issuer, key-not-valid, wrong-audience, "
        "future-iat, stale-request (iat more than the allowed skew, 120 s by default, in the past) or "
        "request-mismatch (the signed method or path and query differ from this request's)",
        "headers": {"WWW-Authenticate": {"description": "DTC-Signature", "schema": {"type": "string"}}},
    }
    if forbidden:
        declared[403]["description"] = forbidden
    declared[422]["description"] = "A query parameter is invalid (checked after the signature)"
    return declared


_SIGNED_READ = (
    "A signed read between nodes: `Authorization: DTC-Signature <compact JWS>` (typ `dtc-request+jws`) over "
    "`{iss, aud, iat, method, path}`, where `path` is this request's path and query exactly as sent "
    "(PROTOCOL.md §5)."
)


def _outcome_json(outcome: inbox.Outcome) -> BatchResult:
    if isinstance(outcome, Problem):
        return BatchResult(problem=outcome.as_dict())
    return BatchResult(receipt=outcome.receipt, status=outcome.status, code=outcome.code)


@router.post(
    "/messages",
    operation_id="corridor_receive",
    summary="Deliver one signed envelope (application/jose) or a batch (application/json)",
    response_model=ReceiptOut | BatchOut,
    responses=_inbox_responses(),
    openapi_extra=_INBOX_BODY,
)
async def receive_messages(request: Request, node: NodeDep, session: SessionDep) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if content_type == "application/jose":
        token = raw.decode("ascii", errors="replace").strip()
        (verified,) = inbox.verify_all(node, [token])
        if isinstance(verified, Problem):
            return problem_response(verified, instance=request.url.path)
        (outcome,) = await inbox.receive(session, node, [verified])
        if isinstance(outcome, Problem):
            return problem_response(outcome, instance=request.url.path)
        return ReceiptOut(receipt=outcome.receipt, status=outcome.status, code=outcome.code)
    if content_type == "application/json":
        try:
            batch = Batch.model_validate_json(raw)
        except ValueError as exc:
            raise InvalidInput(
                'a batch is {"messages": ["<compact JWS>", ...]} with 1 to 1000 messages',
                errors=[FieldError(pointer="/body/messages", detail=str(exc).splitlines()[0], code="invalid")],
            ) from exc
        verified_all = inbox.verify_all(node, batch.messages)
        outcomes = await inbox.receive(session, node, verified_all)
        return BatchOut(results=[_outcome_json(outcome) for outcome in outcomes])
    return problem_response(
        Problem(
            status=415,
            title="Unsupported media type",
            detail='send application/jose (one compact JWS) or application/json ({"messages": [...]})',
        ),
        instance=request.url.path,
    )


@router.get(
    "/messages",
    operation_id="corridor_pull",
    summary="Re-serve the stored envelopes this node sent to the calling peer after a sequence number",
    description=_SIGNED_READ
    + " Answers the stored JWS strings of the envelopes this node sent to `to`, in `seq` order, those with `seq` "
    "greater than `after_seq`, at most `limit`; an empty list when there are none.",
    response_model=PulledMessages,
    responses=_signed_read_responses(
        "The signer may pull only the messages addressed to itself (`to` is another node): problem type "
        "`urn:dtc:problem:forbidden`, `reason` not-your-messages"
    ),
)
async def pull_messages(
    peer: VerifiedPeer,
    session: SessionDep,
    to: Annotated[str, Query(pattern=r"^[A-Z]{2}$", description="The calling node (must match its signature).")],
    after_seq: Annotated[int, Query(ge=0, le=MAX_JSON_INTEGER)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> PulledMessages:
    if peer != to:
        raise Forbidden(f"{peer} may pull only its own messages, not those for {to}", reason="not-your-messages")
    return PulledMessages(messages=await stored_messages_for(session, peer=to, after_seq=after_seq, limit=limit))


@router.get(
    "/trust-list",
    operation_id="corridor_trust_list",
    summary="The current trust list (JWS JSON general serialization)",
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def trust_list(node: NodeDep) -> Response:
    return Response(orjson.dumps(node.trust.document()), media_type="application/json")


@router.get(
    "/trust-list/{version}",
    operation_id="corridor_trust_list_version",
    summary="A past (or the current) trust-list version this node adopted, as it was signed",
    description="Public. Every version this node accepted is kept as received: a node that missed some catches up by "
    "applying them in order, and anyone can verify the whole chain from the genesis. A 404 problem for a version "
    "this node never held (it may have adopted a later one directly).",
    responses={
        200: {"content": {"application/json": {"schema": {"type": "object"}}}},
        **responses(404),
    },
)
async def trust_list_version(
    session: SessionDep, version: Annotated[int, Path(ge=1, le=STORED_VERSION_MAX)]
) -> Response:
    document = await session.scalar(select(TrustVersion.document).where(TrustVersion.version == version))
    if document is None:
        raise NotFound(f"this node holds no trust-list version {version}")
    return Response(orjson.dumps(orjson.loads(document)), media_type="application/json")


@router.get(
    "/secretariat",
    operation_id="corridor_secretariat",
    summary="Who holds the corridor's secretariat now, since when, until when, and who is next",
    description="Public, like the trust list: computed from this node's current trust-list version and clock by the "
    "rotation rule of PROTOCOL.md §2, so every member that holds the same version gives the same answer.",
    response_model=SecretariatOut,
    responses=responses(404),
)
async def secretariat(node: NodeDep) -> SecretariatOut:
    body = node.trust.body
    rotation = body.secretariat
    if rotation is None:
        raise NotFound(
            f"trust list version {body.version} has no secretariat rotation: the members agree one as a new version"
        )
    now = clock.utcnow()
    chair = chair_at(body, now)
    upcoming = chair.next if chair is not None else rotation.members[0]
    return SecretariatOut(
        chair=chair.node if chair is not None else None,
        chair_name=_name_of(node.trust.member(chair.node)) if chair is not None else None,
        since=clock.isoformat(chair.since) if chair is not None else None,
        until=clock.isoformat(chair.until) if chair is not None else None,
        next=upcoming,
        next_name=_name_of(node.trust.member(upcoming)) or upcoming,
        rotation=rotation,
        trust_version=body.version,
        at=clock.isoformat(now),
    )


def _name_of(member: TrustMember | None) -> str | None:
    return member.name if member is not None else None


@router.get(
    "/checkpoints",
    operation_id="corridor_checkpoints",
    summary="Checkpoints of a node's log that this node witnessed",
    description=_SIGNED_READ
    + " Any member may ask. Answers the `corridor.checkpoint`s of `node` this node kept (its own when `node` is "
    "this node), largest `size` first, at most `limit`, each with the values exactly as signed and the envelope "
    "that carried it.",
    response_model=WitnessedCheckpoints,
    responses=_signed_read_responses(),
)
async def witnessed_checkpoints(
    peer: VerifiedPeer,
    session: SessionDep,
    node_id: Annotated[str, Query(alias="node", pattern=r"^[A-Z]{2}$")],
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> WitnessedCheckpoints:
    del peer
    rows = await session.scalars(
        select(Checkpoint).where(Checkpoint.node == node_id).order_by(Checkpoint.size.desc()).limit(limit)
    )
    return WitnessedCheckpoints(
        checkpoints=[
            WitnessedCheckpoint(node=row.node, size=row.size, head=row.head, at=row.signed_at, token=row.token)
            for row in rows
        ]
    )
