"""Many rows in one statement: a multi-row INSERT, and an UPDATE joined to a VALUES list.

`session.execute(insert(table), rows)` is an executemany: one statement for SQLAlchemy, but asyncpg executes the
prepared statement once per row, so the database does (and pg_stat_statements counts) as many statements as rows;
a log append of six entries was six INSERTs. These send one statement for the lot, in chunks that keep under
SQLite's limit on bound variables.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, Update, bindparam, cast, column, insert, update, values
from sqlalchemy.ext.asyncio import AsyncSession

from transit_window.db.dialect import dialect_of

_VARIABLES = 30_000  # SQLite allows 32,766 bound variables a statement; PostgreSQL 65,535


def _chunks(rows: Sequence[Mapping[str, Any]], width: int) -> Iterator[Sequence[Mapping[str, Any]]]:
    size = max(1, _VARIABLES // max(1, width))
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT all `rows` (dicts with the same keys) in one statement a chunk."""
    if not rows:
        return
    for chunk in _chunks(rows, len(rows[0])):
        await session.execute(insert(table).values(list(chunk)))


async def insert_rows_with(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]], *, then: Update
) -> None:
    """INSERT all `rows`, then run `then`: one statement where the database runs an INSERT inside WITH and the rows
    fit one statement (`WITH inserted AS (INSERT …) <then>`), else the two one after the other."""
    if rows and dialect_of(session).writes_in_with and len(rows) * len(rows[0]) <= _VARIABLES:
        key = next(iter(table.primary_key.columns))
        inserted = insert(table).values(list(rows)).returning(key).cte("inserted")
        await session.execute(then.add_cte(inserted))  # PostgreSQL runs a WITH's INSERT whether or not it is read
        return
    await insert_rows(session, table, rows)
    await session.execute(then)


async def update_rows(
    session: AsyncSession,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str,
    columns: Sequence[str],
    fixed: Mapping[str, Any] | None = None,
) -> None:
    """UPDATE `table` SET each of `columns` from the row whose `key` matches (plus the `fixed` values), for all
    `rows` in one statement a chunk.

    SQLite cannot name the columns of a VALUES list, so there it is an executemany: one call into the in-process
    driver, which loops in C."""
    if not rows:
        return
    if not dialect_of(session).named_values:
        await session.execute(
            update(table)
            .where(table.c[key] == bindparam(f"b_{key}"))
            .values({**{name: bindparam(f"b_{name}") for name in columns}, **(fixed or {})}),
            [{f"b_{name}": row[name] for name in (key, *columns)} for row in rows],
        )
        return
    names = [key, *columns]
    for chunk in _chunks(rows, len(names)):
        given = values(*(column(name, table.c[name].type) for name in names), name="given").data(
            [tuple(row[name] for name in names) for row in chunk]
        )
        await session.execute(
            update(table)
            .where(table.c[key] == given.c[key])
            # CAST: a column of the list that is NULL in every row has no type but text for PostgreSQL
            .values({**{name: cast(given.c[name], table.c[name].type) for name in columns}, **(fixed or {})})
        )
