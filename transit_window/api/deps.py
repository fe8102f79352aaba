"""`Annotated` dependency aliases, so routes read like sentences: `session: SessionDep, admin: AdminClient`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from transit_window.api.middleware import NO_STORE_MARK
from transit_window.clients.cache import KnownClient
from transit_window.clients.principal import Principal as Principal
from transit_window.clients.service import Role, authenticate, hash_token
from transit_window.db.session import unit_of_work
from transit_window.errors import Forbidden, NotAuthenticated
from transit_window.protocol.node import Node
from transit_window.protocol.peer_auth import verify_request


async def get_node(request: Request) -> Node:  # async: a sync dependency would hop through the thread pool
    node: Node = request.app.state.node
    return node


NodeDep = Annotated[Node, Depends(get_node)]


async def get_session(node: NodeDep) -> AsyncIterator[AsyncSession]:
    """The request's transaction: committed (with its queued messages) when the route returns, else rolled back."""
    async with unit_of_work(node) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def _known(node: Node, session: AsyncSession, token: str) -> KnownClient | None:
    """The client of a token: from the process's cache (clients/cache.py), else looked up by the token's hash."""
    token_hash = hash_token(token)
    if (known := node.clients.get(token_hash)) is not None:
        return known
    if not node.dialect.concurrent_writers:
        # SQLite's BEGIN IMMEDIATE would hold the write lock for the whole request, and routes that open their
        # own units of work (audit, checkpoints) would wait on it: authenticate in a short session of its own.
        async with node.sessionmaker() as own:
            client = await authenticate(own, token)
    else:
        client = await authenticate(session, token)  # PostgreSQL: the request's session, one checkout
    if client is None:
        return None
    known = KnownClient(id=client.id, name=client.name, role=client.role, party_id=client.party_id)
    node.clients.put(token_hash, known)
    return known


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    async def dependency(request: Request, node: NodeDep, session: SessionDep) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("send the client's token as: Authorization: Bearer <token>")
        client = await _known(node, session, token.strip())
        if client is None:
            # counted only now: a valid token is never throttled, whatever its address sent before (finding 13.3)
            node.bad_tokens.refuse_unknown(request.client.host if request.client else "unknown")
            raise NotAuthenticated("the token is unknown or revoked")
        if client.role not in roles:
            raise Forbidden(f"this needs the role {' or '.join(roles)}; the client has the role {client.role}")
        return Principal(
            client_id=client.id,
            name=client.name,
            role=client.role,
            party_id=client.party_id,
            country=node.id,
        )

    return dependency


AdminClient = Annotated[Principal, Depends(require("admin"))]


def request_target(request: Request) -> str:
    """The path and query as the client sent them (percent-encoding and parameter order untouched): what a signed
    request's `path` claim must equal. Starlette's `url.path` is decoded, so it is not used."""
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else request.url.path
    query = request.scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


async def verified_peer(request: Request, node: NodeDep) -> str:
    path = request_target(request)
    return verify_request(
        request.headers.get("authorization"),
        trust=node.trust,
        me=node.id,
        method=request.method,
        path=path,
        skew=timedelta(seconds=node.settings.clock_skew_seconds),
    )


VerifiedPeer = Annotated[str, Depends(verified_peer)]


async def carries_secret(request: Request) -> None:
    """Mark the request: its answer holds a secret or a token and must not be cached (`NoStore` middleware)."""
    setattr(request.state, NO_STORE_MARK, True)


SECRET_BEARING = [Depends(carries_secret)]  # `dependencies=SECRET_BEARING` on such a route
