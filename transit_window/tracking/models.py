"""Tracking tables. Events are append-only: a correction is a new event whose `corrects` names the one in error."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Index, String
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
