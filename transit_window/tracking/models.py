"""Tracking tables. Events are append-only: a correction is a new event whose `corrects` names the one in error."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from transit_window.db.base import Base


class TrackingEvent(Base):
    __tablename__ = "tracking_events"
    __table_args__ = (
        Index("ix_tracking_events_mrn_time", "mrn", "event_time"),
        Index("ix_tracking_events_time", "event_time"),
        Index("ix_tracking_events_biz_step_time", "biz_step", "event_time"),
        Index("ix_tracking_events_location_time", "office", "event_time"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    mrn: Mapped[str] = mapped_column(String(18))
    kind: Mapped[str] = mapped_column(String(20))
    event_time: Mapped[datetime]
    event_time_zone_offset: Mapped[str] = mapped_column(String(6))
    record_time: Mapped[datetime]
    office: Mapped[str | None] = mapped_column(String(8))
    country: Mapped[str] = mapped_column(String(2))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    biz_step: Mapped[str] = mapped_column(String(40))
    disposition: Mapped[str] = mapped_column(String(40))
    dcsa_code: Mapped[str | None] = mapped_column(String(8))
    rec24_code: Mapped[str | None] = mapped_column(String(4))
    signed_by: Mapped[str] = mapped_column(String(2))
    envelope_id: Mapped[str | None] = mapped_column(String(36))
    containers: Mapped[dict[str, Any]]  # {"containers": [...], "vehicle": "...", "trailer": "..."}
    corrects: Mapped[str | None] = mapped_column(String(36))
    details: Mapped[dict[str, Any]]


class TrackingCode(Base):
    """A public tracking code (≥ 128 random bits). Rotating deactivates the old code."""

    __tablename__ = "tracking_codes"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    mrn: Mapped[str] = mapped_column(String(18), index=True)
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]


class ConsignmentParty(Base):
    """Who may follow a consignment: its declarant, consignor, consignee and carrier, and parties the declarant
    delegated (`role` = delegate, `granted_by` = the declarant). Indexed by party for the forwarder's list."""

    __tablename__ = "consignment_parties"
    __table_args__ = (Index("ix_consignment_parties_party", "party_id", "mrn"),)

    mrn: Mapped[str] = mapped_column(String(18), primary_key=True)
    party_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(12), primary_key=True)
    granted_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]


class TrackingPosition(Base):
    """One e-seal ping. The primary key is the ping's identity (device, movement, time): a repeated ping is not
    stored twice. Deliberately narrow, with no secondary index: ingestion is one bulk insert per batch."""

    __tablename__ = "tracking_positions"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    mrn: Mapped[str] = mapped_column(String(18), primary_key=True)
    time: Mapped[datetime] = mapped_column(primary_key=True)
    seal_id: Mapped[str | None] = mapped_column(String(64))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    speed: Mapped[float | None] = mapped_column(Float)
    seal_state: Mapped[str] = mapped_column(String(10))
    received_at: Mapped[datetime]


class TrackingPositionState(Base):
    """The last known position of a movement and the stop in progress, so rules evaluated batch by batch see a
    long stop that spans several batches. One row per MRN."""

    __tablename__ = "tracking_position_states"

    mrn: Mapped[str] = mapped_column(String(18), primary_key=True)
    last_time: Mapped[datetime]
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    seal_state: Mapped[str] = mapped_column(String(10))
    segment: Mapped[int] = mapped_column(Integer)  # the route segment the truck was last seen on
    still_since: Mapped[datetime]  # when the truck came to the point it is still at
    still_lat: Mapped[float] = mapped_column(Float)
    still_lon: Mapped[float] = mapped_column(Float)
    stop_alerted: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime]


class TrackingAlert(Base):
    """An alert raised by a rule on e-seal positions, by the overdue-crossing check or by an arrival without the
    route's crossings, here or on another node of the route (`raised_by`). `open_key` is "<mrn>|<rule>" while a
    local alert is not closed, NULL otherwise: its unique index keeps one open alert per movement and rule even when
    two batches race."""

    __tablename__ = "tracking_alerts"
    __table_args__ = (
        Index("ix_tracking_alerts_status_id", "status", "id"),
        Index("ix_tracking_alerts_mrn_rule", "mrn", "rule"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    mrn: Mapped[str] = mapped_column(String(18))
    rule: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(12))  # open | acknowledged | closed
    raised_by: Mapped[str] = mapped_column(String(2))
    raised_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    office: Mapped[str | None] = mapped_column(String(8))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any]]
    event_id: Mapped[str | None] = mapped_column(String(36))
    envelope_id: Mapped[str | None] = mapped_column(String(36))
    open_key: Mapped[str | None] = mapped_column(String(48), unique=True)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(36))
    acknowledged_note: Mapped[str | None] = mapped_column(String(2000))
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(36))
    closed_note: Mapped[str | None] = mapped_column(String(2000))
    device_id: Mapped[str | None] = mapped_column(String(64))  # the device whose ping raised it (e-seal rules)
    client_id: Mapped[str | None] = mapped_column(String(36))  # the API client that sent that ping (here)


class Device(Base):
    """An e-seal or tracker, registered by an admin to the device client allowed to report for it (an e-seal's own
    client, or a gateway's client for every device behind it). `seal_id` is the seal number the device carries, as
    a declaration lists it under `seals`; NULL when the device id *is* the seal number. A ping is accepted only from
    the device's client and only for a movement whose declaration lists that seal (`tracking/positions.py`)."""

    __tablename__ = "devices"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # No foreign key, like every table here: a client is revoked, never deleted, and registering checks it.
    client_id: Mapped[str] = mapped_column(String(36), index=True)
    seal_id: Mapped[str | None] = mapped_column(String(64))
    registered_at: Mapped[datetime]
    registered_by: Mapped[str] = mapped_column(String(36))  # the admin client

    @property
    def seal(self) -> str:
        return self.seal_id or self.device_id
