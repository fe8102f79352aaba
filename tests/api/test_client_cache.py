"""The process's memory of authenticated clients (clients/cache.py): for a few seconds at most, forgotten on
revocation, never of an unknown token, and bounded."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.inprocess import InProcessCorridor
from tests.support.statements import counting
from transit_window import tasks
from transit_window.clients.cache import ClientCache, KnownClient
from transit_window.clients.service import add_client, revoke_client
from transit_window.db.session import unit_of_work

CUSTOMS = KnownClient(id="c-1", name="ASYCUDA Almaty", role="customs", party_id=None)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_is_remembered_for_the_set_seconds_and_no_longer() -> None:
    clock = Clock()
    cache = ClientCache(seconds=15, monotonic=clock)
    cache.put("hash-1", CUSTOMS)
    clock.now += 14.9
    assert cache.get("hash-1") == CUSTOMS
    clock.now += 0.1
    assert cache.get("hash-1") is None


def test_forgetting_a_client_drops_all_its_tokens_and_only_its() -> None:
    cache = ClientCache(seconds=15)
    other = KnownClient(id="c-2", name="Forwarder", role="forwarder", party_id="230340000126")
    cache.put("hash-1", CUSTOMS)
    cache.put("hash-1b", CUSTOMS)
    cache.put("hash-2", other)
    cache.forget("c-1")
    assert (cache.get("hash-1"), cache.get("hash-1b"), cache.get("hash-2")) == (None, None, other)
    cache.forget()
    assert cache.get("hash-2") is None


def test_zero_seconds_remembers_nothing_and_the_size_is_bounded() -> None:
    off = ClientCache(seconds=0)
    off.put("hash-1", CUSTOMS)
    assert off.get("hash-1") is None
    small = ClientCache(seconds=15, capacity=3)
    for index in range(10):
        small.put(f"hash-{index}", CUSTOMS)
    assert len(small._entries) <= 3 and small.get("hash-9") == CUSTOMS


async def test_a_known_client_costs_no_statement(corridor: InProcessCorridor) -> None:
    kz = corridor["KZ"]
    async with unit_of_work(kz.node) as session:
        _, token = await add_client(session, name="customs officer", role="customs")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await kz.client.get("/v1/declarations", headers=headers)).status_code == 200
    with counting({"KZ": kz.node.engine}) as tally:
        assert (await kz.client.get("/v1/declarations", headers=headers)).status_code == 200
    assert not any("api_clients" in sql for sql in tally["KZ"].sql), tally["KZ"]


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
async def test_a_revocation_committed_anywhere_reaches_the_node_s_listener(corridor: InProcessCorridor) -> None:
    """The node's own listener (tasks.listen, as `serve` runs it) hears the revocation's NOTIFY and forgets the
    client; the cache alone would have answered 200 for 15 s more. (Across processes: test_revocation.py.)"""
    kz = corridor["KZ"]
    async with unit_of_work(kz.node) as session:
        client, token = await add_client(session, name="customs officer", role="customs")
    headers = {"Authorization": f"Bearer {token}"}
    stop = asyncio.Event()
    kz.node._wake.clear()
    listener = asyncio.create_task(tasks.listen(kz.node, stop, deliver=False, serve_api=True))
    try:
        await asyncio.wait_for(kz.node._wake.wait(), 10)  # listening: it wakes the worker (and forgets all) on connect
        assert (await kz.client.get("/v1/declarations", headers=headers)).status_code == 200  # remembered now
        async with unit_of_work(kz.node) as session:
            await revoke_client(session, client_id=client.id)
        for _ in range(100):
            if (await kz.client.get("/v1/declarations", headers=headers)).status_code == 401:
                break
            await asyncio.sleep(0.05)
        assert (await kz.client.get("/v1/declarations", headers=headers)).status_code == 401
    finally:
        stop.set()
        await asyncio.wait_for(listener, 10)
