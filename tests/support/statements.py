"""Count what an operation costs each node's database: SQL statements sent and transactions committed.

Counts, never timings: the same operation sends the same statements on any machine, so a budget on them holds in
CI whatever else the machine is doing. A statement is what the database executes: one cursor execution
(`before_cursor_execute`), except that an `executemany` on PostgreSQL counts once per row, since asyncpg runs the
prepared statement once per parameter set (pg_stat_statements counts them so too); on SQLite, in-process, it is one
call that loops in C and counts once. A commit is the connection's COMMIT; releasing a savepoint is not one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine.interfaces import ExecuteStyle
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass
class Tally:
    statements: int = 0
    commits: int = 0
    sql: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        listing = "\n".join(f"  {' '.join(line.split())[:160]}" for line in self.sql)
        return f"{self.statements} statements, {self.commits} commits:\n{listing}"


@contextmanager
def counting(engines: dict[str, AsyncEngine]) -> Iterator[dict[str, Tally]]:
    """Tally per engine (by the name it is given) while the block runs."""
    tallies = {name: Tally() for name in engines}
    hooks: list[tuple[Any, str, Any]] = []
    for name, engine in engines.items():
        tally = tallies[name]

        def on_statement(*args: Any, tally: Tally = tally) -> None:
            connection, _cursor, statement, parameters, context, _executemany = args
            # An executemany, not an INSERT whose rows SQLAlchemy already batched into one VALUES list.
            per_row = context is not None and context.execute_style is ExecuteStyle.EXECUTEMANY
            rows = len(parameters) if per_row and connection.dialect.name == "postgresql" else 1
            tally.statements += rows
            tally.sql.append(f"{statement} ({rows} rows)" if rows > 1 else str(statement))

        def on_commit(*_: Any, tally: Tally = tally) -> None:
            tally.commits += 1

        for identifier, hook in (("before_cursor_execute", on_statement), ("commit", on_commit)):
            event.listen(engine.sync_engine, identifier, hook)
            hooks.append((engine.sync_engine, identifier, hook))
    try:
        yield tallies
    finally:
        for target, identifier, hook in hooks:
            event.remove(target, identifier, hook)
