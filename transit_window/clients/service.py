"""Creating, listing, revoking and authenticating API clients."""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from transit_window import clock
from transit_window.clients.cache import CHANNEL
from transit_window.clients.models import ApiClient
from transit_window.db.dialect import dialect_of
from transit_window.errors import NotFound
from transit_window.ids import new_id

Role = Literal["customs", "permits", "forwarder", "device", "admin"]
ROLES: tuple[Role, ...] = ("customs", "permits", "forwarder", "device", "admin")
TOKEN_PREFIX = "tw_"  # noqa: S105 - a prefix that makes leaked tokens greppable, not a secret


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def add_client(
    session: AsyncSession, *, name: str, role: Role, party_id: str | None = None
) -> tuple[ApiClient, str]:
    """Create a client; returns it and its token, which is shown this once and stored only as a hash."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)  # 256 random bits
    client = ApiClient(
        id=new_id(),
        name=name,
        role=role,
        party_id=party_id,
        token_hash=hash_token(token),
        created_at=clock.utcnow(),
        revoked_at=None,
    )
    session.add(client)
    await session.flush()
    return client, token


async def add_role_clients(
    session: AsyncSession, *, name: str, roles: tuple[Role, ...] = ROLES, forwarder_party: str | None = None
) -> dict[Role, tuple[ApiClient, str]]:
    """One client per role (a demo's or a test corridor's set), named `name` with `{role}` replaced; the forwarder acts
    for `forwarder_party`. Returns each role's client and its token, shown this once like `add_client`'s."""
    made: dict[Role, tuple[ApiClient, str]] = {}
    for role in roles:
        party = forwarder_party if role == "forwarder" else None
        made[role] = await add_client(session, name=name.replace("{role}", role), role=role, party_id=party)
    return made


async def list_clients(session: AsyncSession) -> list[ApiClient]:
    return list((await session.scalars(select(ApiClient).order_by(ApiClient.created_at))).all())


async def revoke_client(session: AsyncSession, *, client_id: str) -> ApiClient:
    """Revoke; on PostgreSQL every process of the node forgets the client when this commits (clients/cache.py)."""
    client = await session.get(ApiClient, client_id)
    if client is None:
        raise NotFound(f"no client {client_id}")
    if client.revoked_at is None:
        client.revoked_at = clock.utcnow()
    await session.flush()
    if dialect_of(session).notifications:
        await session.execute(select(func.pg_notify(CHANNEL, client.id)))  # sent at commit, and only then
    return client


async def authenticate(session: AsyncSession, token: str) -> ApiClient | None:
    """Look the token up by its SHA-256. The lookup is by hash, so timing reveals nothing about the token."""
    client = await session.scalar(select(ApiClient).where(ApiClient.token_hash == hash_token(token)))
    if client is None or client.revoked_at is not None:
        return None
    return client
