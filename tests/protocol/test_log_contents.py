"""What the tamper-evident log holds (PROTOCOL.md §6), entry by entry, and witnessed checkpoints served as signed.

The log's table in PROTOCOL.md is a promise to the partners whose audits compare with ours: these stories check it
exactly, including the cases an implementer asks about (a `duplicate` receipt, a message that came by a pull).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import select

from tests.support.inprocess import InProcessCorridor, InProcessNode
from tests.support.keys import TestMember as Member
from transit_window import clock
from transit_window.ids import new_id
from transit_window.protocol import audit, jws
from transit_window.protocol.checkpoints import publish
from transit_window.protocol.envelope import digest_of, seal
from transit_window.protocol.models import InboxMessage, LogEntry, OutboxMessage
from transit_window.protocol.peer_auth import PeerAuth
from transit_window.protocol.pull import fill_gaps

INBOX = "/v1/corridor/messages"
JOSE = {"Content-Type": "application/jose"}


async def entries(node: InProcessNode) -> list[tuple[str, str, str, str, str]]:
    async with node.node.sessionmaker() as session:
        rows = await session.execute(
            select(LogEntry.direction, LogEntry.kind, LogEntry.peer, LogEntry.msg_id, LogEntry.digest).order_by(
                LogEntry.position
            )
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def envelope(signer: Member, *, type: str, body: dict[str, Any], seq: int, message_id: str | None = None) -> str:
    return seal(
        key=signer.key,
        message_id=message_id or new_id(),
        type=type,
        iss=signer.node,
        aud="UZ",
        iat=clock.utcnow(),
        seq=seq,
        subject=f"log:{signer.node}" if type == "corridor.checkpoint" else None,
        trust=1,
        body=body,
    )


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
async def test_the_log_holds_each_stored_envelope_and_receipt_once_and_nothing_else(
    corridor: InProcessCorridor, members: dict[str, Member]
) -> None:
    """KZ sends UZ three pings. UZ gets the first and the third pushed, a different message reusing the first's id
    (a `duplicate` receipt), the third again (the original receipt), then pulls the second. KZ's worker delivers all
    three and gets the original receipts back. Each side logs two entries per message, no more."""
    kz, uz = corridor["KZ"], corridor["UZ"]
    assert (await kz.client.post("/v1/admin/pings", json={"to": ["UZ"], "count": 3}, headers=kz.admin)).is_success
    async with kz.node.sessionmaker() as session:
        sent = (await session.execute(select(OutboxMessage.id, OutboxMessage.token).order_by(OutboxMessage.seq))).all()
    (id1, token1), (id2, token2), (id3, token3) = sent

    for token in (token1, token3):
        assert (await uz.client.post(INBOX, content=token, headers=JOSE)).json()["status"] == "accepted"
    impostor = seal(
        key=members["KZ"].key,
        message_id=id1,
        type="corridor.ping",
        iss="KZ",
        aud="UZ",
        iat=clock.utcnow(),
        seq=1,
        subject=None,
        trust=1,
        body={"note": "same id, other content"},
    )
    assert (await uz.client.post(INBOX, content=impostor, headers=JOSE)).json()["status"] == "duplicate"
    assert (await uz.client.post(INBOX, content=token3, headers=JOSE)).json()["status"] == "accepted"  # a replay
    assert await fill_gaps(uz.node) == 2  # seq 2, and seq 3 again (a replay)
    await corridor.deliver_all()

    async with uz.node.sessionmaker() as session:
        receipts = dict((await session.execute(select(InboxMessage.id, InboxMessage.receipt))).all())
    assert await entries(uz) == [
        ("received", "envelope", "KZ", id1, digest_of(token1)),
        ("sent", "receipt", "KZ", id1, digest_of(receipts[id1])),
        ("received", "envelope", "KZ", id3, digest_of(token3)),
        ("sent", "receipt", "KZ", id3, digest_of(receipts[id3])),
        ("received", "envelope", "KZ", id2, digest_of(token2)),  # pulled: logged like a push
        ("sent", "receipt", "KZ", id2, digest_of(receipts[id2])),  # signed at the pull, reached KZ at its push
    ]
    kz_log = await entries(kz)
    assert kz_log[:3] == [("sent", "envelope", "UZ", id_, digest_of(token)) for id_, token in sent]
    assert sorted(kz_log[3:]) == sorted(
        ("received", "receipt", "UZ", id_, digest_of(receipts[id_])) for id_ in (id1, id2, id3)
    )
    for node in (kz, uz):
        report = await audit.verify(node.node, ask_peers=False)
        assert report.ok, report.problems


async def test_witnessed_checkpoints_are_served_exactly_as_signed(
    corridor: InProcessCorridor, members: dict[str, Member]
) -> None:
    """KZ's checkpoints reach UZ with `at` written as KZ's own library writes it; TM reads them from UZ and gets
    every value byte for byte (`.629Z` stayed `.629Z`, not `.629000+00:00`), with the envelope that carried it."""
    uz = corridor["UZ"]
    written = {1: "2026-05-04T06:30:00.629Z", 2: "2026-05-04T11:30:00.123456789+05:00", 3: "2026-05-04t06:31:00z"}
    tokens = {}
    for size, at in written.items():
        body = {"node": "KZ", "size": size, "head": f"{size:02x}" * 32, "at": at}
        tokens[size] = envelope(members["KZ"], type="corridor.checkpoint", body=body, seq=size)
        answer = await uz.client.post(INBOX, content=tokens[size], headers=JOSE)
        assert answer.json()["status"] == "accepted", answer.text

    as_tm = PeerAuth(key=members["TM"].key, iss="TM", aud="UZ")
    response = await uz.client.get("/v1/corridor/checkpoints", params={"node": "KZ"}, auth=as_tm)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "checkpoints": [
            {"node": "KZ", "size": size, "head": f"{size:02x}" * 32, "at": written[size], "token": tokens[size]}
            for size in (3, 2, 1)
        ]
    }

    # UZ's own checkpoint: milliseconds and `Z`, the same string in its own signed copy and in what its peers get.
    assert await publish(uz.node, size=3, head="ab" * 32)
    mine = (await uz.client.get("/v1/corridor/checkpoints", params={"node": "UZ"}, auth=as_tm)).json()["checkpoints"]
    (own,) = mine
    signed_at = orjson.loads(jws.peek_compact(own["token"])[1])["at"]
    assert own["at"] == signed_at and signed_at.endswith("Z") and len(signed_at) == len("2026-05-04T06:30:00.000Z")
    async with uz.node.sessionmaker() as session:
        carried = (await session.scalars(select(OutboxMessage.token).where(OutboxMessage.peer == "KZ"))).one()
    assert orjson.loads(jws.peek_compact(carried)[1])["body"]["at"] == signed_at
