"""The node will not be turned into a proxy into its own network: webhook URLs must be http(s) and reach only public
addresses unless the operator allows private targets — checked when subscribing and again before every attempt."""

from __future__ import annotations

import pytest

from tests.support.inprocess import InProcessCorridor
from tests.webhooks.conftest import DECLARANT, Receiver, client_for, deliver, make_due, release
from transit_window.webhooks.service import TargetRefused, refused_kind, resolve_target


@pytest.fixture
def allow_private_targets() -> bool:
    return False  # the default an operator gets


REFUSED = [
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://localhost:8080/hook", "loopback"),  # a name that resolves to loopback
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),  # the cloud metadata service
    ("http://10.0.0.1/hook", "private"),
    ("https://192.168.1.20/hook", "private"),
    ("http://100.64.0.1/hook", "non-global"),
    ("http://0.0.0.0:80/hook", "unspecified"),
    ("http://224.0.0.1/hook", "multicast"),
    ("ftp://203.0.113.9/hook", "only http and https"),
    ("file:///etc/passwd", "only http and https"),
    ("http://user:pw@203.0.113.9/hook", "credentials"),
]


async def test_a_forwarder_cannot_point_a_subscription_at_the_nodes_own_network(corridor: InProcessCorridor) -> None:
    forwarder = await client_for(corridor, "KZ", role="forwarder", party_id=DECLARANT)
    for url, reason in REFUSED:
        response = await corridor["KZ"].client.post("/v1/subscriptions", json={"url": url}, headers=forwarder)
        assert response.status_code == 422, (url, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["errors"][0]["pointer"] == "/body/url" and problem["errors"][0]["code"] == "target-refused"
        assert reason in problem["detail"], (url, problem["detail"])
    listed = await corridor["KZ"].client.get("/v1/subscriptions", headers=forwarder)
    assert listed.json()["items"] == []


async def test_public_addresses_pass_the_guard_and_the_request_goes_to_the_checked_address() -> None:
    """No network needed: an IP literal resolves to itself."""
    target = await resolve_target("https://8.8.8.8:8443/hooks?x=1", allow_private=False)
    assert target.url == "https://8.8.8.8:8443/hooks?x=1" and target.host_header == "8.8.8.8:8443"
    assert refused_kind("8.8.8.8") is None and refused_kind("2001:4860:4860::8888") is None
    local = await resolve_target("http://localhost:9/x", allow_private=True)
    assert local.address in ("127.0.0.1", "::1") and local.host_header == "localhost:9"
    assert local.server_name == "localhost"
    with pytest.raises(TargetRefused, match="link-local"):
        await resolve_target("http://[fe80::1]/x", allow_private=False)


async def test_the_target_is_checked_again_before_every_attempt(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str, receiver: Receiver
) -> None:
    """A subscription made while the operator allowed private targets is not called once the allowance is
    withdrawn (as after a restart with TW_WEBHOOK_ALLOW_PRIVATE_TARGETS=false): refused before connecting."""
    settings = corridor["KZ"].node.settings
    forwarder = await client_for(corridor, "KZ", role="forwarder", party_id=DECLARANT)
    settings.webhook_allow_private_targets = True
    created = await corridor["KZ"].client.post(
        "/v1/subscriptions", json={"url": receiver.url("/hook")}, headers=forwarder
    )
    assert created.status_code == 201, created.text
    receiver.secrets["/hook"] = created.json()["secret"]
    settings.webhook_allow_private_targets = False

    await release(corridor, customs)
    assert await deliver(corridor) == 1
    assert receiver.received == [] and receiver.rejected == [], "nothing reached the receiver"
    log = await corridor["KZ"].client.get(f"/v1/subscriptions/{created.json()['id']}/deliveries", headers=forwarder)
    [item] = log.json()["items"]
    assert item["state"] == "pending" and item["attempts"] == 1
    assert "target refused" in item["last_error"] and "loopback" in item["last_error"]
    assert corridor["KZ"].node.metrics.webhook_deliveries.labels(outcome="refused")._value.get() == 1

    settings.webhook_allow_private_targets = True  # the operator allows it again
    await make_due(corridor)
    assert await deliver(corridor) == 1
    assert len(receiver.received) == 1 and receiver.rejected == []
