"""Tables of the protocol layer. Rows are written with Core statements on the hot paths (see `unit_of_work`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from transit_window.db.base import Base


class TrustVersion(Base):
    """Every trust-list version this node accepted, as the exact JSON document; the highest is current."""

    __tablename__ = "trust_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sha256: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(40))
    accepted_at: Mapped[datetime]


OutboxState = Literal["pending", "delivered", "rejected", "dead"]
OUTBOX_STATES: tuple[str, ...] = get_args(OutboxState)


class OutboxMessage(Base):
    """A signed message to one peer and its delivery state: pending → delivered | rejected | dead."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("peer", "seq"),
        Index("ix_outbox_due", "state", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    peer: Mapped[str] = mapped_column(String(2))
    seq: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str | None] = mapped_column(String(200))
    token: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    queued_at: Mapped[datetime]  # created_at, or the last manual retry: dead-lettering counts from here
    next_attempt_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    receipt: Mapped[str | None] = mapped_column(Text)
    receipt_status: Mapped[str | None] = mapped_column(String(16))
    receipt_code: Mapped[str | None] = mapped_column(String(8))
    receipt_detail: Mapped[str | None] = mapped_column(Text)


class OutboundSequence(Base):
    __tablename__ = "outbound_sequences"

    peer: Mapped[str] = mapped_column(String(2), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)


class InboxMessage(Base):
    """Every authentic message received, with the receipt this node signed for it (returned again on replay)."""

    __tablename__ = "inbox"
    __table_args__ = (Index("ix_inbox_iss_seq", "iss", "seq"),)

    iss: Mapped[str] = mapped_column(String(2), primary_key=True)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str | None] = mapped_column(String(200))
    token: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(8))
    detail: Mapped[str | None] = mapped_column(Text)
    receipt: Mapped[str] = mapped_column(Text)


class InboundSequence(Base):
    """Per sender: every seq up to `contiguous` has arrived; `max_seen` above it means a gap to pull."""

    __tablename__ = "inbound_sequences"

    peer: Mapped[str] = mapped_column(String(2), primary_key=True)
    contiguous: Mapped[int] = mapped_column(BigInteger)
    max_seen: Mapped[int] = mapped_column(BigInteger)
    gap_since: Mapped[datetime | None]


class LogEntry(Base):
    """Append-only, hash-chained: entry_hash = SHA-256(prev_hash || digest || direction || peer)."""

    __tablename__ = "log_entries"

    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    direction: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(8))
    peer: Mapped[str] = mapped_column(String(2))
    msg_id: Mapped[str] = mapped_column(String(36), index=True)
    digest: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class LogHead(Base):
    """The one row every appending transaction locks last: it serialises the chain without gaps."""

    __tablename__ = "log_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    head: Mapped[str] = mapped_column(String(64))


class Checkpoint(Base):
    """Signed log heads: this node's own, and those its peers sent it to witness.

    `signed_at` is the checkpoint's `at` exactly as its signer wrote it (served to peers byte for byte); `at` is the
    same instant as a timestamp, for this node's own arithmetic."""

    __tablename__ = "checkpoints"

    node: Mapped[str] = mapped_column(String(2), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    head: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    signed_at: Mapped[str] = mapped_column(String(40))
    token: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]


class WorkerHeartbeat(Base):
    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime]


ProposalState = Literal["open", "adopted", "superseded", "expired"]
PROPOSAL_STATES: tuple[str, ...] = get_args(ProposalState)


class TrustProposal(Base):
    """A proposed trust-list version and the signatures gathered for it so far (PROTOCOL.md §2, Governance).

    The id is the proposer's (UUIDv7), the same on every member's node; `document` is the JWS JSON document with
    every signature this node holds, its payload as the proposer signed it."""

    __tablename__ = "trust_proposals"
    __table_args__ = (Index("ix_trust_proposals_state_version", "state", "version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    base_version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    proposer: Mapped[str] = mapped_column(String(2))
    document: Mapped[str] = mapped_column(Text)
    difference: Mapped[str] = mapped_column(Text)  # JSON list of lines, computed from the base and proposed bodies
    objections: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of {node, reason, at}
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    closed_reason: Mapped[str | None] = mapped_column(Text)
    reminded_at: Mapped[datetime | None]  # when the chair last sent it again to the members it waits for
