"""`Idempotency-Key` on `POST /v1/declarations`: a customs system that retries (a timeout, a lost answer, a double
click, ten workers racing) gets the first answer again and never a second MRN."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from tests.declarations.conftest import declaration
from tests.support.inprocess import InProcessCorridor, InProcessNode
from transit_window.clients.service import add_client
from transit_window.db.session import unit_of_work
from transit_window.declarations.models import Movement

KEY = "0b8f8a52-6a4e-4d47-9a51-0c2f3f0e7d11"


async def movements(node: InProcessNode) -> list[str]:
    async with node.node.sessionmaker() as session:
        return list((await session.scalars(select(Movement.mrn).order_by(Movement.mrn))).all())


async def test_a_retried_declaration_gets_the_mrn_of_the_first(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """The answer was lost, the system sends the same declaration again with the same key: same MRN, nothing new.
    Even after the movement has been released, the retry is answered with the first answer."""
    kz = corridor["KZ"]
    headers = {**customs["KZ"], "Idempotency-Key": KEY}
    body = declaration()
    first = await kz.client.post("/v1/declarations", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    mrn = first.json()["mrn"]

    again = await kz.client.post("/v1/declarations", json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert again.json() == {"mrn": mrn, "status": "accepted"}
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await movements(kz) == [mrn]

    released = await kz.client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])
    assert released.status_code == 200, released.text
    late = await kz.client.post("/v1/declarations", json=body, headers=headers)
    assert (late.status_code, late.json()) == (201, {"mrn": mrn, "status": "accepted"})
    assert await movements(kz) == [mrn]


async def test_ten_concurrent_posts_with_one_key_give_one_mrn(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """Ten workers send the same declaration with the same key at the same moment: one movement, one MRN, and
    every worker is told that MRN."""
    kz = corridor["KZ"]
    headers = {**customs["KZ"], "Idempotency-Key": KEY}
    body = declaration()
    responses = await asyncio.gather(
        *(kz.client.post("/v1/declarations", json=body, headers=headers) for _ in range(10))
    )
    assert [response.status_code for response in responses] == [201] * 10, [r.text for r in responses]
    mrns = {response.json()["mrn"] for response in responses}
    assert len(mrns) == 1
    assert await movements(kz) == sorted(mrns)
    assert sum(response.headers.get("Idempotent-Replayed") == "true" for response in responses) == 9


async def test_a_key_reused_for_another_declaration_is_refused(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """A key names one request: the same key with a different body is a client bug, refused with a pointer at the
    header. Keys belong to their client: another customs system may use the same key for its own declaration."""
    kz = corridor["KZ"]
    headers = {**customs["KZ"], "Idempotency-Key": KEY}
    first = await kz.client.post("/v1/declarations", json=declaration(), headers=headers)
    assert first.status_code == 201, first.text

    other = declaration(seals=["KZ-SEAL-000732"])
    refused = await kz.client.post("/v1/declarations", json=other, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert "different request" in refused.json()["detail"]
    assert [(error["pointer"], error["code"]) for error in refused.json()["errors"]] == [
        ("/header/Idempotency-Key", "14")
    ]
    assert await movements(kz) == [first.json()["mrn"]]

    async with unit_of_work(kz.node) as session:
        _, token = await add_client(session, name="Almaty-2 customs system", role="customs")
    second_system = await kz.client.post(
        "/v1/declarations", json=other, headers={"Authorization": f"Bearer {token}", "Idempotency-Key": KEY}
    )
    assert second_system.status_code == 201, second_system.text
    assert second_system.json()["mrn"] != first.json()["mrn"]
    assert len(await movements(kz)) == 2


async def test_without_a_key_the_same_declaration_twice_is_two_movements(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """No key, no deduplication: two posts are two declarations (two trucks may carry the same load)."""
    kz = corridor["KZ"]
    first = await kz.client.post("/v1/declarations", json=declaration(), headers=customs["KZ"])
    second = await kz.client.post("/v1/declarations", json=declaration(), headers=customs["KZ"])
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["mrn"] != second.json()["mrn"]
    assert await movements(kz) == sorted([first.json()["mrn"], second.json()["mrn"]])
