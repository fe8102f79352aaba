"""The one dialect switch: chosen from the session's bind without a round trip, and what it leaves to SQLAlchemy."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

import transit_window
from transit_window.db.dialect import POSTGRESQL, SQLITE, dialect_of, dialect_of_engine, named

ROWS = Table("rows", MetaData(), Column("id", Integer, primary_key=True), Column("name", String))


async def test_a_session_knows_its_dialect_without_asking_the_database() -> None:
    # Nothing listens on port 9: reading the dialect must not connect.
    for url, expected in (
        ("postgresql+asyncpg://nobody@127.0.0.1:9/none", POSTGRESQL),
        ("sqlite+aiosqlite:///:memory:", SQLITE),
    ):
        engine = create_async_engine(url)
        try:
            async with AsyncSession(engine) as session:
                assert dialect_of(session) is expected
            assert dialect_of_engine(engine) is expected
        finally:
            await engine.dispose()


def test_row_locks_need_no_switch_sqlite_renders_no_for_update() -> None:
    """Why the protocol writes `.with_for_update(...)` unconditionally: SQLite's compiler drops the clause (its
    `BEGIN IMMEDIATE` already runs one writer at a time), PostgreSQL's renders it."""
    claim = select(ROWS.c.id).where(ROWS.c.name == "x").limit(5).with_for_update(skip_locked=True, of=ROWS)
    assert str(claim.compile(dialect=postgresql.dialect())).endswith("FOR UPDATE OF rows SKIP LOCKED")
    assert "FOR UPDATE" not in str(claim.compile(dialect=sqlite.dialect()))
    assert "FOR UPDATE" not in str(select(ROWS).with_for_update().compile(dialect=sqlite.dialect()))


@pytest.mark.parametrize(("name", "compiler"), [("postgresql", postgresql.dialect()), ("sqlite", sqlite.dialect())])
def test_insert_ignore_and_upsert_on_both(name: str, compiler: Dialect) -> None:
    chosen = named(name)
    statement = chosen.insert_ignore(ROWS, index_elements=["id"]).values(id=1, name="x")
    assert str(statement.compile(dialect=compiler)).endswith("ON CONFLICT (id) DO NOTHING")
    upsert = chosen.insert(ROWS)
    upsert = upsert.on_conflict_do_update(index_elements=["id"], set_={"name": upsert.excluded.name})
    assert "ON CONFLICT (id) DO UPDATE SET name = excluded.name" in str(upsert.compile(dialect=compiler))


def test_capabilities_differ_only_where_the_databases_do() -> None:
    assert (POSTGRESQL.concurrent_writers, SQLITE.concurrent_writers) == (True, False)
    assert (POSTGRESQL.advisory_locks, SQLITE.advisory_locks) == (True, False)
    assert (POSTGRESQL.notifications, SQLITE.notifications) == (True, False)
    assert (POSTGRESQL.sequences, SQLITE.sequences) == (True, False)
    assert (POSTGRESQL.arrays, SQLITE.arrays) == (True, False)
    assert (POSTGRESQL.named_values, SQLITE.named_values) == (True, False)
    assert (POSTGRESQL.writes_in_with, SQLITE.writes_in_with) == (True, False)
    with pytest.raises(ValueError, match="PostgreSQL or SQLite"):
        named("mysql")


def test_only_the_dialect_switch_reads_the_dialects_name() -> None:
    """One switch, chosen once per engine (issue 15 counted 29 `dialect == ...` checks in 18 modules): every other
    module asks `dialect_of(...)` for a capability, or for `name` where SQL is written once per database."""
    package = Path(transit_window.__file__).parent
    readers = [
        f"{path.relative_to(package)}:{number}"
        for path in sorted(package.rglob("*.py"))
        if path.parent.name != "db"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "get_bind().dialect" in line or "engine.dialect" in line or ".dialect.name" in line
    ]
    assert readers == []
