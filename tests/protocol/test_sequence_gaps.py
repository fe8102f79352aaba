"""Sequence gaps: a receiver that saw seq 3 before seq 2 notes the gap and pulls what it missed from the sender.

KZ queues real pings for UZ in its outbox; the test hands some of them to UZ directly, then lets UZ pull the rest
over HTTP (through the in-process routing transport) from KZ's `GET /v1/corridor/messages`, signed as UZ.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from tests.support.inprocess import InProcessCorridor, InProcessNode
from tests.support.keys import TestMember as Member
from transit_window import clock
from transit_window.conformance import SEQ_FLOOR
from transit_window.ids import new_id
from transit_window.protocol import MAX_JSON_INTEGER
from transit_window.protocol.envelope import seal
from transit_window.protocol.models import InboundSequence, InboxMessage, OutboxMessage
from transit_window.protocol.node import Node
from transit_window.protocol.peer_auth import SCHEME, PeerAuth
from transit_window.protocol.pull import fill_gaps

INBOX = "/v1/corridor/messages"


async def post_jose(target: InProcessNode, token: str) -> httpx.Response:
    return await target.client.post(INBOX, content=token, headers={"Content-Type": "application/jose"})


def assert_problem(response: httpx.Response, *, status: int, reason: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status and problem["detail"]
    if reason is not None:
        assert problem["reason"] == reason
    return problem


async def kz_tokens_for_uz(corridor: InProcessCorridor, count: int) -> list[str]:
    kz = corridor["KZ"]
    response = await kz.client.post("/v1/admin/pings", json={"to": ["UZ"], "count": count}, headers=kz.admin)
    assert response.status_code == 200, response.text
    async with kz.node.sessionmaker() as session:
        rows = (await session.execute(select(OutboxMessage.seq, OutboxMessage.token).order_by(OutboxMessage.seq))).all()
    assert [row.seq for row in rows] == list(range(1, count + 1))
    return [row.token for row in rows]


async def inbound(node: Node, peer: str) -> tuple[int, int]:
    async with node.sessionmaker() as session:
        state = await session.get(InboundSequence, peer)
        assert state is not None
        return state.contiguous, state.max_seen


async def test_sequence_gap_is_recorded_and_filled_by_pulling_from_the_sender(corridor: InProcessCorridor) -> None:
    uz = corridor["UZ"]
    first, second, third = await kz_tokens_for_uz(corridor, 3)
    for token in (first, third):
        assert (await post_jose(uz, token)).json()["status"] == "accepted"
    assert await inbound(uz.node, "KZ") == (1, 3)
    status = (await uz.client.get("/v1/admin/status", headers=uz.admin)).json()
    assert status["inbound"]["KZ"] == {"contiguous": 1, "max_seen": 3}

    pulled = await fill_gaps(uz.node)

    assert pulled == 2  # seq 2 and seq 3 came back; 3 was a replay
    assert await inbound(uz.node, "KZ") == (3, 3)
    pulls = [request for request in corridor.transport.requests if (request.method, request.url.path) == ("GET", INBOX)]
    assert [request.url.host for request in pulls] == ["kz.corridor.test"]
    assert pulls[0].headers["authorization"].startswith(f"{SCHEME} ")
    async with uz.node.sessionmaker() as session:
        rows = (await session.execute(select(InboxMessage.seq, InboxMessage.token, InboxMessage.status))).all()
        assert sorted(tuple(row) for row in rows) == [
            (1, first, "accepted"),
            (2, second, "accepted"),
            (3, third, "accepted"),
        ]
        state = await session.get(InboundSequence, "KZ")
        assert state is not None and state.gap_since is None
    assert await fill_gaps(uz.node) == 0  # nothing left to pull


async def test_unreachable_sender_leaves_the_gap_open_for_the_next_pull(corridor: InProcessCorridor) -> None:
    uz = corridor["UZ"]
    first, _, third = await kz_tokens_for_uz(corridor, 3)
    for token in (first, third):
        await post_jose(uz, token)
    corridor.transport.down.add("kz.corridor.test")
    assert await fill_gaps(uz.node) == 0
    assert await inbound(uz.node, "KZ") == (1, 3)
    corridor.transport.down.clear()
    assert await fill_gaps(uz.node) == 2
    assert await inbound(uz.node, "KZ") == (3, 3)


async def test_pull_needs_a_signed_request(corridor: InProcessCorridor) -> None:
    kz = corridor["KZ"]
    await kz_tokens_for_uz(corridor, 1)
    unsigned = await kz.client.get(INBOX, params={"to": "UZ"})
    assert SCHEME in assert_problem(unsigned, status=401)["detail"]
    bearer = await kz.client.get(INBOX, params={"to": "UZ"}, headers=kz.admin)
    assert_problem(bearer, status=401)


async def test_pull_signed_by_a_stranger_or_for_another_path_is_refused(
    corridor: InProcessCorridor, members: dict[str, Member]
) -> None:
    kz = corridor["KZ"]
    await kz_tokens_for_uz(corridor, 1)
    stranger = PeerAuth(key=members["XX"].key, iss="UZ", aud="KZ")
    assert_problem(await kz.client.get(INBOX, params={"to": "UZ"}, auth=stranger), status=401, reason="unknown-key")

    for_tm = PeerAuth(key=members["UZ"].key, iss="UZ", aud="TM")
    response = await kz.client.get(INBOX, params={"to": "UZ"}, auth=for_tm)
    assert_problem(response, status=401, reason="wrong-audience")
    assert response.headers["www-authenticate"] == SCHEME

    # A signature captured from one request does not authorise another.
    signed = kz.client.build_request("GET", INBOX, params={"to": "UZ", "after_seq": 5})
    authorization = next(PeerAuth(key=members["UZ"].key, iss="UZ", aud="KZ").auth_flow(signed)).headers["authorization"]
    replayed = await kz.client.get(INBOX, params={"to": "UZ", "after_seq": 0}, headers={"Authorization": authorization})
    problem = assert_problem(replayed, status=401, reason="request-mismatch")
    assert problem["type"] == "urn:dtc:problem:request-not-authentic"
    assert "after_seq=5" in problem["detail"] and "after_seq=0" in problem["detail"]


async def test_node_cannot_pull_messages_meant_for_another_node(
    corridor: InProcessCorridor, members: dict[str, Member]
) -> None:
    kz = corridor["KZ"]
    await kz_tokens_for_uz(corridor, 2)
    as_tm = PeerAuth(key=members["TM"].key, iss="TM", aud="KZ")
    response = await kz.client.get(INBOX, params={"to": "UZ"}, auth=as_tm)
    problem = assert_problem(response, status=403, reason="not-your-messages")
    assert "TM may pull only its own messages" in problem["detail"]

    own = await kz.client.get(INBOX, params={"to": "TM"}, auth=as_tm)
    assert own.status_code == 200 and own.json() == {"messages": []}
    as_uz = PeerAuth(key=members["UZ"].key, iss="UZ", aud="KZ")
    mine = await kz.client.get(INBOX, params={"to": "UZ", "after_seq": 1}, auth=as_uz)
    assert mine.status_code == 200 and len(mine.json()["messages"]) == 1


async def test_late_message_closes_the_gap_without_a_pull(corridor: InProcessCorridor) -> None:
    uz = corridor["UZ"]
    tokens = await kz_tokens_for_uz(corridor, 4)
    for token in (tokens[0], tokens[3], tokens[2]):
        await post_jose(uz, token)
    assert await inbound(uz.node, "KZ") == (1, 4)
    await post_jose(uz, tokens[1])
    assert await inbound(uz.node, "KZ") == (4, 4)
    async with uz.node.sessionmaker() as session:
        state = await session.get(InboundSequence, "KZ")
        assert state is not None and state.gap_since is None


async def test_pulled_message_is_verified_like_a_pushed_one(corridor: InProcessCorridor) -> None:
    """If what the sender serves was altered at rest, the receiver refuses it and the gap stays open."""
    kz, uz = corridor["KZ"], corridor["UZ"]
    first, second, third = await kz_tokens_for_uz(corridor, 3)
    for token in (first, third):
        await post_jose(uz, token)
    header, payload, signature = second.split(".")
    altered = f"{header}.{payload}.{signature[::-1]}"
    async with kz.node.sessionmaker() as session:
        row = (await session.scalars(select(OutboxMessage).where(OutboxMessage.seq == 2))).one()
        row.token = altered
        await session.commit()

    assert await fill_gaps(uz.node) == 2  # both served; seq 3 is a replay, the altered seq 2 is refused
    assert await inbound(uz.node, "KZ") == (1, 3)
    async with uz.node.sessionmaker() as session:
        assert sorted((await session.scalars(select(InboxMessage.seq))).all()) == [1, 3]


async def test_a_gap_the_sender_cannot_fill_is_closed_after_one_empty_pull(
    corridor: InProcessCorridor, members: dict[str, Member]
) -> None:
    """The conformance kit, run as KZ against UZ, sends pings numbered from 10^9 on: UZ saw seq 1000000001 from KZ,
    and KZ's outbox has nothing like it. UZ asks once, hears "nothing after 2", and closes the gap instead of asking
    again every five seconds for ever; a real gap after that is noticed and filled as before."""
    kz, uz = corridor["KZ"], corridor["UZ"]
    real = await kz_tokens_for_uz(corridor, 2)
    for token in real:
        await post_jose(uz, token)
    for seq in (SEQ_FLOOR + 1, SEQ_FLOOR + 2):  # what `run_checks` sends (its own messages, KZ's key)
        kit_ping = seal(
            key=members["KZ"].key,
            message_id=new_id(),
            type="corridor.ping",
            iss="KZ",
            aud="UZ",
            iat=clock.utcnow(),
            seq=seq,
            subject=None,
            trust=1,
            body={"note": "conformance: a valid message"},
        )
        assert (await post_jose(uz, kit_ping)).json()["status"] == "accepted"
    assert await inbound(uz.node, "KZ") == (2, SEQ_FLOOR + 2)

    assert await fill_gaps(uz.node) == 0  # KZ answers an empty list...
    assert await inbound(uz.node, "KZ") == (2, 2)  # ...so the gap is closed
    pulls = [request for request in corridor.transport.requests if (request.method, request.url.path) == ("GET", INBOX)]
    assert [str(request.url.params["after_seq"]) for request in pulls] == ["2"]
    assert await fill_gaps(uz.node) == 0
    assert len([request for request in corridor.transport.requests if request.method == "GET"]) == 1  # not again
    async with uz.node.sessionmaker() as session:
        state = await session.get(InboundSequence, "KZ")
        assert state is not None and state.gap_since is None

    # KZ's next real messages: 3 and 5 arrive, 4 does not; the kit's rows stay stored but open no gap of their own.
    response = await kz.client.post("/v1/admin/pings", json={"to": ["UZ"], "count": 3}, headers=kz.admin)
    assert response.status_code == 200, response.text
    async with kz.node.sessionmaker() as session:
        later = (
            await session.scalars(select(OutboxMessage.token).where(OutboxMessage.seq > 2).order_by(OutboxMessage.seq))
        ).all()
    for token in (later[0], later[2]):
        await post_jose(uz, token)
    assert await inbound(uz.node, "KZ") == (3, 5)
    assert await fill_gaps(uz.node) == 2
    assert await inbound(uz.node, "KZ") == (5, 5)


async def test_a_message_numbered_past_what_json_carries_exactly_is_refused_not_a_crash(
    corridor: InProcessCorridor, members: dict[str, Member]
) -> None:
    """seq 2^63 used to reach the database and come back as a 500; the protocol's integers end at 2^53 - 1."""
    uz = corridor["UZ"]
    for seq, expected in ((MAX_JSON_INTEGER + 1, 400), (2**63, 400), (MAX_JSON_INTEGER, 200)):
        token = seal(
            key=members["KZ"].key,
            message_id=new_id(),
            type="corridor.ping",
            iss="KZ",
            aud="UZ",
            iat=clock.utcnow(),
            seq=seq,
            subject=None,
            trust=1,
            body={"note": "far ahead"},
        )
        response = await post_jose(uz, token)
        assert response.status_code == expected, (seq, response.text)
        if expected == 400:
            assert response.json()["reason"] == "bad-payload" and "/seq" in response.json()["detail"]
