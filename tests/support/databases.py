"""Real databases for tests: a fresh PostgreSQL database or SQLite file, schema built by Alembic.

PostgreSQL comes from TW_TEST_POSTGRES_URL (default: the local server, user postgres). Under CI (CI=true) an
unreachable PostgreSQL fails the run loudly; elsewhere the PostgreSQL half of the suite is skipped with a reason.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
from pathlib import Path

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from transit_window.db import migrate
from transit_window.db.engine import create_engine
from transit_window.tables import metadata

DIALECTS = ("sqlite", "postgresql")


def postgres_admin_url() -> str:
    return os.environ.get("TW_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@functools.cache
def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None; probed once per process."""
    return postgres_available()


def require_postgres() -> None:
    """Skip (locally) when PostgreSQL is down; under CI the run has already failed in tests/conftest.py."""
    import pytest

    problem = postgres_problem()
    if problem:
        pytest.skip(problem)


def postgres_available() -> str | None:
    """None when reachable, else the reason."""

    async def probe() -> None:
        connection = await asyncpg.connect(_dsn(postgres_admin_url()), timeout=5)
        await connection.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"PostgreSQL at {postgres_admin_url()} unreachable: {type(exc).__name__}: {exc}"
    return None


def create_postgres_database(label: str) -> str:
    name = f"tw_test_{label}_{secrets.token_hex(4)}".lower()

    async def create() -> None:
        connection = await asyncpg.connect(_dsn(postgres_admin_url()))
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    asyncio.run(create())
    return make_url(postgres_admin_url()).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database

    async def drop() -> None:
        connection = await asyncpg.connect(_dsn(postgres_admin_url()))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    asyncio.run(drop())


def new_database(dialect: str, *, label: str, folder: Path, migrated: bool = True) -> str:
    if dialect == "postgresql":
        url = create_postgres_database(label)
    else:
        url = f"sqlite+aiosqlite:///{folder / f'{label}-{secrets.token_hex(4)}.db'}"
    if migrated:
        migrate.upgrade(url)
    return url


def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        drop_postgres_database(url)
    else:
        path = Path(make_url(url).database or "")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


async def truncate(url: str) -> None:
    """Empty every table (not the migration stamp) and reset the log head: a clean node, schema kept."""
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as connection:
            tables = [table.name for table in metadata.sorted_tables]
            if connection.dialect.name == "postgresql":
                await connection.execute(text(f"TRUNCATE {', '.join(tables)}"))
            else:
                for table in tables:
                    await connection.execute(text(f"DELETE FROM {table}"))
            await connection.execute(
                text("INSERT INTO log_head (id, size, head) VALUES (1, 0, :zero)"), {"zero": "0" * 64}
            )
    finally:
        await engine.dispose()
