"""`audit verify`: recompute the log chain, check it against the stored messages, this node's own signed
checkpoints, and the checkpoints its peers witnessed. Reports the first entry that does not match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import select

from transit_window.protocol import jws
from transit_window.protocol.corridor_messages import CheckpointBody
from transit_window.protocol.envelope import digest_of
from transit_window.protocol.log import GENESIS_HASH, chain
from transit_window.protocol.models import Checkpoint, InboxMessage, LogEntry, LogHead, OutboxMessage
from transit_window.protocol.peer_auth import PeerAuth

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.protocol.node import Node

BATCH = 5000


@dataclass(slots=True)
class AuditReport:
    node: str
    size: int = 0
    head: str = GENESIS_HASH
    problems: list[str] = field(default_factory=list)
    first_bad_position: int | None = None
    own_checkpoints: int = 0
    witnessed: dict[str, int] = field(default_factory=dict)
    unreachable: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, message: str, *, position: int | None = None) -> None:
        self.problems.append(message)
        if position is not None and (self.first_bad_position is None or position < self.first_bad_position):
            self.first_bad_position = position

    def as_dict(self) -> dict[str, object]:
        return {
            "node": self.node,
            "ok": self.ok,
            "size": self.size,
            "head": self.head,
            "first_bad_position": self.first_bad_position,
            "problems": self.problems,
            "own_checkpoints": self.own_checkpoints,
            "witnessed": self.witnessed,
            "unreachable": self.unreachable,
        }


async def verify_log(session: AsyncSession, *, node_id: str) -> tuple[AuditReport, dict[int, str]]:
    """Walk the chain; returns the report and the recomputed hash at every position (for checkpoint checks)."""
    report = AuditReport(node=node_id)
    recomputed: dict[int, str] = {}
    prev = GENESIS_HASH
    expected_position = 1
    last_position = 0
    while True:
        entries = (
            await session.scalars(
                select(LogEntry).where(LogEntry.position > last_position).order_by(LogEntry.position).limit(BATCH)
            )
        ).all()
        if not entries:
            break
        stored = await _stored_digests(session, entries)
        for entry in entries:
            if entry.position != expected_position:
                report.fail(
                    f"entry {expected_position} is missing (next is {entry.position})",
                    position=expected_position,
                )
                expected_position = entry.position
            if entry.prev_hash != prev:
                report.fail(
                    f"entry {entry.position}: prev_hash does not link to entry {entry.position - 1}",
                    position=entry.position,
                )
            computed = chain(prev, digest=entry.digest, direction=entry.direction, peer=entry.peer)
            if computed != entry.entry_hash:
                report.fail(f"entry {entry.position}: entry_hash does not match its content", position=entry.position)
            original = stored.get((entry.direction, entry.kind, entry.msg_id))
            if original is not None and original != entry.digest:
                report.fail(
                    f"entry {entry.position}: digest differs from the stored {entry.kind} {entry.msg_id}",
                    position=entry.position,
                )
            prev = computed
            recomputed[entry.position] = computed
            last_position = entry.position
            expected_position = entry.position + 1
    report.size = last_position
    report.head = prev
    head = (await session.execute(select(LogHead.size, LogHead.head).where(LogHead.id == 1))).one()
    if head.size != report.size or head.head != report.head:
        report.fail(f"log head says size {head.size}, the chain recomputes to size {report.size} with another head")
    return report, recomputed


async def _stored_digests(session: AsyncSession, entries: Sequence[LogEntry]) -> dict[tuple[str, str, str], str]:
    """The digests of the messages and receipts the entries refer to, recomputed from the stored JWS."""
    ids = list({entry.msg_id for entry in entries})
    found: dict[tuple[str, str, str], str] = {}
    for row in await session.execute(
        select(OutboxMessage.id, OutboxMessage.token, OutboxMessage.receipt).where(OutboxMessage.id.in_(ids))
    ):
        found[("sent", "envelope", row.id)] = digest_of(row.token)
        if row.receipt:
            found[("received", "receipt", row.id)] = digest_of(row.receipt)
    for row in await session.execute(
        select(InboxMessage.id, InboxMessage.token, InboxMessage.receipt).where(InboxMessage.id.in_(ids))
    ):
        found[("received", "envelope", row.id)] = digest_of(row.token)
        if row.receipt:
            found[("sent", "receipt", row.id)] = digest_of(row.receipt)
    return found


def check_checkpoint(report: AuditReport, recomputed: dict[int, str], *, size: int, head: str, who: str) -> bool:
    if size > report.size:
        report.fail(
            f"{who} holds a checkpoint at size {size}, beyond the log's {report.size} entries: entries were removed"
        )
        return False
    if recomputed.get(size) != head:
        report.fail(f"{who} holds a checkpoint at size {size} whose head does not match the log", position=size)
        return False
    return True


async def verify(node: Node, *, ask_peers: bool = True) -> AuditReport:
    async with node.sessionmaker() as session:
        report, recomputed = await verify_log(session, node_id=node.id)
        own = (
            (await session.execute(select(Checkpoint).where(Checkpoint.node == node.id).order_by(Checkpoint.size)))
            .scalars()
            .all()
        )
    for checkpoint in own:
        report.own_checkpoints += 1
        try:
            header, _ = jws.peek_compact(checkpoint.token)
            entry = node.trust.key(str(header.get("kid")))
            if entry is None or entry.node != node.id:
                raise jws.SignatureError("signed by a key that is not this node's")
            payload = CheckpointBody.model_validate_json(jws.verify_compact(checkpoint.token, key=entry.verifier))
        except (jws.JWSError, jws.SignatureError, ValueError):
            report.fail(f"own checkpoint at size {checkpoint.size} has a bad signature", position=checkpoint.size)
            continue
        if payload.size != checkpoint.size or payload.head != checkpoint.head:
            report.fail(f"own checkpoint row at size {checkpoint.size} differs from what was signed")
            continue
        check_checkpoint(report, recomputed, size=checkpoint.size, head=checkpoint.head, who="this node")
    if ask_peers:
        for peer in node.peers():
            endpoint = node.endpoint_of(peer)
            try:
                response = await node.http.get(
                    f"{endpoint}/v1/corridor/checkpoints",
                    params={"node": node.id},
                    auth=PeerAuth(key=node.key, iss=node.id, aud=peer),
                )
                response.raise_for_status()
                witnessed = response.json()["checkpoints"]
            except (httpx.HTTPError, KeyError, ValueError):
                report.unreachable.append(peer)
                continue
            count = 0
            for item in witnessed:
                count += 1
                check_checkpoint(report, recomputed, size=int(item["size"]), head=str(item["head"]), who=peer)
            report.witnessed[peer] = count
    return report
