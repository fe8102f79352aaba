"""`INSERT ... ON CONFLICT DO NOTHING` by dialect name: what the features call until their pass to
`dialect_of(session).insert_ignore(...)` (db/dialect.py), after which this module goes."""

from __future__ import annotations

from sqlalchemy import Table

from transit_window.db.dialect import DialectInsert, named


def insert_ignore(table: Table, dialect_name: str, *, index_elements: list[str] | None = None) -> DialectInsert:
    return named(dialect_name).insert_ignore(table, index_elements=index_elements)
