"""Transaction-scoped advisory locks on names (a movement's MRN, a permit id): one order for every transaction.

A transaction that locks several names must take them in one global order, or two of them can each hold what the
other waits for. `lock_names` takes them sorted, in one statement, where the dialect has advisory locks
(PostgreSQL); SQLite runs one writing transaction at a time, so there is nothing to order and it returns at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Text

from transit_window.db.dialect import dialect_of
from transit_window.db.session import TRANSACTION_SCOPED

# The key space of these locks (the first int of the two-int advisory key): any constant no one else uses.
SPACE = 6346

_LOCK_SORTED = text(
    "SELECT count(pg_advisory_xact_lock(:space, hashtext(name))) "
    "FROM (SELECT DISTINCT name FROM unnest(:names) AS name ORDER BY name) AS sorted"
).bindparams(bindparam("names", type_=ARRAY(Text())))


_HELD = TRANSACTION_SCOPED + "advisory_locks"


async def lock_names(session: AsyncSession, names: Iterable[str]) -> None:
    """Hold an exclusive lock on each name until the transaction ends (re-entrant within it: a name this
    transaction already holds costs no statement, e.g. a movement the inbox locked for its whole batch)."""
    held = session.info.get(_HELD, ())
    wanted = sorted(set(names).difference(held))
    if not wanted or not dialect_of(session).advisory_locks:
        return
    await session.execute(_LOCK_SORTED, {"space": SPACE, "names": wanted})
    session.info.setdefault(_HELD, []).extend(wanted)
