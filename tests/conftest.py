"""Fixtures: both dialects, per-run databases built by Alembic, test keys and trust lists, in-process corridors."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support import databases
from tests.support.inprocess import InProcessCorridor
from tests.support.keys import TestMember, make_member, signed, trust_body

NODES = ("KZ", "UZ", "TM")

# Property tests and fuzzing draw the same examples on every run of the suite, so a red CI is a finding anyone can
# reproduce rather than luck of the draw; TW_FUZZ_RANDOM=1 explores new ones (with TW_FUZZ_EXAMPLES for more).
settings.register_profile("suite", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("explore" if os.environ.get("TW_FUZZ_RANDOM") else "suite")
require_postgres = databases.require_postgres


def pytest_configure(config: pytest.Config) -> None:
    problem = databases.postgres_problem()
    if problem and os.environ.get("CI"):
        raise pytest.UsageError(f"CI needs PostgreSQL and it is not reachable: {problem}")


@pytest.fixture(scope="session", params=databases.DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        require_postgres()
    return str(request.param)


@pytest.fixture(scope="session")
def members(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TestMember]:
    folder = tmp_path_factory.mktemp("keys")
    return {node: make_member(node, folder) for node in (*NODES, "AZ", "XX")}


@pytest.fixture(scope="session")
def node_databases(dialect: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    folder = tmp_path_factory.mktemp(f"db-{dialect}")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    urls = {node: databases.new_database(dialect, label=f"{worker}_{node}", folder=folder) for node in NODES}
    yield urls
    for url in urls.values():
        databases.drop_database(url)


@pytest.fixture
def genesis(members: dict[str, TestMember], tmp_path: Path) -> tuple[Path, str]:
    """Genesis version 1: KZ, UZ and TM, threshold 2, signed by all three."""
    trust = signed(trust_body([members[node] for node in NODES], threshold=2), [members[node] for node in NODES])
    path = tmp_path / "genesis.json"
    path.write_bytes(trust.to_json())
    return path, trust.sha256


@pytest.fixture
async def corridor(
    node_databases: dict[str, str], members: dict[str, TestMember], genesis: tuple[Path, str]
) -> AsyncIterator[InProcessCorridor]:
    """KZ, UZ and TM as real apps on clean databases of the current dialect, delivery driven by the test."""
    await asyncio.gather(*(databases.truncate(url) for url in node_databases.values()))
    trust_file, sha = genesis
    corridor = InProcessCorridor()
    try:
        for node in NODES:
            await corridor.add_node(
                members[node], database_url=node_databases[node], trust_file=trust_file, genesis_sha256=sha
            )
        yield corridor
    finally:
        await corridor.close()
