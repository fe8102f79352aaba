"""Filling sequence gaps: a receiver that saw seq N+2 before N+1 pulls N+1 from the sender.

The sender re-serves the exact stored JWS strings (`GET /v1/corridor/messages?to=&after_seq=`); the receiver runs
them through the same inbox as a push, so a pulled message is verified, applied once and receipted like any other.

A gap the sender cannot fill is closed: when it answers that it holds nothing after the receiver's contiguous mark,
the higher numbers the receiver saw were never in the sender's outbox (the conformance kit's pings, numbered from
10^9 on, or history the sender lost), and pulling again would only repeat the same empty answer every few seconds
for ever.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import func, select

from transit_window import clock
from transit_window.db.session import unit_of_work
from transit_window.protocol import inbox
from transit_window.protocol.models import InboundSequence, InboxMessage, OutboxMessage
from transit_window.protocol.peer_auth import PeerAuth

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.protocol.node import Node

logger = logging.getLogger(__name__)
PULL_LIMIT = 500


async def stored_messages_for(session: AsyncSession, *, peer: str, after_seq: int, limit: int) -> list[str]:
    rows = await session.scalars(
        select(OutboxMessage.token)
        .where(OutboxMessage.peer == peer, OutboxMessage.seq > after_seq)
        .order_by(OutboxMessage.seq)
        .limit(limit)
    )
    return list(rows.all())


async def gaps(node: Node) -> list[tuple[str, int]]:
    async with node.sessionmaker() as session:
        rows = await session.execute(
            select(InboundSequence.peer, InboundSequence.contiguous).where(
                InboundSequence.max_seen > InboundSequence.contiguous
            )
        )
        found = [(row.peer, int(row.contiguous)) for row in rows]
        node.metrics.gaps.set(len(found))
        return found


async def pull_from(node: Node, *, peer: str, after_seq: int) -> int:
    """Pull what `peer` holds for us after `after_seq` and apply it; returns how many messages came."""
    endpoint = node.endpoint_of(peer)
    if endpoint is None:
        return 0
    asked_at = clock.utcnow()
    response = await node.http.get(
        f"{endpoint}/v1/corridor/messages",
        params={"to": node.id, "after_seq": after_seq, "limit": PULL_LIMIT},
        auth=PeerAuth(key=node.key, iss=node.id, aud=peer),
    )
    response.raise_for_status()
    tokens = response.json()["messages"]
    if not tokens:
        await close_unfillable_gap(node, peer=peer, after_seq=after_seq, asked_at=asked_at)
        return 0
    verified = inbox.verify_all(node, tokens)
    async with unit_of_work(node) as session:
        await inbox.receive(session, node, verified)
    logger.info("pulled %d message(s) from %s after seq %d", len(tokens), peer, after_seq, extra={"peer": peer})
    return len(tokens)


async def close_unfillable_gap(node: Node, *, peer: str, after_seq: int, asked_at: datetime) -> None:
    """`peer` answered, at `asked_at` or later, that it holds nothing for us after `after_seq`: forget the numbers
    above it seen before the question (they are not the peer's sequence); those received since may be genuine."""
    async with unit_of_work(node) as session:
        statement = select(InboundSequence).where(InboundSequence.peer == peer).with_for_update()
        state = (await session.execute(statement)).scalar_one_or_none()
        if state is None or state.contiguous != after_seq or state.max_seen <= state.contiguous:
            return  # moved on meanwhile: the next round asks again
        since = await session.scalar(
            select(func.max(InboxMessage.seq)).where(
                InboxMessage.iss == peer, InboxMessage.seq > state.contiguous, InboxMessage.received_at >= asked_at
            )
        )
        logger.warning(
            "%s holds nothing for %s after seq %d, yet seq %d came: not its sequence (the conformance kit's pings, "
            "or history it lost); gap closed",
            peer,
            node.id,
            after_seq,
            state.max_seen,
            extra={"peer": peer, "node": node.id},
        )
        state.max_seen = max(state.contiguous, int(since or 0))
        if state.max_seen == state.contiguous:
            state.gap_since = None


async def fill_gaps(node: Node) -> int:
    pulled = 0
    for peer, contiguous in await gaps(node):
        try:
            pulled += await pull_from(node, peer=peer, after_seq=contiguous)
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            logger.warning("could not pull from %s: %s", peer, exc, extra={"peer": peer, "node": node.id})
        except inbox.ConcurrentDelivery:
            logger.info("pull from %s raced a delivery of the same messages; next round", peer, extra={"peer": peer})
    return pulled
