"""Witnessed checkpoints (PROTOCOL.md §6) served exactly as their signer wrote them."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select

from tests.support.inprocess import InProcessCorridor
from tests.support.keys import TestMember as Member
from transit_window import clock
from transit_window.ids import new_id
from transit_window.protocol import jws
from transit_window.protocol.checkpoints import publish
from transit_window.protocol.envelope import seal
from transit_window.protocol.models import OutboxMessage
from transit_window.protocol.peer_auth import PeerAuth

INBOX = "/v1/corridor/messages"
JOSE = {"Content-Type": "application/jose"}


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
