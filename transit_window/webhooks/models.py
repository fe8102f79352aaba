"""Webhook tables: subscriptions and their durable delivery queue (one row per subscription and event).

A delivery is `pending` until the receiver answers 2xx (`delivered`); when its subscription is disabled after a run
of failures its pending rows become `failed` (kept, not retried) and enabling the subscription makes them pending
again, so nothing is lost while a receiver is down or switched off.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from transit_window.db.base import Base


class WebhookSubscription(Base):
    """Where to send which tracking events, and the secret that signs them.

    `secret` (and `previous_secret` during a rotation's grace period) is stored as given out — the node needs the
    key itself to compute HMAC-SHA256 signatures, so a hash would not do. It is a node-local secret at rest like the
    node's signing key file: protect the database (and its backups) accordingly. It is shown to the client only when
    created or rotated, never listed, and never logged.
    """

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (Index("ix_webhook_subscriptions_owner", "role", "party_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(36))  # the API client that created it
    role: Mapped[str] = mapped_column(String(16))  # forwarder | customs
    party_id: Mapped[str | None] = mapped_column(String(64))  # the forwarder's party; None for customs (every event)
    url: Mapped[str] = mapped_column(String(2000))
    mrn: Mapped[str | None] = mapped_column(String(18))  # None: every consignment the owner may see
    event_types: Mapped[list[str]] = mapped_column(JSON)  # empty: every type
    description: Mapped[str | None] = mapped_column(String(200))
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_until: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean)
    consecutive_failures: Mapped[int] = mapped_column(Integer)
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookDelivery(Base):
    """One event for one subscription. `id` (UUIDv7, in enqueue order) is also the `webhook-id` header, the same
    on every retry and redelivery. `body` is the exact JSON signed and sent, fixed in the transaction that records
    the event (rows queued before that was so get theirs at their first claim)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_chain", "subscription_id", "mrn", "state", "id"),
        Index("ix_webhook_deliveries_log", "subscription_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(String(36))
    event_id: Mapped[str] = mapped_column(String(36))
    mrn: Mapped[str] = mapped_column(String(18))
    event_type: Mapped[str] = mapped_column(String(40))
    body: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(12))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    response_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
