"""Many rows in one statement (db/bulk.py), on both dialects: what goes in comes back, a column NULL in every row
included (PostgreSQL types such a VALUES column as text), and rows not listed left as they were."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from tests.support import databases
from tests.support.statements import counting
from transit_window.db.bulk import insert_rows, update_rows

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
