"""Guessing bearer tokens: unknown tokens are throttled per address and for the whole node (429 with Retry-After);
a valid token is answered whatever its address sent before; `X-Forwarded-For` counts only from a trusted proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.support import databases, keys
from tests.support.inprocess import InProcessCorridor, InProcessNode
from transit_window.cli import main as cli
from transit_window.settings import Settings


def guess(attempt: int | str, *, forwarded_for: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer tw_guess{attempt}"}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    return headers


async def test_repeated_bad_tokens_from_one_address_are_throttled(corridor: InProcessCorridor) -> None:
    kz = corridor["KZ"]
    limit = kz.node.settings.bad_token_limit
    for attempt in range(limit):
        response = await kz.client.get("/v1/admin/status", headers=guess(attempt))
        assert response.status_code == 401, response.text
    throttled = await kz.client.get("/v1/admin/status", headers=guess("-more"))
    assert throttled.status_code == 429
    assert throttled.headers["content-type"] == "application/problem+json"
    assert int(throttled.headers["retry-after"]) >= 1
    assert "unknown or revoked token from this address" in throttled.json()["detail"]
    # the throttle is per address: a client elsewhere is not affected
    kz.node.bad_tokens.check("192.0.2.10")


async def test_a_valid_token_is_answered_after_bad_tokens_from_its_address(corridor: InProcessCorridor) -> None:
    """Finding 13.3: one bad client behind a shared address (NAT, container proxy) must not lock out the others."""
    kz = corridor["KZ"]
    for attempt in range(kz.node.settings.bad_token_limit + 10):
        assert (await kz.client.get("/v1/admin/status", headers=guess(attempt))).status_code in (401, 429)
    assert (await kz.client.get("/v1/admin/status", headers=guess("-again"))).status_code == 429
    for _ in range(3):
        assert (await kz.client.get("/v1/admin/status", headers=kz.admin)).status_code == 200


async def test_forwarded_for_is_ignored_without_a_trusted_proxy(corridor: InProcessCorridor) -> None:
    """By default the client is the connection's peer: a forged X-Forwarded-For per request does not dodge the limit,
    and X-Forwarded-For: 10.9.9.9 cannot be made to stand for someone else."""
    kz = corridor["KZ"]
    assert kz.node.settings.trusted_proxies == ""
    for attempt in range(kz.node.settings.bad_token_limit):
        response = await kz.client.get("/v1/admin/status", headers=guess(attempt, forwarded_for=f"10.9.{attempt}.1"))
        assert response.status_code == 401
    dodging = await kz.client.get("/v1/admin/status", headers=guess("-x", forwarded_for="10.99.99.99"))
    assert dodging.status_code == 429
    valid = {**kz.admin, "X-Forwarded-For": "10.99.99.99"}
    assert (await kz.client.get("/v1/admin/status", headers=valid)).status_code == 200


def test_serve_does_not_let_uvicorn_trust_forwarded_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uvicorn believes X-Forwarded-For from 127.0.0.1 unless told not to; `serve` tells it, in both of its modes
    (the app applies TW_TRUSTED_PROXIES itself, so each worker process does too)."""
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    monkeypatch.setattr("transit_window.app.create_app", lambda settings: object())
    monkeypatch.setattr(cli.logs, "configure", lambda **_: None)
    for workers in ("1", "3"):
        monkeypatch.setenv("TW_WORKERS", workers)
        cli.serve()
    assert [call.get("workers", 1) for call in calls] == [1, 3]
    assert all(call["proxy_headers"] is False for call in calls)


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    assert Settings(trusted_proxies=" 10.0.0.1, 172.16.0.0/12 ,::1").trusted_proxy_list == [
        "10.0.0.1",
        "172.16.0.0/12",
        "::1",
    ]
    for wrong in ("*", "proxy.local", "10.0.0.0/33"):
        with pytest.raises(ValidationError, match="TW_TRUSTED_PROXIES"):
            Settings(trusted_proxies=wrong)


@pytest.fixture
async def behind_proxy(
    node_databases: dict[str, str], members: dict[str, keys.TestMember], genesis: tuple[Path, str]
) -> AsyncIterator[InProcessNode]:
    """KZ behind a reverse proxy on 127.0.0.1 (the in-process transport's peer address), global limit 30."""
    await databases.truncate(node_databases["KZ"])
    trust_file, sha = genesis
    corridor = InProcessCorridor()
    try:
        yield await corridor.add_node(
            members["KZ"],
            database_url=node_databases["KZ"],
            trust_file=trust_file,
            genesis_sha256=sha,
            trusted_proxies="127.0.0.1",
            bad_token_global_limit=30,
        )
    finally:
        await corridor.close()


async def test_a_trusted_proxy_names_the_client(behind_proxy: InProcessNode) -> None:
    kz = behind_proxy
    for attempt in range(kz.node.settings.bad_token_limit):
        response = await kz.client.get("/v1/admin/status", headers=guess(attempt, forwarded_for="10.9.9.9"))
        assert response.status_code == 401
    assert (await kz.client.get("/v1/admin/status", headers=guess("-9", forwarded_for="10.9.9.9"))).status_code == 429
    # another client behind the same proxy is not affected, and a valid token from the throttled one is answered
    assert (await kz.client.get("/v1/admin/status", headers=guess("-8", forwarded_for="10.9.9.8"))).status_code == 401
    valid = {**kz.admin, "X-Forwarded-For": "10.9.9.9"}
    assert (await kz.client.get("/v1/admin/status", headers=valid)).status_code == 200


async def test_rotating_addresses_reaches_the_global_limit(behind_proxy: InProcessNode) -> None:
    kz = behind_proxy
    for attempt in range(30):
        response = await kz.client.get("/v1/admin/status", headers=guess(attempt, forwarded_for=f"10.8.0.{attempt}"))
        assert response.status_code == 401, attempt
    throttled = await kz.client.get("/v1/admin/status", headers=guess("-new", forwarded_for="10.8.1.1"))
    assert throttled.status_code == 429
    assert "to this node" in throttled.json()["detail"]
    assert int(throttled.headers["retry-after"]) >= 1
    assert (await kz.client.get("/v1/admin/status", headers=kz.admin)).status_code == 200


async def test_missing_tokens_are_not_counted_as_guesses(corridor: InProcessCorridor) -> None:
    kz = corridor["KZ"]
    for _ in range(kz.node.settings.bad_token_limit + 5):
        assert (await kz.client.get("/v1/admin/status")).status_code == 401
    assert (await kz.client.get("/v1/admin/status", headers=kz.admin)).status_code == 200


def test_the_throttle_forgets_addresses_whose_failures_left_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Addresses that never come back were kept forever: 100 windows of 200 fresh addresses left 20,000 entries."""
    from transit_window.clients import throttle as module

    clock_now = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock_now[0])
    throttle = module.BadTokenThrottle(limit=20, window_seconds=60, global_limit=200)
    for window in range(100):
        for index in range(200):
            throttle.refuse_unknown(f"2001:db8::{window:x}:{index:x}")
        clock_now[0] += 61
    throttle.check("192.0.2.1")  # a look after the last window expires it
    assert len(throttle._failures) == 0 and len(throttle._all) == 0
