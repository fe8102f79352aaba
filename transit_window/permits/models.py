"""Tables of permit documents. The issuer's rows are the originals; other nodes keep copies of what they were sent
(`issuer` tells which), so a border post can check a permit, and a release can find it, without asking anyone.

    quota: granted ─issue→ partly issued ─→ exhausted      (raised any time; never lowered below `issued`)
    permit: active ─ENTRY→ in_use ─EXIT→ active (trips left) or consumed; revoked from any of them; expired by date
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from transit_window.db.base import Base, JSONType


class PermitQuota(Base):
    """A yearly quota the issuing country grants a partner country (`holder`), or every member (`holder="*"`, a
    multilateral quota in the manner of ECMT), for one permit type. `issued` counts down the balance atomically."""

    __tablename__ = "permit_quotas"

    issuer: Mapped[str] = mapped_column(String(2), primary_key=True)
    holder: Mapped[str] = mapped_column(String(2), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    issued: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)  # raised on every change; copies keep the newest
    granted_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Permit(Base):
    """One permit. `token` is the compact JWS the issuer signed: the permit itself, the rest is an index of it."""

    __tablename__ = "permits"
    __table_args__ = (
        Index("ix_permits_holder_carrier", "holder", "carrier_id"),
        Index("ix_permits_issuer_status", "issuer", "status"),
        Index("ix_permits_plate", "plate"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # ISSUER-FOR-YEAR-TYPE-SEQ
    issuer: Mapped[str] = mapped_column(String(2))
    holder: Mapped[str] = mapped_column(String(2))  # the carrier's country
    year: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(16))
    carrier_id: Mapped[str] = mapped_column(String(35))
    carrier_name: Mapped[str] = mapped_column(String(70))
    plate: Mapped[str] = mapped_column(String(20))
    trailer_plate: Mapped[str | None] = mapped_column(String(20))
    route: Mapped[list[str]] = mapped_column(JSONType)
    trips: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[datetime]
    expires_at: Mapped[datetime]
    issued_at: Mapped[datetime]
    token: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12))  # active | in_use | consumed | revoked
    entries: Mapped[int] = mapped_column(Integer, default=0)
    exits: Mapped[int] = mapped_column(Integer, default=0)
    application_id: Mapped[str | None] = mapped_column(String(36))
    revoked_at: Mapped[datetime | None]
    revoke_reason: Mapped[str | None] = mapped_column(String(512))
    updated_at: Mapped[datetime]


class PermitActivity(Base):
    """ENTRY or EXIT at the issuer's border, or a SIGHTING at another country's post. Never revoked or changed;
    the id is the recording node's, so copies on other nodes are the same row."""

    __tablename__ = "permit_activities"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    permit_id: Mapped[str] = mapped_column(String(40), index=True)
    activity: Mapped[str] = mapped_column(String(8))  # ENTRY | EXIT | SIGHTING
    office: Mapped[str] = mapped_column(String(8))
    country: Mapped[str] = mapped_column(String(2))
    at: Mapped[datetime]
    plate: Mapped[str] = mapped_column(String(20))
    recorded_by: Mapped[str] = mapped_column(String(2))
    recorded_at: Mapped[datetime]


class PermitAlert(Base):
    """A fraud sign: the same permit at two posts farther apart than a truck can travel in the time between."""

    __tablename__ = "permit_alerts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    permit_id: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(24))  # impossible-travel
    detail: Mapped[str] = mapped_column(String(512))
    activity_ids: Mapped[list[str]] = mapped_column(JSONType)
    raised_at: Mapped[datetime]


class PermitApplication(Base):
    """One application by a carrier's authority at its own node, for everything its route needs."""

    __tablename__ = "permit_applications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    carrier_id: Mapped[str] = mapped_column(String(35), index=True)
    carrier_name: Mapped[str] = mapped_column(String(70))
    carrier_country: Mapped[str] = mapped_column(String(2))
    plate: Mapped[str] = mapped_column(String(20))
    trailer_plate: Mapped[str | None] = mapped_column(String(20))
    route: Mapped[list[str]] = mapped_column(JSONType)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    trips: Mapped[int] = mapped_column(Integer)
    client_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime]


class PermitRequest(Base):
    """One country's part of an application: not required (and why), requested, issued or refused (and why)."""

    __tablename__ = "permit_requests"

    application_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(12))  # not-required | requested | issued | refused
    permit_id: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(String(512))
    details: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]
