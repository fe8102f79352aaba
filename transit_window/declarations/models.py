"""Tables of transit movements. Every node on a route holds the movement; `role` says whether this node is its
office of departure (the owner, which alone writes it off) or a country on its route."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, get_args

from sqlalchemy import BigInteger, Date, Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from transit_window.db.base import Base, JSONType

MovementStatus = Literal["accepted", "released", "in_transit", "arrived", "closed", "cancelled"]
MOVEMENT_STATUSES: tuple[str, ...] = get_args(MovementStatus)


class Movement(Base):
    __tablename__ = "movements"
    __table_args__ = (
        Index("ix_movements_status_departure", "status", "departure_office"),
        Index("ix_movements_role_status", "role", "status"),
    )

    mrn: Mapped[str] = mapped_column(String(18), primary_key=True)
    role: Mapped[str] = mapped_column(String(12))  # departure | route
    status: Mapped[str] = mapped_column(String(16))
    departure_country: Mapped[str] = mapped_column(String(2))
    departure_office: Mapped[str] = mapped_column(String(8))
    destination_office: Mapped[str] = mapped_column(String(8))
    countries: Mapped[list[str]] = mapped_column(JSONType)
    offices: Mapped[list[str]] = mapped_column(JSONType)
    record: Mapped[dict[str, Any]]  # the declaration as accepted: what `transit.anticipated` carries
    grn: Mapped[str | None] = mapped_column(String(24))
    guarantee_amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 3))
    guarantee_currency: Mapped[str | None] = mapped_column(String(3))
    limit_date: Mapped[date] = mapped_column(Date)
    client_id: Mapped[str | None] = mapped_column(String(36))
    declarant_id: Mapped[str] = mapped_column(String(35))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class MovementOffice(Base):
    """The offices on a route movement's itinerary, one row each: `GET /v1/movements/expected` finds a post's
    movements with one indexed query a page, rather than reading every released movement to look in its JSON."""

    __tablename__ = "movement_offices"

    office: Mapped[str] = mapped_column(String(8), primary_key=True)
    mrn: Mapped[str] = mapped_column(String(18), primary_key=True)


class MovementStep(Base):
    """One fact of a movement's journey, as signed by the country that recorded it. Append-only."""

    __tablename__ = "movement_steps"
    __table_args__ = (UniqueConstraint("mrn", "kind", "office"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mrn: Mapped[str] = mapped_column(String(18), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # released, exit, entry, arrived, control-results, closed, cancelled
    office: Mapped[str] = mapped_column(String(8))
    country: Mapped[str] = mapped_column(String(2))
    at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    signed_by: Mapped[str] = mapped_column(String(2))
    envelope_id: Mapped[str | None] = mapped_column(String(36))
    details: Mapped[dict[str, Any]]


class PendingStep(Base):
    """A step that arrived before the movement's record: kept, applied when the record comes."""

    __tablename__ = "pending_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mrn: Mapped[str] = mapped_column(String(18), index=True)
    source: Mapped[str] = mapped_column(String(8))  # local | message
    message_type: Mapped[str] = mapped_column(String(40))
    body: Mapped[dict[str, Any]]
    signed_by: Mapped[str] = mapped_column(String(2))
    envelope_id: Mapped[str | None] = mapped_column(String(36))
    received_at: Mapped[datetime]
    requested_at: Mapped[datetime | None]


class Guarantee(Base):
    """A guarantee's reference amount and what open movements have reserved of it (NCTS GMS).

    It belongs to its holder: a declaration may name it only when the declarant is the holder or holds one of the
    holder's authorisations (`GuaranteeAuthorisation`). `client_id` is the customs client that registered it (the
    guarantee office's system), which may manage those authorisations for the holder; None for guarantees
    registered before it was recorded."""

    __tablename__ = "guarantees"

    grn: Mapped[str] = mapped_column(String(24), primary_key=True)
    holder_id: Mapped[str] = mapped_column(String(35))
    holder_country: Mapped[str] = mapped_column(String(2))
    reference_amount: Mapped[Decimal] = mapped_column(Numeric(18, 3))
    reserved: Mapped[Decimal] = mapped_column(Numeric(18, 3))
    currency: Mapped[str] = mapped_column(String(3))
    client_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime]


class GuaranteeAuthorisation(Base):
    """The holder lets another declarant use its guarantee, as with NCTS's guarantee access code.

    Only the SHA-256 of the access code is kept: the code is shown once, when the authorisation is made, and the
    declarant must quote it in each declaration that names the guarantee. A revoked authorisation is kept (who was
    allowed when) and no longer lets a declaration be lodged or released."""

    __tablename__ = "guarantee_authorisations"
    __table_args__ = (Index("ix_guarantee_authorisations_grn_declarant", "grn", "declarant_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    grn: Mapped[str] = mapped_column(String(24))
    declarant_id: Mapped[str] = mapped_column(String(35))
    declarant_country: Mapped[str] = mapped_column(String(2))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(36))  # the API client that made it
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(36))


class IdempotencyRecord(Base):
    """The first answer to a request with an `Idempotency-Key`, replayed for every retry of it."""

    __tablename__ = "idempotency_records"

    client_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class MrnCounter(Base):
    """Per year serials for MRNs on SQLite; PostgreSQL uses the `mrn_serial` sequence (no row lock)."""

    __tablename__ = "mrn_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger)
