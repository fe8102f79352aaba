"""Many rows in one statement (db/bulk.py), on both dialects: what goes in comes back, a column NULL in every row
included (PostgreSQL types such a VALUES column as text), and rows not listed left as they were."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from tests.support import databases
from tests.support.statements import counting
from transit_window.db.bulk import insert_rows, insert_rows_with, update_rows
from transit_window.db.dialect import dialect_of

ROWS = Table(
    "bulk_rows_test", MetaData(), Column("id", String, primary_key=True), Column("n", Integer), Column("s", String)
)


@pytest.fixture(params=databases.DIALECTS)
async def session(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[AsyncSession]:
    if request.param == "postgresql":
        databases.require_postgres()
        url = databases.postgres_admin_url()
    else:
        url = "sqlite+aiosqlite://"
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(ROWS.metadata.drop_all)
        await connection.run_sync(ROWS.metadata.create_all)
    try:
        async with AsyncSession(engine) as session:
            yield session
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(ROWS.metadata.drop_all)
        await engine.dispose()


async def test_rows_go_in_and_change_in_one_statement_each(session: AsyncSession) -> None:
    rows = [{"id": f"r{index:03d}", "n": index, "s": "new"} for index in range(120)]
    with counting({"db": session.bind}) as tally:  # type: ignore[dict-item]
        await insert_rows(session, ROWS, rows)
        await update_rows(
            session,
            ROWS,
            [{"id": row["id"], "n": None} for row in rows[60:]],
            key="id",
            columns=["n"],
            fixed={"s": "seen"},
        )
    assert tally["db"].statements == 2, tally["db"]
    stored = (await session.execute(select(ROWS.c.id, ROWS.c.n, ROWS.c.s).order_by(ROWS.c.id))).all()
    assert [(n, s) for _, n, s in stored] == [(i, "new") for i in range(60)] + [(None, "seen")] * 60
    await session.rollback()


HEAD = Table("bulk_head_test", ROWS.metadata, Column("id", Integer, primary_key=True), Column("size", Integer))


async def test_rows_and_the_statement_after_them_in_one_round_trip_where_the_database_can(
    session: AsyncSession,
) -> None:
    """A log append and its head (protocol/log.py): one statement on PostgreSQL, two on SQLite, the same rows."""
    await session.execute(HEAD.insert().values(id=1, size=0))
    rows = [{"id": f"e{index:03d}", "n": index, "s": "entry"} for index in range(40)]
    with counting({"db": session.bind}) as tally:  # type: ignore[dict-item]
        await insert_rows_with(session, ROWS, rows, then=HEAD.update().where(HEAD.c.id == 1).values(size=40))
    assert tally["db"].statements == (1 if dialect_of(session).writes_in_with else 2), tally["db"]
    assert (await session.scalar(select(HEAD.c.size))) == 40
    stored = (await session.execute(select(ROWS.c.n).order_by(ROWS.c.id))).scalars().all()
    assert stored == list(range(40))
    await session.rollback()
