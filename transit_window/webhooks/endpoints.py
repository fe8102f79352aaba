"""The webhook API: subscriptions of forwarders (their consignments) and customs (every event of this node), the
delivery log, redelivery, secret rotation and re-enabling. Another owner's subscription is not found (404); one
that is readable but made by another client is only read (403 for acting on it, `service.managed`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from transit_window.api.deps import SECRET_BEARING, NodeDep, Principal, SessionDep, require
from transit_window.api.pagination import Page
from transit_window.api.problems import responses
from transit_window.text import Printable
from transit_window.tracking.interface import readable_movement
from transit_window.webhooks import service, signing
from transit_window.webhooks.models import WebhookDelivery, WebhookSubscription

router = APIRouter(tags=["webhooks"])
Owner = Annotated[Principal, Depends(require("forwarder", "customs"))]
# Reading and acting on existing subscriptions: the operator too (a subscription may need stopping when its owner
# cannot); which of them may act on a given subscription is `service.managed`'s rule.
Reader = Annotated[Principal, Depends(require("forwarder", "customs", "admin"))]
MRN_PATTERN = r"^[0-9]{2}[A-Z]{2}[A-Z0-9]{12}[JKL][0-9]$"
ID_PATTERN = r"^[0-9a-f-]{36}$"
SubscriptionId = Annotated[str, Path(pattern=ID_PATTERN)]


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.forwarder.example/transit",
                    "event_types": ["tracking.exit", "tracking.entry", "tracking.alert"],
                    "description": "border crossings and alerts of all our consignments",
                },
                {"url": "https://hooks.forwarder.example/transit", "mrn": "26KZALA000000123J7"},
            ]
        },
    )

    url: Annotated[str, Printable] = Field(
        min_length=10,
        max_length=2000,
        description="http(s) URL of the receiver; loopback, link-local and private addresses are refused unless "
        "the operator allows them",
    )
    mrn: str | None = Field(default=None, pattern=MRN_PATTERN, description="Only this consignment (default: all).")
    event_types: list[str] = Field(
        default_factory=list,
        max_length=len(service.EVENT_TYPES),
        description=f"Only these types (default: all): {', '.join(service.EVENT_TYPES)}.",
    )
    description: Annotated[str, Printable] | None = Field(default=None, max_length=200)
    secret: str | None = Field(
        default=None,
        max_length=100,
        description="The receiver's own signing secret (`whsec_` + base64 of 24 to 64 random bytes), e.g. the one "
        "`transit-window webhooks listen` was started with. Left out (recommended): the node makes one and answers "
        "it once.",
    )

    @field_validator("secret")
    @classmethod
    def _secret_shape(cls, value: str | None) -> str | None:
        return None if value is None else signing.check_secret(value)

    @field_validator("event_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(service.EVENT_TYPES))
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {', '.join(service.EVENT_TYPES)}")
        return value


class SubscriptionOut(BaseModel):
    id: str
    url: str
    mrn: str | None
    event_types: list[str] = Field(description="Empty: every event type.")
    description: str | None
    active: bool
    consecutive_failures: int
    disabled_at: datetime | None
    disabled_reason: str | None = Field(description="Why deliveries stopped (set when the subscription is disabled).")
    previous_secret_valid_until: datetime | None = Field(
        description="After a rotation, until when deliveries are also signed with the previous secret."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, subscription: WebhookSubscription) -> SubscriptionOut:
        return cls(
            id=subscription.id,
            url=subscription.url,
            mrn=subscription.mrn,
            event_types=list(subscription.event_types),
            description=subscription.description,
            active=subscription.active,
            consecutive_failures=subscription.consecutive_failures,
            disabled_at=subscription.disabled_at,
            disabled_reason=subscription.disabled_reason,
            previous_secret_valid_until=(
                subscription.previous_secret_until if len(service.signing_keys(subscription)) > 1 else None
            ),
            created_at=subscription.created_at,
            updated_at=subscription.updated_at,
        )


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(
        description="The signing secret (Standard Webhooks `whsec_...`). Shown only now: store it to verify the "
        "`webhook-signature` header."
    )


class SubscriptionPage(Page[SubscriptionOut]):
    pass


class SecretOut(BaseModel):
    id: str
    secret: str = Field(description="The new signing secret, shown only now.")
    previous_secret_valid_until: datetime = Field(
        description="Until then deliveries carry a signature with the old secret too."
    )


class DeliveryOut(BaseModel):
    id: str = Field(description="The `webhook-id` header: the same on every retry and redelivery.")
    event_id: str
    event_type: str
    mrn: str
    state: str = Field(description="pending, delivered, or failed (held while the subscription is disabled)")
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="When a pending delivery is tried next.")
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    response_status: int | None = Field(description="The receiver's HTTP status at the last attempt.")
    last_error: str | None

    @classmethod
    def of(cls, delivery: WebhookDelivery) -> DeliveryOut:
        return cls(
            id=delivery.id,
            event_id=f"urn:uuid:{delivery.event_id}",
            event_type=delivery.event_type,
            mrn=delivery.mrn,
            state=delivery.state,
            attempts=delivery.attempts,
            created_at=delivery.created_at,
            next_attempt_at=delivery.next_attempt_at if delivery.state == "pending" else None,
            last_attempt_at=delivery.last_attempt_at,
            delivered_at=delivery.delivered_at,
            response_status=delivery.response_status,
            last_error=delivery.last_error,
        )


class DeliveryPage(Page[DeliveryOut]):
    """Newest first."""


@router.post(
    "/v1/subscriptions",
    dependencies=SECRET_BEARING,
    operation_id="subscriptions_create",
    summary="Subscribe a URL to tracking events (Standard Webhooks); the signing secret is returned only here",
    status_code=201,
    response_model=SubscriptionCreated,
    responses=responses(401, 403, 404, 422),
)
async def create_subscription(
    request: SubscriptionIn, principal: Owner, node: NodeDep, session: SessionDep
) -> SubscriptionCreated:
    if request.mrn:
        await readable_movement(session, principal, request.mrn)
    subscription, secret = await service.create(
        session,
        principal,
        node.settings,
        url=request.url,
        mrn=request.mrn,
        event_types=request.event_types,
        description=request.description,
        secret=request.secret,
    )
    return SubscriptionCreated(**SubscriptionOut.of(subscription).model_dump(), secret=secret)


@router.get(
    "/v1/subscriptions",
    operation_id="subscriptions_list",
    summary="Subscriptions this client may read (a forwarder: its party's; customs: the node's; admin: all)",
    response_model=SubscriptionPage,
    responses=responses(401, 403, 422),
)
async def list_subscriptions(
    principal: Reader,
    session: SessionDep,
    cursor: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> SubscriptionPage:
    statement = (
        select(WebhookSubscription).where(service.owned_by(principal)).order_by(WebhookSubscription.id).limit(limit + 1)
    )
    if cursor:
        statement = statement.where(WebhookSubscription.id > cursor)
    rows = list((await session.scalars(statement)).all())
    page = rows[:limit]
    return SubscriptionPage(
        items=[SubscriptionOut.of(item) for item in page], next=page[-1].id if len(rows) > limit else None
    )


@router.get(
    "/v1/subscriptions/{subscription_id}",
    operation_id="subscriptions_get",
    summary="One subscription: its filters, state and why it was disabled (never its secret)",
    response_model=SubscriptionOut,
    responses=responses(401, 403, 404, 422),
)
async def get_subscription(subscription_id: SubscriptionId, principal: Reader, session: SessionDep) -> SubscriptionOut:
    return SubscriptionOut.of(await service.owned(session, principal, subscription_id))


@router.delete(
    "/v1/subscriptions/{subscription_id}",
    operation_id="subscriptions_delete",
    summary="Delete a subscription and its delivery log",
    status_code=204,
    response_class=Response,
    responses=responses(401, 403, 404, 422),
)
async def delete_subscription(subscription_id: SubscriptionId, principal: Reader, session: SessionDep) -> Response:
    await service.remove(session, await service.managed(session, principal, subscription_id))
    return Response(status_code=204)


@router.post(
    "/v1/subscriptions/{subscription_id}/secret",
    dependencies=SECRET_BEARING,
    operation_id="subscriptions_rotate_secret",
    summary="Rotate the signing secret: the new one is returned only here; the old one also signs for a grace period",
    response_model=SecretOut,
    responses=responses(401, 403, 404, 422),
)
async def rotate_secret(
    subscription_id: SubscriptionId, principal: Reader, node: NodeDep, session: SessionDep
) -> SecretOut:
    subscription = await service.managed(session, principal, subscription_id)
    secret = await service.rotate_secret(session, subscription, node.settings)
    assert subscription.previous_secret_until is not None
    return SecretOut(id=subscription.id, secret=secret, previous_secret_valid_until=subscription.previous_secret_until)


@router.post(
    "/v1/subscriptions/{subscription_id}/enable",
    operation_id="subscriptions_enable",
    summary="Re-enable a disabled subscription: its held deliveries are sent again, in order",
    response_model=SubscriptionOut,
    responses=responses(401, 403, 404, 422),
)
async def enable_subscription(
    subscription_id: SubscriptionId, principal: Reader, session: SessionDep
) -> SubscriptionOut:
    subscription = await service.managed(session, principal, subscription_id)
    await service.enable(session, subscription)
    return SubscriptionOut.of(subscription)


@router.get(
    "/v1/subscriptions/{subscription_id}/deliveries",
    operation_id="subscriptions_deliveries",
    summary="The delivery log: every event queued for this subscription, its attempts and the receiver's answers",
    response_model=DeliveryPage,
    responses=responses(401, 403, 404, 422),
)
async def list_deliveries(
    subscription_id: SubscriptionId,
    principal: Reader,
    session: SessionDep,
    state: Annotated[str | None, Query(pattern=r"^(pending|delivered|failed)$")] = None,
    cursor: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeliveryPage:
    subscription = await service.managed(session, principal, subscription_id)
    statement = (
        select(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == subscription.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit + 1)
    )
    if state:
        statement = statement.where(WebhookDelivery.state == state)
    if cursor:
        statement = statement.where(WebhookDelivery.id < cursor)
    rows = list((await session.scalars(statement)).all())
    page = rows[:limit]
    return DeliveryPage(items=[DeliveryOut.of(item) for item in page], next=page[-1].id if len(rows) > limit else None)


@router.post(
    "/v1/subscriptions/{subscription_id}/deliveries/{delivery_id}/redeliver",
    operation_id="subscriptions_redeliver",
    summary="Send a delivery again (same webhook-id and body; after any earlier pending event of its MRN)",
    status_code=202,
    response_model=DeliveryOut,
    responses=responses(401, 403, 404, 409, 422),
)
async def redeliver(
    subscription_id: SubscriptionId,
    delivery_id: Annotated[str, Path(pattern=ID_PATTERN)],
    principal: Reader,
    session: SessionDep,
) -> DeliveryOut:
    subscription = await service.managed(session, principal, subscription_id)
    return DeliveryOut.of(await service.redeliver(session, subscription, delivery_id))
