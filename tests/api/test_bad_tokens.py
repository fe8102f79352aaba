"""Guessing bearer tokens: an address that keeps sending unknown tokens gets 429 with Retry-After."""

from __future__ import annotations

from tests.support.inprocess import InProcessCorridor


async def test_repeated_bad_tokens_from_one_address_are_throttled(corridor: InProcessCorridor) -> None:
    kz = corridor["KZ"]
    limit = kz.node.settings.bad_token_limit
    for attempt in range(limit):
        response = await kz.client.get("/v1/admin/status", headers={"Authorization": f"Bearer tw_guess{attempt}"})
        assert response.status_code == 401, response.text
    throttled = await kz.client.get("/v1/admin/status", headers={"Authorization": "Bearer tw_guess-more"})
    assert throttled.status_code == 429
    assert throttled.headers["content-type"] == "application/problem+json"
    assert int(throttled.headers["retry-after"]) >= 1
    assert "unknown or revoked token" in throttled.json()["detail"]
    # the throttle is per address: a client elsewhere is not affected
    kz.node.bad_tokens.check("192.0.2.10")


async def test_missing_tokens_are_not_counted_as_guesses(corridor: InProcessCorridor) -> None:
    kz = corridor["KZ"]
    for _ in range(kz.node.settings.bad_token_limit + 5):
        assert (await kz.client.get("/v1/admin/status")).status_code == 401
    assert (await kz.client.get("/v1/admin/status", headers=kz.admin)).status_code == 200
