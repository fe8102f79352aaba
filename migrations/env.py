"""Alembic environment: one migration tree for PostgreSQL and SQLite (batch mode on SQLite)."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from transit_window.db.engine import create_engine
from transit_window.tables import metadata

config = context.config


def _url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("TW_DATABASE_URL")
    if not url:
        raise RuntimeError("set TW_DATABASE_URL (or pass database_url) to migrate")
    return str(url)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        transaction_per_migration=True,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET lock_timeout = '10s'")
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_url(), pool_size=1)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    asyncio.run(_run_async())


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run against a database")
run_migrations_online()
