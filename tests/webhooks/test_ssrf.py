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
    ("http://[2002:7f00:1::]/hook", "loopback (6to4 of 127.0.0.1)"),  # Python 3.11 calls this global (issue 13.6)
    ("http://[2002:a9fe:a9fe::1]/latest/", "link-local (6to4 of 169.254.169.254)"),
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook", "loopback (Teredo via 127.0.0.1)"),
    ("http://[64:ff9b::a00:1]/hook", "private (NAT64 of 10.0.0.1)"),
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


def test_ipv4_inside_ipv6_is_judged_as_the_ipv4_address() -> None:
    """6to4, Teredo and NAT64 addresses lead to the IPv4 address they carry: refused for what that address is, and
    let through when it is public (a DNS64 answer for a public host)."""
    assert refused_kind("2002:7f00:1::") == "loopback (6to4 of 127.0.0.1)"
    assert refused_kind("2002:c0a8:101::5") == "private (6to4 of 192.168.1.1)"
    assert refused_kind("2001:0:4136:e378:8000:63bf:80ff:fffe") == "loopback (Teredo via 127.0.0.1)"
    assert refused_kind("2001:0:4136:e378:8000:63bf:3fff:fdd2") == "private (Teredo via 192.0.2.45)"
    assert refused_kind("64:ff9b::7f00:1") == "loopback (NAT64 of 127.0.0.1)"
    assert refused_kind("64:ff9b:1::808:808") == "non-global (local-use NAT64)"
    assert refused_kind("2002:808:808::1") is None and refused_kind("64:ff9b::808:808") is None


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
