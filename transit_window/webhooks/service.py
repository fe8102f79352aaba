"""Webhook subscriptions: who gets which tracking events where, the SSRF guard on their URLs, and the hook that
queues deliveries in the transaction that records an event.

A forwarder's subscription matches events of consignments its party may follow (the `consignment_parties` index,
looked up when the event is recorded); a customs subscription matches every event this node records. Both can be
narrowed to one MRN and to some event types.

SSRF: a URL must be http(s) with no credentials, and every address its host resolves to must be global unicast —
loopback, link-local (cloud metadata), private, shared, multicast, unspecified and reserved addresses are refused
unless the operator sets `TW_WEBHOOK_ALLOW_PRIVATE_TARGETS`. The host is resolved when the subscription is made and
again before every attempt, and the request goes to the address that was checked (so a DNS answer that changes
between the check and the connection cannot redirect it).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import and_, delete, false, or_, select, true, update

from transit_window import clock
from transit_window.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from transit_window.ids import new_id
from transit_window.tracking.interface import STEPS, ConsignmentParty, EventRecorded, TrackingEvent
from transit_window.webhooks import signing
from transit_window.webhooks.models import WebhookDelivery, WebhookSubscription

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.sql.elements import ColumnElement

    from transit_window.clients.principal import Principal
    from transit_window.settings import Settings

EVENT_TYPE_PREFIX = "tracking."
EVENT_TYPES = tuple(EVENT_TYPE_PREFIX + kind for kind in STEPS)
DISABLED_NOTE = "not delivered while the subscription is disabled; enabling it resumes delivery"
NEW_DELIVERIES = "tw_webhook_deliveries"  # a list: a savepoint rolled back forgets what was queued inside it


def event_type_of(kind: str) -> str:
    """`tracking.<step>`; kinds outside the vocabulary are alerts (as `vocabulary.of` reads them)."""
    return EVENT_TYPE_PREFIX + (kind if kind in STEPS else "alert")


# --- SSRF guard -------------------------------------------------------------------------------------------------


class TargetRefused(Exception):
    """A webhook URL this node will not call."""


@dataclass(frozen=True, slots=True)
class Target:
    url: str  # the URL to request: the original with its host replaced by the checked address
    host_header: str  # the original host[:port], sent as Host
    server_name: str  # the original host name, for TLS (SNI and certificate check)
    address: str


def parse_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise TargetRefused(f"not a URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise TargetRefused(f"only http and https URLs are allowed, not {parsed.scheme or 'no scheme'}")
    if not parsed.raw_host:
        raise TargetRefused("the URL has no host")
    if parsed.userinfo:
        raise TargetRefused("put no credentials in the URL")
    return parsed


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix: the last 32 bits are the IPv4 address
NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215 local-use: the operator's own translators


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address leads to, each with how: 6to4 (2002::/16), Teredo (server and client) and
    NAT64. Python's `is_global` judges the IPv6 wrapper only (3.11 counts 2002:7f00:1:: as global), so each embedded
    address is judged in its own right (issue 13.6). Mapped ::ffff: addresses are the IPv4 address itself."""
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    if ip.sixtofour is not None:
        found.append(("6to4 of", ip.sixtofour))
    if ip.teredo is not None:
        found.extend(("Teredo via", inner) for inner in ip.teredo)
    if ip in NAT64:
        found.append(("NAT64 of", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
    return found


def _kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    checks = (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("non-global", not ip.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


def refused_kind(address: str) -> str | None:
    """Why an address may not be called ("loopback", "private", ...), or None for a global unicast address.

    An IPv6 address that carries an IPv4 address is refused for what the IPv4 address is (2002:7f00:1:: is
    "loopback (6to4 of 127.0.0.1)"): a relay or translator on the way would deliver to it."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return _kind(ip.ipv4_mapped)
        if ip in NAT64_LOCAL:
            return "non-global (local-use NAT64)"
        for how, inner in embedded_ipv4(ip):
            kind = _kind(inner)
            if kind:
                return f"{kind} ({how} {inner})"
        if ip in NAT64:  # a DNS64 answer for a public IPv4 host; Python calls all of ::/8 reserved
            return None
    return _kind(ip)


async def resolve_target(url: str, *, allow_private: bool) -> Target:
    """Check the URL and its host's addresses; raises TargetRefused with the reason."""
    parsed = parse_url(url)
    host = parsed.raw_host.decode("ascii")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"the host {host} does not resolve: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise TargetRefused(f"the host {host} does not resolve")
    if not allow_private:
        for address in addresses:
            kind = refused_kind(address)
            if kind:
                raise TargetRefused(
                    f"the host {host} resolves to {address}, a {kind} address; webhooks only go to public addresses "
                    "unless the operator allows private targets"
                )
    address = addresses[0]
    return Target(
        url=str(parsed.copy_with(host=address.split("%", 1)[0])),
        host_header=parsed.netloc.decode("ascii"),
        server_name=host,
        address=address,
    )


# --- subscriptions ----------------------------------------------------------------------------------------------


def owned_by(principal: Principal) -> ColumnElement[bool]:
    """The subscriptions this principal may read: customs read the node's customs subscriptions, a forwarder its
    party's, the operator (admin) every one."""
    if principal.role == "admin":
        return true()
    if principal.role == "customs":
        return WebhookSubscription.role == "customs"
    if not principal.party_id:
        return false()
    return and_(WebhookSubscription.role == "forwarder", WebhookSubscription.party_id == principal.party_id)


async def create(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    *,
    url: str,
    mrn: str | None,
    event_types: list[str],
    description: str | None,
    secret: str | None = None,
) -> tuple[WebhookSubscription, str]:
    """Make a subscription; returns it and its secret (shown this once): the receiver's own, or a new one."""
    if principal.role == "forwarder" and not principal.party_id:
        raise Forbidden("this forwarder client has no party id, so it follows no consignment")
    await check_url(url, settings)
    now = clock.utcnow()
    secret = secret or signing.new_secret()
    subscription = WebhookSubscription(
        id=new_id(),
        client_id=principal.client_id,
        role=principal.role,
        party_id=principal.party_id if principal.role == "forwarder" else None,
        url=url,
        mrn=mrn,
        event_types=sorted(set(event_types)),
        description=description,
        secret=secret,
        previous_secret=None,
        previous_secret_until=None,
        active=True,
        consecutive_failures=0,
        disabled_at=None,
        disabled_reason=None,
        created_at=now,
        updated_at=now,
    )
    session.add(subscription)
    await session.flush()
    return subscription, secret


async def check_url(url: str, settings: Settings) -> None:
    try:
        await resolve_target(url, allow_private=settings.webhook_allow_private_targets)
    except TargetRefused as exc:
        raise InvalidInput(
            f"the webhook URL is refused: {exc}", errors=[FieldError("/body/url", str(exc), "target-refused")]
        ) from exc


async def owned(session: AsyncSession, principal: Principal, subscription_id: str) -> WebhookSubscription:
    """The principal's subscription; another owner's is not found (no existence leak)."""
    subscription = await session.scalar(
        select(WebhookSubscription).where(WebhookSubscription.id == subscription_id, owned_by(principal))
    )
    if subscription is None:
        raise NotFound(f"no subscription {subscription_id} for this client")
    return subscription


async def managed(session: AsyncSession, principal: Principal, subscription_id: str) -> WebhookSubscription:
    """The subscription, when this principal may act on it: the client that made it, or an admin.

    Reading (list, get) is shared with the node's other customs clients, or the forwarder party's other clients;
    acting is not: rotating the secret would let another client sign deliveries to the owner's receiver, deleting or
    re-enabling it changes what the owner receives, and the delivery log is the owner's receiver's record (its
    answers and errors), redelivered to the owner's URL. Refused with 403: the subscription is readable, so
    pretending it does not exist would contradict the list."""
    subscription = await owned(session, principal, subscription_id)
    if principal.role != "admin" and subscription.client_id != principal.client_id:
        raise Forbidden(
            f"subscription {subscription_id} belongs to the client that made it: only that client or an admin "
            "rotates its secret, deletes or re-enables it, and reads or redelivers its deliveries"
        )
    return subscription


async def rotate_secret(session: AsyncSession, subscription: WebhookSubscription, settings: Settings) -> str:
    """A new secret (shown this once). The old one keeps signing alongside it for the grace period, so receivers
    can switch without dropping a delivery."""
    now = clock.utcnow()
    subscription.previous_secret = subscription.secret
    subscription.previous_secret_until = now + timedelta(seconds=settings.webhook_secret_grace_seconds)
    subscription.secret = signing.new_secret()
    subscription.updated_at = now
    await session.flush()
    return subscription.secret


def signing_keys(subscription: WebhookSubscription) -> list[str]:
    keys = [subscription.secret]
    until = subscription.previous_secret_until
    if subscription.previous_secret and until is not None and until > clock.utcnow():
        keys.append(subscription.previous_secret)
    return keys


async def remove(session: AsyncSession, subscription: WebhookSubscription) -> None:
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription.id))
    await session.delete(subscription)
    await session.flush()


async def enable(session: AsyncSession, subscription: WebhookSubscription) -> None:
    """Switch a disabled subscription back on: its held deliveries become due again, in their order."""
    now = clock.utcnow()
    subscription.active = True
    subscription.consecutive_failures = 0
    subscription.disabled_at = None
    subscription.disabled_reason = None
    subscription.updated_at = now
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == subscription.id, WebhookDelivery.state == "failed")
        .values(state="pending", next_attempt_at=now, lease_owner=None, lease_until=None)
    )
    await session.flush()


async def disable(session: AsyncSession, subscription_id: str, *, reason: str) -> None:
    """Stop delivering: pending deliveries are kept as `failed` (enabling the subscription resumes them)."""
    now = clock.utcnow()
    await session.execute(
        update(WebhookSubscription)
        .where(WebhookSubscription.id == subscription_id)
        .values(active=False, disabled_at=now, disabled_reason=reason[:2000], updated_at=now)
    )
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == subscription_id, WebhookDelivery.state == "pending")
        .values(state="failed", lease_owner=None, lease_until=None)
    )


async def redeliver(session: AsyncSession, subscription: WebhookSubscription, delivery_id: str) -> WebhookDelivery:
    """Send a delivery again (same webhook-id and body, new timestamp and signature), after any earlier pending
    event of its MRN."""
    if not subscription.active:
        raise Conflict("the subscription is disabled: enable it first")
    delivery = await session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.subscription_id == subscription.id
        )
    )
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id} in this subscription")
    if delivery.state != "pending":  # a pending one keeps its lease: an attempt in flight is not doubled
        delivery.state = "pending"
        delivery.lease_owner = None
        delivery.lease_until = None
    delivery.next_attempt_at = clock.utcnow()
    await session.flush()
    return delivery


# --- subscribed to tracking's EventRecorded ------------------------------------------------------------------------


async def on_event_recorded(session: AsyncSession, event: EventRecorded) -> None:
    await enqueue_for_event(session, event_id=event.event_id, mrn=event.mrn, kind=event.kind, event=event.event)


async def enqueue_for_event(
    session: AsyncSession, *, event_id: str, mrn: str, kind: str, event: TrackingEvent | None = None
) -> int:
    """Queue the event for every matching subscription, in the caller's transaction; returns how many. The rows are
    inserted when it commits (`delivery.seal_deliveries`), with those of every other event it recorded."""
    event_type = event_type_of(kind)
    parties = select(ConsignmentParty.party_id).where(ConsignmentParty.mrn == mrn)
    # Whether an earlier delivery of the subscription for this MRN is still out: then this one waits its turn and
    # goes by claim, never handed over (delivery.seal_deliveries). Asked here, in the same statement.
    waiting = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.subscription_id == WebhookSubscription.id,
            WebhookDelivery.mrn == mrn,
            WebhookDelivery.state.in_(("pending", "failed")),
        )
        .exists()
        .label("waiting")
    )
    subscriptions = await session.execute(
        select(WebhookSubscription, waiting).where(
            or_(WebhookSubscription.mrn.is_(None), WebhookSubscription.mrn == mrn),
            or_(
                WebhookSubscription.role == "customs",
                and_(WebhookSubscription.role == "forwarder", WebhookSubscription.party_id.in_(parties)),
            ),
        )
    )
    now = clock.utcnow()
    queued: list[NewDelivery] = [
        NewDelivery(
            values={
                "id": new_id(),
                "subscription_id": subscription.id,
                "event_id": event_id,
                "mrn": mrn,
                "event_type": event_type,
                "body": None,
                "state": "pending" if subscription.active else "failed",
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
                "last_error": None if subscription.active else DISABLED_NOTE,
                "lease_owner": None,
                "lease_until": None,
            },
            url=subscription.url,
            keys=signing_keys(subscription),
            failures=subscription.consecutive_failures,
            waiting=bool(earlier),
            event=event,
        )
        for subscription, earlier in subscriptions
        if not subscription.event_types or event_type in subscription.event_types
    ]
    if queued:  # inserted at commit, all of the transaction's at once (webhooks/delivery.seal_deliveries)
        session.info.setdefault(NEW_DELIVERIES, []).extend(queued)
    return len(queued)


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A delivery queued by this transaction: its row, and where it goes (for handing it over at commit)."""

    values: dict[str, Any]
    url: str
    keys: list[str]
    failures: int
    waiting: bool  # an earlier delivery of the subscription for the MRN is still out
    event: TrackingEvent | None  # the event as inserted, to render without reading it back
