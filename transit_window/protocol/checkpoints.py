"""Signed checkpoints of this node's log, sent to every peer to witness (Certificate Transparency's idea)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import orjson
from sqlalchemy import select

from transit_window import clock
from transit_window.db.base import table_of
from transit_window.db.dialect import dialect_of
from transit_window.db.session import unit_of_work
from transit_window.protocol import jws, outbox
from transit_window.protocol.corridor_messages import CheckpointBody
from transit_window.protocol.models import Checkpoint, LogHead

if TYPE_CHECKING:
    from transit_window.protocol.node import Node

logger = logging.getLogger(__name__)
CHECKPOINT_TYP = "dtc-checkpoint+jws"


async def checkpoint_due(node: Node, *, force: bool = False) -> bool:
    """Sign and publish a checkpoint when N entries or T seconds passed since the last one (and the log grew)."""
    settings = node.settings
    async with node.sessionmaker() as session:
        head = (await session.execute(select(LogHead.size, LogHead.head).where(LogHead.id == 1))).one()
        last = (
            await session.execute(
                select(Checkpoint.size, Checkpoint.at)
                .where(Checkpoint.node == node.id)
                .order_by(Checkpoint.size.desc())
                .limit(1)
            )
        ).one_or_none()
    node.metrics.log_size.set(head.size)
    if head.size == 0 or (last is not None and last.size >= head.size):
        return False
    now = clock.utcnow()
    grown = head.size - (last.size if last else 0)
    age = (now - last.at).total_seconds() if last else float("inf")
    if not force and grown < settings.checkpoint_every_entries and age < settings.checkpoint_every_seconds:
        return False
    return await publish(node, size=int(head.size), head=str(head.head))


async def publish(node: Node, *, size: int, head: str) -> bool:
    """Keep and send the checkpoint of `size`; False when another loop or process of this node already did (the
    periodic loop, an operator's forced checkpoint and other worker processes may all reach the same size)."""
    now = clock.utcnow()
    at = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the corridor's times have milliseconds
    body = CheckpointBody(node=node.id, size=size, head=head, at=at)
    signed = body.model_dump(mode="json")  # what this token signs is what the peers' envelopes carry
    token = jws.sign_compact(orjson.dumps(signed), key=node.key, typ=CHECKPOINT_TYP)
    async with unit_of_work(node) as session:
        kept = await session.execute(
            dialect_of(session)
            .insert_ignore(table_of(Checkpoint), index_elements=["node", "size"])
            .values(node=node.id, size=size, head=head, at=at, signed_at=signed["at"], token=token, received_at=now)
        )
        if kept.rowcount == 0:  # type: ignore[attr-defined]
            return False
        for peer in node.peers():
            outbox.enqueue(session, to=peer, message_type="corridor.checkpoint", body=body, subject=f"log:{node.id}")
    logger.info("checkpoint at size %d", size, extra={"node": node.id})
    return True
