"""What PostgreSQL and SQLite do differently, asked of one object chosen once per engine: `dialect_of(session)`.

How code uses it (every module asks it; nothing else reads the dialect's name):

    from transit_window.db.dialect import dialect_of

    dialect = dialect_of(session)                       # a dictionary look-up: no statement, no round trip
    dialect.insert_ignore(table, index_elements=[...])  # INSERT ... ON CONFLICT DO NOTHING
    dialect.insert(table).on_conflict_do_update(...)    # an upsert
    select(...).with_for_update(skip_locked=True)       # no switch: SQLite renders no FOR UPDATE
    if dialect.concurrent_writers: ...                  # a statement run only to lock
    if dialect.sequences: ...                           # nextval(...) rather than a counter row
    if dialect.arrays: ...                              # one statement over unnest()

* **Row locks and `SKIP LOCKED` need no switch** on a `select()`: SQLite's compiler renders no `FOR UPDATE` clause
  at all (tests/db/test_dialect.py keeps that true across SQLAlchemy upgrades), and SQLite needs none: every
  transaction there begins `IMMEDIATE` (db/engine.py), so writers already run one at a time. Not so
  `session.get(Model, key, with_for_update=...)`: with a lock it skips the identity map and always reads, so it keeps
  its switch, as `with_for_update=dialect.concurrent_writers`.
* **Advisory locks** are `db.locks.lock_names`, which asks the dialect itself; call it on both databases.
* **LISTEN/NOTIFY** (`notifications`) is how other processes of a node learn of new outbox rows (protocol/wakeup.py).
* `name` is for SQL text or driver calls written once per database (JSON functions, asyncpg's `COPY`): prefer a
  capability where one says why.

`Node.dialect` is the node's, for code that holds a node rather than a session. Column types that differ (JSONB,
timezone handling) are not here: they are SQLAlchemy types that adapt themselves (db/base.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

DialectInsert: TypeAlias = postgresql.Insert | sqlite.Insert
"""An `INSERT` with `on_conflict_do_nothing` / `on_conflict_do_update` (the two have the same arguments we use)."""


@dataclass(frozen=True, eq=False)
class Dialect:
    """One of the two databases a node runs on (`POSTGRESQL`, `SQLITE`); compare by identity or `name`."""

    name: Literal["postgresql", "sqlite"]
    concurrent_writers: bool
    """Transactions write at the same time (PostgreSQL), so a row read to decide a change is locked, and a first row
    two transactions might both create is inserted race-free. On SQLite a transaction holds the database's write
    lock from its first statement (`BEGIN IMMEDIATE`): one writer at a time, and one that must not wait on itself
    (an authentication read in its own short session rather than the request's, api/deps.py)."""
    advisory_locks: bool
    """`pg_advisory_xact_lock`: named locks taken in one order (db/locks.py). SQLite has nothing to order."""
    notifications: bool
    """LISTEN/NOTIFY between the processes of one node. SQLite serves one process per node."""
    sequences: bool
    """Sequences (`nextval`), which hold no lock until commit; SQLite counts in a row instead."""
    arrays: bool
    """Array parameters: a batch is one statement over `unnest(...)`, prepared once whatever its size, instead of a
    statement per row or a VALUES list compiled per batch size."""
    named_values: bool
    """A VALUES list can be given column names (`(VALUES …) AS given (id, body)`) and joined in an UPDATE … FROM:
    many rows changed by one statement (db/bulk.py). SQLite cannot name them; there it is an executemany."""
    writes_in_with: bool
    """An INSERT can run inside the WITH of another statement (`WITH appended AS (INSERT …) UPDATE …`): a log
    append and its head in one round trip (protocol/log.py). SQLite's WITH holds only a SELECT."""
    _insert: Callable[[Table], DialectInsert]

    def insert(self, table: Table) -> DialectInsert:
        """This database's `INSERT`, for `on_conflict_do_update` (upserts)."""
        return self._insert(table)

    def insert_ignore(self, table: Table, *, index_elements: list[str] | None = None) -> DialectInsert:
        """`INSERT ... ON CONFLICT DO NOTHING`: inbox de-duplication, idempotent pings and heartbeats. `rowcount` (or
        `RETURNING`) tells whether the row went in."""
        return self._insert(table).on_conflict_do_nothing(index_elements=index_elements)


POSTGRESQL = Dialect(
    name="postgresql",
    concurrent_writers=True,
    advisory_locks=True,
    notifications=True,
    sequences=True,
    arrays=True,
    named_values=True,
    writes_in_with=True,
    _insert=postgresql.insert,
)
SQLITE = Dialect(
    name="sqlite",
    concurrent_writers=False,
    advisory_locks=False,
    notifications=False,
    sequences=False,
    arrays=False,
    named_values=False,
    writes_in_with=False,
    _insert=sqlite.insert,
)
_BY_NAME: dict[str, Dialect] = {dialect.name: dialect for dialect in (POSTGRESQL, SQLITE)}


def named(name: str) -> Dialect:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"transit_window runs on PostgreSQL or SQLite, not {name!r}") from None


def dialect_of(session: AsyncSession | Session) -> Dialect:
    """The dialect of the session's database, from the engine (or connection) it is bound to: no statement."""
    return named(session.get_bind().dialect.name)


def dialect_of_engine(engine: AsyncEngine | Engine | AsyncConnection | Connection) -> Dialect:
    return named(engine.dialect.name)
