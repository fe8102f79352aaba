"""Advisory locks on names (db/locks.py): a name the transaction holds costs no second statement, and what one
transaction held is never taken for held by the next, nor what a rolled-back savepoint took."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from tests.support import databases
from tests.support.statements import counting
from transit_window.db.locks import lock_names
from transit_window.db.session import savepoint


@pytest.fixture
async def session() -> AsyncIterator[AsyncSession]:
    databases.require_postgres()
    engine = create_async_engine(databases.postgres_admin_url())
    try:
        async with AsyncSession(engine) as session:
            yield session
    finally:
        await engine.dispose()


async def _statements(session: AsyncSession, names: list[str]) -> int:
    bind = session.bind
    with counting({"db": bind}) as tally:  # type: ignore[dict-item]
        await lock_names(session, names)
    return tally["db"].statements


async def test_a_held_name_is_not_locked_twice_and_the_next_transaction_locks_again(session: AsyncSession) -> None:
    assert await _statements(session, ["26KZ0000000000001", "permit-1"]) == 1
    assert await _statements(session, ["permit-1"]) == 0
    assert await _statements(session, ["permit-1", "permit-2"]) == 1
    await session.commit()
    assert await _statements(session, ["permit-1"]) == 1  # a new transaction holds nothing yet
    await session.rollback()
    assert await _statements(session, ["permit-1"]) == 1


async def test_a_name_locked_in_a_rolled_back_savepoint_is_locked_again(session: AsyncSession) -> None:
    async def refused() -> None:
        async with savepoint(session):
            await lock_names(session, ["permit-3"])
            raise RuntimeError("the message is refused")

    with pytest.raises(RuntimeError):
        await refused()
    assert await _statements(session, ["permit-3"]) == 1
    await session.rollback()
