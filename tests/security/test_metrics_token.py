"""`/metrics` behind the operator's token (issue 13.8): with TW_METRICS_TOKEN set only its bearer reads the metrics —
not an anonymous caller, not a wrong token, not even an admin client's token; unset, /metrics stays public (the
authorization matrix, tests/security/routes.py, runs with it unset)."""

from __future__ import annotations

from pydantic import SecretStr

from tests.support.inprocess import InProcessCorridor
from transit_window.settings import Settings

METRICS_TOKEN = "tw_metrics_6Gx2vQk9Lr4TzWb8"


async def test_metrics_need_the_metrics_token_when_one_is_set(corridor: InProcessCorridor) -> None:
    kz = corridor["KZ"]
    assert Settings().metrics_token is None
    assert (await kz.client.get("/metrics")).status_code == 200  # the default: public
    kz.node.settings.metrics_token = SecretStr(METRICS_TOKEN)
    for headers in ({}, {"Authorization": "Bearer tw_metrics_wrong"}, kz.admin, {"Authorization": METRICS_TOKEN}):
        refused = await kz.client.get("/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "# TYPE" not in refused.text
    answered = await kz.client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert answered.status_code == 200 and "# TYPE tw_outbox_messages" in answered.text
    # the rest of the node is unaffected: health stays public, the admin token still works where it belongs
    assert (await kz.client.get("/healthz")).status_code == 200
    assert (await kz.client.get("/v1/admin/status", headers=kz.admin)).status_code == 200


async def test_wrong_metrics_tokens_are_throttled_like_unknown_client_tokens(corridor: InProcessCorridor) -> None:
    kz = corridor["KZ"]
    kz.node.settings.metrics_token = SecretStr(METRICS_TOKEN)
    for attempt in range(kz.node.settings.bad_token_limit):
        wrong = {"Authorization": f"Bearer tw_metrics_guess{attempt}"}
        assert (await kz.client.get("/metrics", headers=wrong)).status_code == 401
    assert (await kz.client.get("/metrics", headers={"Authorization": "Bearer again"})).status_code == 429
    assert (await kz.client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})).status_code == 200
