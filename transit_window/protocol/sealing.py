"""The protocol's part of every commit: what a transaction queued (outbound messages, log entries) is signed and
appended to the tamper-evident log right before `COMMIT`, in the same transaction. Registered with the unit of
work (`db.session.register_sealer`) when this module is imported, which `protocol/node.py` does: no node, no commit
without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from transit_window.db.session import register_sealer
from transit_window.protocol import log, outbox, wakeup

if TYPE_CHECKING:
    from transit_window.protocol.node import Node


async def seal(session: AsyncSession, node: Node) -> Callable[[], None] | None:
    if not (outbox.has_pending(session) or log.has_pending(session)):
        return None
    size, head = await log.lock_head(session)
    sent, handed_over = await outbox.seal_pending(session, node)
    await log.append_pending(session, size=size, head=head)
    if not sent:
        return None
    if not handed_over and wakeup.notifies(node):
        await wakeup.notify(session)

    def wake() -> None:
        if not handed_over:  # this process's worker already has them: waking anyone would be an empty claim
            node.wake_worker()
        node.metrics.messages_enqueued.inc(len(sent))

    return wake


register_sealer(seal)


@event.listens_for(Session, "before_commit")
def _refuse_unsealed(session: Session, *_: Any) -> None:
    """A safety net: a bare `session.commit()` with queued messages would silently drop them."""
    if session.in_nested_transaction():
        return  # releasing a savepoint; the outer commit seals
    if session.info.get("tw_outbox_pending") or session.info.get("tw_log_pending"):
        raise RuntimeError("commit through transit_window.db.session.commit(); messages or log entries are queued")
