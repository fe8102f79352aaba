"""Certificates (phytosanitary, veterinary, origin) in the manner of the IPPC ePhyto hub: the issuing country's
row is the original; countries of the movements that reference it hold copies (`received_from`).

    issued ─→ replaced (by a new id) | withdrawn;   acknowledged by the importing country (on the issuer's copy too)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from transit_window.db.base import Base, JSONType


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("country", "type", "number"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # UUIDv7 given by the issuing node
    country: Mapped[str] = mapped_column(String(2))  # issuing country
    type: Mapped[str] = mapped_column(String(16))  # phytosanitary | veterinary | origin
    number: Mapped[str] = mapped_column(String(35))
    status: Mapped[str] = mapped_column(String(12))  # issued | replaced | withdrawn
    goods: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    consignor: Mapped[dict[str, Any]]
    consignee: Mapped[dict[str, Any]]
    destination_country: Mapped[str | None] = mapped_column(String(2))
    issued_at: Mapped[datetime]
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    replaces: Mapped[str | None] = mapped_column(String(36))
    replaced_by: Mapped[str | None] = mapped_column(String(36))
    withdrawn_at: Mapped[datetime | None]
    withdraw_reason: Mapped[str | None] = mapped_column(String(512))
    received_from: Mapped[str | None] = mapped_column(String(2))  # None: issued at this node
    client_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DocumentShare(Base):
    """Which countries a document was sent to, and whether the importing authority acknowledged it."""

    __tablename__ = "document_shares"

    document_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    shared_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]


class DocumentFile(Base):
    """The attached PDF, kept apart so listing documents never loads it."""

    __tablename__ = "document_files"

    document_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_at: Mapped[datetime]
