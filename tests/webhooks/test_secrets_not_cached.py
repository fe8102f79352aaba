"""Answers that hand out a secret or a token are never cached (issue 13.8): `Cache-Control: no-store` on the webhook
secret (created and rotated), the tracking code (in a movement and when rotated), and not on answers without one."""

from __future__ import annotations

from tests.support.inprocess import InProcessCorridor
from tests.webhooks.conftest import DECLARANT, Receiver, client_for, release


async def test_secrets_and_tracking_codes_are_answered_with_no_store(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str, receiver: Receiver
) -> None:
    kz = corridor["KZ"].client
    forwarder = await client_for(corridor, "KZ", role="forwarder", party_id=DECLARANT)
    created = await kz.post("/v1/subscriptions", json={"url": receiver.url("/hook")}, headers=forwarder)
    assert created.status_code == 201 and created.json()["secret"].startswith("whsec_")
    assert created.headers["cache-control"] == "no-store"
    rotated = await kz.post(f"/v1/subscriptions/{created.json()['id']}/secret", headers=forwarder)
    assert rotated.status_code == 200 and rotated.json()["secret"].startswith("whsec_")
    assert rotated.headers["cache-control"] == "no-store"
    listed = await kz.get("/v1/subscriptions", headers=forwarder)  # no secret in it: cacheable as before
    assert listed.status_code == 200 and "cache-control" not in listed.headers

    mrn = await release(corridor, customs)
    movement = await kz.get(f"/v1/declarations/{mrn}", headers=customs["KZ"])
    assert movement.json()["tracking_code"] and movement.headers["cache-control"] == "no-store"
    code = await kz.post(f"/v1/consignments/{mrn}/tracking-code", headers=customs["KZ"])
    assert code.status_code == 200, code.text
    assert code.headers["cache-control"] == "no-store"
    # an error from such a route carries no secret, and is not cached either
    missing = await kz.get("/v1/declarations/26KZALA0000000000", headers=customs["KZ"])
    assert missing.status_code in (404, 422) and missing.headers["cache-control"] == "no-store"
