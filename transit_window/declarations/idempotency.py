"""`Idempotency-Key` for POST requests: the first answer is stored with the change, and every retry of the same
request gets it again, never a second MRN. A key reused for a different request is refused."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from transit_window import clock
from transit_window.db.base import table_of
from transit_window.db.dialect import dialect_of
from transit_window.declarations.models import IdempotencyRecord
from transit_window.errors import FieldError, InvalidInput


@dataclass(frozen=True, slots=True)
class Stored:
    status_code: int
    response: dict[str, Any]


def request_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


async def claim(session: AsyncSession, *, client_id: str, key: str, raw_body: bytes) -> Stored | None:
    """Claim `key` for this request, or return the answer stored for it.

    The claim is a row inserted in the request's transaction: a concurrent request with the same key waits on
    the unique index until the first commits, then finds its answer."""
    if not key or len(key) > 100 or not key.isprintable():
        raise InvalidInput(
            "Idempotency-Key must be 1 to 100 printable characters, e.g. a UUID",
            errors=[FieldError("/header/Idempotency-Key", "1 to 100 printable characters", "12")],
        )
    digest = request_hash(raw_body)
    result = await session.execute(
        dialect_of(session)
        .insert_ignore(table_of(IdempotencyRecord), index_elements=["client_id", "key"])
        .values(
            client_id=client_id, key=key, request_hash=digest, status_code=0, response={}, created_at=clock.utcnow()
        )
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        return None
    record = await session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.client_id == client_id, IdempotencyRecord.key == key)
    )
    assert record is not None
    if record.request_hash != digest:
        raise InvalidInput(
            "this Idempotency-Key was already used for a different request; use a new key for a new declaration",
            errors=[FieldError("/header/Idempotency-Key", "reused for a different request body", "14")],
        )
    return Stored(status_code=record.status_code, response=record.response)


async def remember(
    session: AsyncSession, *, client_id: str, key: str, status_code: int, response: dict[str, Any]
) -> None:
    records = table_of(IdempotencyRecord)  # Core: the ORM's bulk-update bookkeeping costs ≈ 0.5 ms per request
    await session.execute(
        update(records)
        .where(records.c.client_id == client_id, records.c.key == key)
        .values(status_code=status_code, response=response)
    )
