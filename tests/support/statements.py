"""Count what an operation costs each node's database: SQL statements sent and transactions committed.

Counts, never timings: the same operation sends the same statements on any machine, so a budget on them holds in
CI whatever else the machine is doing. A statement is one cursor execution (`before_cursor_execute`); an
`executemany` is one statement, as it is one call to the driver. A commit is the connection's COMMIT; releasing a
savepoint is not one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
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
            tally.statements += 1
            tally.sql.append(str(args[2]))

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
