"""Units of work: the one place that commits.

Right before `COMMIT`, a unit of work runs the sealers registered with it: the protocol's (`protocol/sealing.py`)
turns what the transaction queued (outbound messages, log entries) into signed rows, so a domain change, the
messages it causes and their log entries land together or not at all. Services only `flush()`. The sealers are
handed in from above, so `db` knows neither the protocol nor any feature.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

_AFTER_COMMIT = "tw_after_commit"


class SessionSource(Protocol):
    """What a unit of work needs of a node: its sessions (sealers get the node itself, whatever it is)."""

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]: ...


Sealer = Callable[[AsyncSession, Any], Awaitable[Callable[[], None] | None]]
"""Runs inside the transaction right before COMMIT; may return what to do once it has committed."""

_SEALERS: list[Sealer] = []


TRANSACTION_SCOPED = "tw_txn_"
"""`session.info` keys starting so hold what one transaction holds (the locks it took): forgotten when it ends, and
kept as lists so a savepoint rolled back forgets what was added inside it (`savepoint`)."""


@event.listens_for(Session, "after_transaction_end")
def _forget_transaction_scoped(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        for key in [key for key in session.info if isinstance(key, str) and key.startswith(TRANSACTION_SCOPED)]:
            del session.info[key]


def register_sealer(sealer: Sealer, *, first: bool = False) -> None:
    """`first`: before those registered so far (a feature's rows written before the protocol's sealer takes the
    log-head lock, which is then held to the COMMIT)."""
    if sealer not in _SEALERS:
        _SEALERS.insert(0 if first else len(_SEALERS), sealer)


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once this session's transaction has committed (e.g. to swap an in-memory trust list)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


async def commit(session: AsyncSession, node: Any) -> None:
    committed = [done for sealer in _SEALERS if (done := await sealer(session, node)) is not None]
    await session.commit()
    for callback in [*committed, *session.info.pop(_AFTER_COMMIT, [])]:
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


_NOTHING_DONE = "tw_nothing_done"


def nothing_done(session: AsyncSession) -> None:
    """End this unit of work without a COMMIT: it only read and found nothing to do (an idle poll of a queue), so
    it costs the database no commit. Anything it did write is rolled back."""
    session.info[_NOTHING_DONE] = True


@asynccontextmanager
async def unit_of_work(node: SessionSource) -> AsyncIterator[AsyncSession]:
    session = node.sessionmaker()
    try:
        yield session
        if session.info.get(_NOTHING_DONE):
            await session.rollback()
        else:
            await commit(session, node)
    except BaseException:
        await session.rollback()
        raise
    finally:
        session.info.clear()
        await session.close()
