"""Units of work: the one place that commits.

A unit of work seals what the transaction queued (outbound messages, log entries) right before `COMMIT`, so a
domain change, the messages it causes and their log entries land together or not at all. Services only `flush()`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from transit_window.protocol import log, outbox, wakeup

if TYPE_CHECKING:
    from transit_window.node import Node

_AFTER_COMMIT = "tw_after_commit"


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once this session's transaction has committed (e.g. to swap an in-memory trust list)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


async def commit(session: AsyncSession, node: Node) -> None:
    if outbox.has_pending(session) or log.has_pending(session):
        size, head = await log.lock_head(session)
        sent = await outbox.seal_pending(session, node)
        await log.append_pending(session, size=size, head=head)
        if sent and wakeup.notifies(node):
            await wakeup.notify(session)
        await session.commit()
        if sent:
            node.wake_worker()
            node.metrics.messages_enqueued.inc(len(sent))
    else:
        await session.commit()
    for callback in session.info.pop(_AFTER_COMMIT, []):
        callback()


@asynccontextmanager
async def savepoint(session: AsyncSession) -> AsyncIterator[None]:
    """A nested transaction that also forgets the messages and log entries queued inside it when it rolls back."""
    saved = {key: list(value) for key, value in session.info.items() if isinstance(value, list)}
    try:
        async with session.begin_nested():
            yield
    except BaseException:
        for key in [key for key, value in session.info.items() if isinstance(value, list) and key not in saved]:
            del session.info[key]
        session.info.update(saved)
        raise


@asynccontextmanager
async def unit_of_work(node: Node) -> AsyncIterator[AsyncSession]:
    session = node.sessionmaker()
    try:
        yield session
        await commit(session, node)
    except BaseException:
        await session.rollback()
        raise
    finally:
        session.info.clear()
        await session.close()


@event.listens_for(Session, "before_commit")
def _refuse_unsealed(session: Session, *_: Any) -> None:
    """A safety net: a bare `session.commit()` with queued messages would silently drop them."""
    if session.in_nested_transaction():
        return  # releasing a savepoint; the outer commit seals
    if session.info.get("tw_outbox_pending") or session.info.get("tw_log_pending"):
        raise RuntimeError("commit through transit_window.db.session.commit(); messages or log entries are queued")
