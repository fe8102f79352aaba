"""Filling sequence gaps: a receiver that saw seq N+2 before N+1 pulls N+1 from the sender.

The sender re-serves the exact stored JWS strings (`GET /v1/corridor/messages?to=&after_seq=`); the receiver runs
them through the same inbox as a push, so a pulled message is verified, applied once and receipted like any other.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import select

from transit_window.db.session import unit_of_work
from transit_window.protocol import inbox
from transit_window.protocol.models import InboundSequence, OutboxMessage
from transit_window.protocol.peer_auth import PeerAuth

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.node import Node

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
    response = await node.http.get(
        f"{endpoint}/v1/corridor/messages",
        params={"to": node.id, "after_seq": after_seq, "limit": PULL_LIMIT},
        auth=PeerAuth(key=node.key, iss=node.id, aud=peer),
    )
    response.raise_for_status()
    tokens = response.json()["messages"]
    if not tokens:
        return 0
    verified = inbox.verify_all(node, tokens)
    async with unit_of_work(node) as session:
        await inbox.receive(session, node, verified)
    logger.info("pulled %d message(s) from %s after seq %d", len(tokens), peer, after_seq, extra={"peer": peer})
    return len(tokens)


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
