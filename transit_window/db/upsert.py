"""`INSERT ... ON CONFLICT DO NOTHING` on both dialects: what inbox de-duplication and idempotent pings need."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert


def insert_ignore(table: Table, dialect_name: str, *, index_elements: list[str] | None = None) -> Insert:
    statement: Any
    if dialect_name == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing(index_elements=index_elements)
    else:
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=index_elements)
    result: Insert = statement
    return result
