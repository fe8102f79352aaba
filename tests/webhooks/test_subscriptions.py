"""Managing subscriptions: the secret is shown once and can be rotated without dropping a delivery, another
forwarder's subscription does not exist for you (404), only forwarders and customs may subscribe, and a
subscription belongs to the client that made it: the node's other customs clients (or the party's other forwarder
clients) read it, only its maker or an admin rotates its secret, deletes, re-enables it or reads its deliveries."""

from __future__ import annotations

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support.inprocess import InProcessCorridor
from tests.webhooks.conftest import DECLARANT, Receiver, client_for, deliver, release, subscribe


async def test_the_secret_is_shown_once_and_rotation_keeps_the_old_one_signing_for_a_grace_period(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str, receiver: Receiver
) -> None:
    kz = corridor["KZ"].client
    forwarder = await client_for(corridor, "KZ", role="forwarder", party_id=DECLARANT)
    created = await subscribe(corridor, forwarder, receiver, "/hook", event_types=["tracking.released"])
    old_secret = created["secret"]
    assert len(Webhook(old_secret)._whsecret) == 32, "whsec_ + base64 of 32 random bytes"
    for response in (
        await kz.get(f"/v1/subscriptions/{created['id']}", headers=forwarder),
        await kz.get("/v1/subscriptions", headers=forwarder),
    ):
        assert response.status_code == 200 and old_secret not in response.text and 'secret"' not in response.text

    rotated = await kz.post(f"/v1/subscriptions/{created['id']}/secret", headers=forwarder)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != old_secret
    receiver.secrets["/hook"] = new_secret  # the receiver switches to the new secret
    await release(corridor, customs)
    assert await deliver(corridor) == 1
    assert receiver.rejected == []
    [sent] = receiver.received
    assert len(sent.headers["webhook-signature"].split(" ")) == 2, "signed with the new and the old secret"
    Webhook(old_secret).verify(sent.body, sent.headers)  # a receiver still on the old secret accepts it too
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(sent.body.replace(b"released", b"arrived"), sent.headers)
    state = (await kz.get(f"/v1/subscriptions/{created['id']}", headers=forwarder)).json()
    assert state["previous_secret_valid_until"] == rotated.json()["previous_secret_valid_until"]


async def test_another_forwarders_subscription_is_not_found_and_roles_are_enforced(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], receiver: Receiver
) -> None:
    kz = corridor["KZ"].client
    owner = await client_for(corridor, "KZ", role="forwarder", party_id=DECLARANT)
    colleague = await client_for(corridor, "KZ", role="forwarder", party_id=DECLARANT)  # same party, other token
    other = await client_for(corridor, "KZ", role="forwarder", party_id="990140000385")
    device = await client_for(corridor, "KZ", role="device", party_id=None)
    mine = await subscribe(corridor, owner, receiver, "/mine")
    theirs = await subscribe(corridor, customs["KZ"], receiver, "/customs")
    path = f"/v1/subscriptions/{mine['id']}"
    delivery = "0190a0b0-0000-7000-8000-000000000000"
    for method, url in (
        ("GET", path),
        ("DELETE", path),
        ("POST", f"{path}/secret"),
        ("POST", f"{path}/enable"),
        ("GET", f"{path}/deliveries"),
        ("POST", f"{path}/deliveries/{delivery}/redeliver"),
    ):
        response = await kz.request(method, url, headers=other)
        assert response.status_code == 404, (method, url, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert (await kz.request(method, url, headers=device)).status_code == 403
        assert (await kz.request(method, url)).status_code == 401
    assert (await kz.get(f"/v1/subscriptions/{theirs['id']}", headers=owner)).status_code == 404
    assert (await kz.get("/v1/subscriptions", headers=other)).json()["items"] == []
    assert [item["id"] for item in (await kz.get("/v1/subscriptions", headers=colleague)).json()["items"]] == [
        mine["id"]
    ]
    customs_list = (await kz.get("/v1/subscriptions", headers=customs["KZ"])).json()["items"]
    assert [item["id"] for item in customs_list] == [theirs["id"]]
    refused = await kz.post("/v1/subscriptions", json={"url": receiver.url("/x")}, headers=device)
    assert refused.status_code == 403
    unknown = await kz.post(
        "/v1/subscriptions", json={"url": receiver.url("/x"), "mrn": "26KZALA000000123J7"}, headers=owner
    )
    assert unknown.status_code == 404, "a consignment the forwarder may not see cannot be subscribed to"
    bad_type = await kz.post(
        "/v1/subscriptions", json={"url": receiver.url("/x"), "event_types": ["tracking.nope"]}, headers=owner
    )
    assert bad_type.status_code == 422 and "tracking.nope" in bad_type.text

    page = await kz.get("/v1/subscriptions?limit=1", headers=owner)
    assert page.json()["next"] is None
    deleted = await kz.delete(path, headers=owner)
    assert deleted.status_code == 204
    assert (await kz.get(path, headers=owner)).status_code == 404


async def test_another_customs_client_reads_a_subscription_but_cannot_take_it_over(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str, receiver: Receiver
) -> None:
    """Issue 13, finding 4: a second customs client of KZ listed the first one's subscription, rotated its secret
    (and could then sign deliveries to the first one's receiver), read its deliveries and deleted it. Now it still
    reads it, and every action is a 403 problem saying who may; deliveries stay signed with the maker's secret
    alone. An admin may act on it (the operator stopping a subscription whose maker cannot)."""
    del guarantee
    kz = corridor["KZ"].client
    mine = await subscribe(corridor, customs["KZ"], receiver, "/customs")
    second = await client_for(corridor, "KZ", role="customs", party_id=None)
    await release(corridor, customs)
    assert await deliver(corridor) == 1
    path = f"/v1/subscriptions/{mine['id']}"
    [delivery] = (await kz.get(f"{path}/deliveries", headers=customs["KZ"])).json()["items"]

    assert [item["id"] for item in (await kz.get("/v1/subscriptions", headers=second)).json()["items"]] == [mine["id"]]
    assert (await kz.get(path, headers=second)).status_code == 200
    for method, url in (
        ("POST", f"{path}/secret"),
        ("GET", f"{path}/deliveries"),
        ("POST", f"{path}/deliveries/{delivery['id']}/redeliver"),
        ("POST", f"{path}/enable"),
        ("DELETE", path),
    ):
        refused = await kz.request(method, url, headers=second)
        assert refused.status_code == 403, (method, url, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert "only that client or an admin" in refused.json()["detail"]
        assert "whsec_" not in refused.text and "event_id" not in refused.text
    state = (await kz.get(path, headers=customs["KZ"])).json()
    assert state["previous_secret_valid_until"] is None, "the secret was not rotated"
    redelivered = await kz.post(f"{path}/deliveries/{delivery['id']}/redeliver", headers=customs["KZ"])
    assert redelivered.status_code == 202, redelivered.text
    assert await deliver(corridor) == 1
    assert receiver.rejected == [] and len(receiver.received) == 2
    assert " " not in receiver.received[-1].headers["webhook-signature"], "signed with the maker's secret only"

    rotated = await kz.post(f"{path}/secret", headers=corridor["KZ"].admin)
    assert rotated.status_code == 200 and rotated.json()["secret"].startswith("whsec_")
    assert (await kz.delete(path, headers=second)).status_code == 403
    assert (await kz.delete(path, headers=corridor["KZ"].admin)).status_code == 204
    assert (await kz.get(path, headers=customs["KZ"])).status_code == 404


async def test_a_forwarders_colleague_reads_its_partys_subscription_but_only_its_maker_acts_on_it(
    corridor: InProcessCorridor, receiver: Receiver
) -> None:
    kz = corridor["KZ"].client
    maker = await client_for(corridor, "KZ", role="forwarder", party_id=DECLARANT)
    colleague = await client_for(corridor, "KZ", role="forwarder", party_id=DECLARANT)
    made = await subscribe(corridor, maker, receiver, "/ours")
    path = f"/v1/subscriptions/{made['id']}"
    assert (await kz.get(path, headers=colleague)).status_code == 200
    for method, url in (("POST", f"{path}/secret"), ("GET", f"{path}/deliveries"), ("DELETE", path)):
        refused = await kz.request(method, url, headers=colleague)
        assert refused.status_code == 403, (method, url, refused.text)
    assert (await kz.get(f"{path}/deliveries", headers=maker)).status_code == 200
    assert (await kz.delete(path, headers=maker)).status_code == 204
