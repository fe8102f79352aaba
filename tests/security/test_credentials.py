"""Credentials at rest and in use: client tokens are kept and looked up only as SHA-256 hashes, and node keys are
refused when anyone but their owner could read them.

Why a hashed lookup is a constant-time comparison in effect: the token never meets a stored secret in a comparison
that can return early. The node hashes what it is sent and asks the database for that hash; how long the index
takes to answer depends on how much of the *hash* of the guess matches a stored hash, and steering a guess's hash
prefix needs SHA-256 preimages. So timing teaches a guesser nothing about any real token, and repeated guessing is
throttled besides (tests/api/test_bad_tokens.py).
"""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from tests.support.inprocess import InProcessCorridor
from transit_window.clients.models import ApiClient
from transit_window.clients.service import add_client
from transit_window.db.session import unit_of_work
from transit_window.protocol.keys import KeyFileError, load_private_key, write_private_key
from transit_window.protocol.node import Node
from transit_window.settings import Settings


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
async def test_a_token_is_stored_and_looked_up_only_as_its_sha256(corridor: InProcessCorridor) -> None:
    kz = corridor["KZ"]
    async with unit_of_work(kz.node) as session:
        created, token = await add_client(session, name="customs officer", role="customs")
    async with kz.node.sessionmaker() as session:
        row = await session.scalar(select(ApiClient).where(ApiClient.id == created.id))
    assert row is not None
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert row.token_hash == digest
    assert all(token not in str(value) for value in vars(row).values()), "the token itself is stored"

    sent: list[Any] = []

    def remember(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        sent.append((statement, parameters))

    engine = kz.node.engine.sync_engine
    event.listen(engine, "before_cursor_execute", remember)
    try:
        answered = await kz.client.get("/v1/declarations", headers={"Authorization": f"Bearer {token}"})
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    assert answered.status_code == 200, answered.text
    assert any(digest in str(parameters) for _, parameters in sent), "the lookup is not by the hash"
    assert not any(token in f"{statement} {parameters}" for statement, parameters in sent), "the token reached SQL"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o606, 0o610, 0o601, 0o700 | 0o004])
def test_a_key_file_anyone_but_its_owner_may_touch_is_refused(tmp_path: Path, mode: int) -> None:
    """Any group or other permission bit refuses the key. Generated keys are 0600 and the CLI's refusal names the
    chmod that fixes it (tests/test_cli.py); the demo's keys and token manifest are 0600 (test_log_scan.py)."""
    key_file = tmp_path / "node-key.pem"
    write_private_key(key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key_file.chmod(mode)
    with pytest.raises(KeyFileError, match=f"mode {mode:o}.*chmod 600"):
        load_private_key(key_file)


async def test_a_node_does_not_start_with_an_exposed_key(tmp_path: Path) -> None:
    key_file = tmp_path / "node-key.pem"
    write_private_key(key_file)
    key_file.chmod(0o644)
    settings = Settings(key_file=key_file, database_url=f"sqlite+aiosqlite:///{tmp_path / 'never-opened.db'}")
    with pytest.raises(KeyFileError, match="accessible by group or others"):
        await Node.open(settings)
    assert not (tmp_path / "never-opened.db").exists(), "the key is checked before anything else"
    key_file.chmod(0o400)  # read-only for the owner is fine
    assert load_private_key(key_file).kid
