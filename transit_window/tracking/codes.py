"""Public tracking codes: 160 random bits, URL-safe, one active per movement, rotatable."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from transit_window import clock
from transit_window.tracking.models import TrackingCode

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


def new_code() -> str:
    return secrets.token_urlsafe(20)  # 160 bits


async def issue(session: AsyncSession, *, mrn: str) -> str:
    """Deactivate any active code of `mrn` and issue a new one."""
    await session.execute(update(TrackingCode).where(TrackingCode.mrn == mrn).values(active=False))
    code = new_code()
    session.add(TrackingCode(code=code, mrn=mrn, active=True, created_at=clock.utcnow()))
    await session.flush()
    return code


async def active_code(session: AsyncSession, *, mrn: str) -> str | None:
    return await session.scalar(select(TrackingCode.code).where(TrackingCode.mrn == mrn, TrackingCode.active))


async def active_codes(session: AsyncSession, *, mrns: list[str]) -> dict[str, str]:
    """The active codes of a page of movements in one query (those that have one)."""
    if not mrns:
        return {}
    rows = await session.execute(
        select(TrackingCode.mrn, TrackingCode.code).where(TrackingCode.mrn.in_(mrns), TrackingCode.active)
    )
    return {str(mrn): str(code) for mrn, code in rows}


async def mrn_of(session: AsyncSession, code: str) -> str | None:
    return await session.scalar(select(TrackingCode.mrn).where(TrackingCode.code == code, TrackingCode.active))
