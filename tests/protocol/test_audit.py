"""`audit verify`: a log row altered directly in the database is named; a peer holds the checkpoint that exposes it.

KZ exchanges pings with UZ and TM, signs a checkpoint of its log and sends it to both to witness. Then someone with
write access to KZ's database rewrites history, more or less cleverly, and the audit has to catch it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from typing import Any

import orjson
from sqlalchemy import text

from tests.support.inprocess import InProcessCorridor, InProcessNode
from transit_window import clock
from transit_window.protocol import audit, jws
from transit_window.protocol.checkpoints import CHECKPOINT_TYP, checkpoint_due
from transit_window.protocol.envelope import seal


async def _busy_corridor(corridor: InProcessCorridor) -> int:
    """Pings both ways, then a checkpoint of KZ's log witnessed by UZ and TM; returns the checkpoint's size."""
    kz = corridor["KZ"]
    sent = await kz.client.post("/v1/admin/pings", json={"count": 2, "note": "to everyone"}, headers=kz.admin)
    assert sent.status_code == 200 and sent.json()["sent"] == 4
    for peer in ("UZ", "TM"):
        node = corridor[peer]
        answer = await node.client.post("/v1/admin/pings", json={"to": ["KZ"]}, headers=node.admin)
        assert answer.status_code == 200
    await corridor.deliver_all()
    published = await kz.client.post("/v1/admin/checkpoints", headers=kz.admin)
    assert published.status_code == 200 and published.json()["published"] is True
    await corridor.deliver_all()
    return int(published.json()["size"])


async def _audit(node: InProcessNode) -> dict[str, Any]:
    response = await node.client.get("/v1/admin/audit", headers=node.admin)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


async def _sql(node: InProcessNode, statement: str, **params: Any) -> list[Any]:
    """What an intruder with database access does: plain SQL, bypassing the application."""
    async with node.node.sessionmaker() as session:
        result = await session.execute(text(statement), params)
        rows = list(result.all()) if statement.startswith("SELECT") else []
        await session.commit()
    return rows


async def test_untouched_log_passes_and_both_peers_witnessed_the_checkpoint(corridor: InProcessCorridor) -> None:
    size = await _busy_corridor(corridor)

    report = await _audit(corridor["KZ"])

    assert report["ok"] is True, report["problems"]
    assert report["problems"] == [] and report["first_bad_position"] is None
    assert report["own_checkpoints"] == 1
    assert report["witnessed"] == {"UZ": 1, "TM": 1}
    assert report["unreachable"] == []
    assert report["size"] > size >= 12, "4 pings sent, 4 receipts, 2 pings received, 2 receipts; then the checkpoint's"
    for peer in ("UZ", "TM"):
        (row,) = await _sql(corridor[peer], "SELECT size, head FROM checkpoints WHERE node = 'KZ'")
        assert row.size == size


async def test_a_row_changed_in_the_database_is_named_by_its_position(corridor: InProcessCorridor) -> None:
    await _busy_corridor(corridor)
    kz = corridor["KZ"]
    (entry,) = await _sql(kz, "SELECT peer FROM log_entries WHERE position = 3")
    other = "UZ" if entry.peer == "TM" else "TM"

    await _sql(kz, "UPDATE log_entries SET peer = :peer WHERE position = 3", peer=other)
    report = await _audit(kz)

    assert report["ok"] is False
    assert report["first_bad_position"] == 3
    assert report["problems"][0] == "entry 3: entry_hash does not match its content"
    assert not any(problem.startswith(("entry 1:", "entry 2:")) for problem in report["problems"])


async def test_a_rewritten_history_that_is_locally_consistent_is_exposed_by_the_peers_checkpoints(
    corridor: InProcessCorridor,
) -> None:
    """The intruder rewrites entry 3, recomputes every later hash and the head, and even re-signs this node's own
    checkpoint with its key: the local chain is flawless. Only UZ's and TM's witnessed checkpoints disagree."""
    size = await _busy_corridor(corridor)
    kz = corridor["KZ"]
    entries = await _sql(kz, "SELECT position, direction, peer, digest FROM log_entries ORDER BY position")
    prev = "0" * 64
    rewritten: dict[int, str] = {}
    for entry in entries:
        peer = ("UZ" if entry.peer == "TM" else "TM") if entry.position == 3 else entry.peer
        material = bytes.fromhex(prev) + bytes.fromhex(entry.digest) + entry.direction.encode() + peer.encode()
        entry_hash = hashlib.sha256(material).hexdigest()
        await _sql(
            kz,
            "UPDATE log_entries SET peer = :peer, prev_hash = :prev, entry_hash = :hash WHERE position = :position",
            peer=peer,
            prev=prev,
            hash=entry_hash,
            position=entry.position,
        )
        rewritten[entry.position] = prev = entry_hash
    await _sql(kz, "UPDATE log_head SET head = :head WHERE id = 1", head=prev)
    (own,) = await _sql(kz, "SELECT token FROM checkpoints WHERE node = 'KZ' AND size = :size", size=size)
    _, signed_payload = jws.peek_compact(own.token)
    forged_body = {**orjson.loads(signed_payload), "head": rewritten[size]}
    forged = jws.sign_compact(orjson.dumps(forged_body), key=kz.node.key, typ=CHECKPOINT_TYP)
    await _sql(
        kz,
        "UPDATE checkpoints SET head = :head, token = :token WHERE node = 'KZ' AND size = :size",
        head=rewritten[size],
        token=forged,
        size=size,
    )

    local_only = await audit.verify(kz.node, ask_peers=False)
    assert local_only.ok, f"the forgery should be locally consistent: {local_only.problems}"
    assert local_only.own_checkpoints == 1

    report = await _audit(kz)
    assert report["ok"] is False
    assert report["witnessed"] == {"UZ": 1, "TM": 1}
    assert sorted(report["problems"]) == sorted(
        f"{peer} holds a checkpoint at size {size} whose head does not match the log" for peer in ("UZ", "TM")
    )
    assert report["first_bad_position"] == size


async def test_a_stored_message_rewritten_after_the_fact_no_longer_matches_its_log_entry(
    corridor: InProcessCorridor,
) -> None:
    await _busy_corridor(corridor)
    kz = corridor["KZ"]
    (entry,) = await _sql(
        kz,
        "SELECT position, msg_id FROM log_entries WHERE direction = 'received' AND kind = 'envelope' AND peer = 'UZ'",
    )
    (stored,) = await _sql(kz, "SELECT seq, token FROM inbox WHERE id = :id", id=entry.msg_id)
    # UZ's ping, re-signed with UZ's key and another note: even a perfectly valid JWS must match the logged digest.
    forged = seal(
        key=corridor["UZ"].node.key,
        message_id=entry.msg_id,
        type="corridor.ping",
        iss="UZ",
        aud="KZ",
        iat=clock.utcnow(),
        seq=stored.seq,
        subject=None,
        trust=1,
        body={"note": "something UZ never said"},
    )
    assert forged != stored.token
    await _sql(kz, "UPDATE inbox SET token = :token WHERE id = :id", token=forged, id=entry.msg_id)

    report = await _audit(kz)

    assert report["ok"] is False
    assert report["first_bad_position"] == entry.position
    assert report["problems"] == [f"entry {entry.position}: digest differs from the stored envelope {entry.msg_id}"]


def _audit_cli(node: InProcessNode) -> subprocess.CompletedProcess[str]:
    settings = node.settings
    env = {name: value for name, value in os.environ.items() if not name.startswith("TW_")}
    env.update(
        COLUMNS="250",
        TW_NODE_ID=settings.node_id,
        TW_DATABASE_URL=settings.database_url,
        TW_KEY_FILE=str(settings.key_file),
        TW_TRUST_FILE=str(settings.trust_file),
        TW_GENESIS_SHA256=settings.genesis_sha256,
    )
    return subprocess.run(
        [sys.executable, "-m", "transit_window", "audit", "verify", "--no-peers"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_audit_verify_command_exits_0_on_a_sound_log_and_1_naming_the_tampered_entry(
    corridor: InProcessCorridor,
) -> None:
    """The operator's `transit-window audit verify` (peers are in-process here, so `--no-peers`)."""
    await _busy_corridor(corridor)
    kz = corridor["KZ"]
    (head,) = await _sql(kz, "SELECT size FROM log_head WHERE id = 1")

    sound = await asyncio.to_thread(_audit_cli, kz)
    assert sound.returncode == 0, sound.stdout + sound.stderr
    assert f"log of KZ: {head.size} entries" in sound.stdout and "1 own checkpoint(s)" in sound.stdout
    assert "audit ok" in sound.stdout

    await _sql(kz, "UPDATE log_entries SET digest = :digest WHERE position = 3", digest="f" * 64)
    tampered = await asyncio.to_thread(_audit_cli, kz)
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    assert "first entry that does not match: 3" in tampered.stdout
    assert "entry 3: entry_hash does not match its content" in tampered.stdout
    assert "audit ok" not in tampered.stdout


async def test_two_checkpoints_of_one_size_at_once_publish_it_once(corridor: InProcessCorridor) -> None:
    """The periodic loop and an operator's forced checkpoint (or two worker processes) reach the same log size at
    the same moment: one keeps and sends it, the other yields. Both used to insert it, and the loser was a 500."""
    kz = corridor["KZ"]
    sent = await kz.client.post("/v1/admin/pings", json={"to": ["UZ", "TM"]}, headers=kz.admin)
    assert sent.status_code == 200, sent.text
    await corridor.deliver_all()
    results = await asyncio.gather(*(checkpoint_due(kz.node, force=True) for _ in range(3)))
    # On PostgreSQL the three read the same head and one wins; SQLite runs them one after the other, and a later one
    # may find the log grown by the first one's messages and publish that larger size: never one size twice.
    assert True in results
    (row,) = await _sql(kz, "SELECT count(*), count(DISTINCT size) FROM checkpoints WHERE node = 'KZ'")
    assert row[0] == row[1] == results.count(True)
    (row,) = await _sql(kz, "SELECT count(*) FROM outbox WHERE type = 'corridor.checkpoint'")
    assert row[0] == 2 * results.count(True), "each published checkpoint goes once to each peer"
