"""`transit-window webhooks listen` (and the receiver `make demo` runs): a subscription that brings the receiver's
own secret is delivered to it and verified by the reference implementation; anything not signed with that secret is
answered 401 and counted, never printed as an event; a secret of the wrong shape is refused at subscription time."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.inprocess import InProcessCorridor
from tests.webhooks.conftest import DECLARANT, client_for, deliver, release
from transit_window.webhooks import signing
from transit_window.webhooks.listener import Listener


@pytest.fixture
def listener() -> Iterator[tuple[Listener, list[str]]]:
    lines: list[str] = []
    started = Listener(secret=signing.new_secret(), out=lines.append)
    started.start()
    yield started, lines
    started.stop()


async def test_a_subscription_with_the_receivers_own_secret_is_delivered_and_verified_there(
    corridor: InProcessCorridor,
    customs: dict[str, dict[str, str]],
    guarantee: str,
    listener: tuple[Listener, list[str]],
) -> None:
    del guarantee
    receiver, lines = listener
    forwarder = await client_for(corridor, "KZ", role="forwarder", party_id=DECLARANT)
    created = await corridor["KZ"].client.post(
        "/v1/subscriptions",
        json={"url": receiver.url, "secret": receiver.secret, "event_types": ["tracking.released"]},
        headers=forwarder,
    )
    assert created.status_code == 201, created.text
    assert created.json()["secret"] == receiver.secret  # answered once, like a secret the node made

    mrn = await release(corridor, customs)
    assert await deliver(corridor) == 1
    assert (receiver.received, receiver.refused) == (1, 0)
    [line] = lines
    assert line.startswith(f"tracking.released {mrn} at KZALA001 ") and "signed by KZ" in line
    assert receiver.secret not in line and receiver.secret.removeprefix("whsec_") not in line
    deliveries = await corridor["KZ"].client.get(
        f"/v1/subscriptions/{created.json()['id']}/deliveries", headers=forwarder
    )
    assert [(item["state"], item["response_status"]) for item in deliveries.json()["items"]] == [("delivered", 204)]


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "starts with whsec_"),
        ("whsec_" + base64.b64encode(b"sixteen bytes!!!").decode(), "24 to 64 bytes, not 16"),
        ("whsec_" + base64.b64encode(bytes(65)).decode(), "24 to 64 bytes, not 65"),
        ("whsec_not*base64*at*all*not*base64*at*all", "standard base64"),
    ],
)
async def test_a_secret_of_the_wrong_shape_is_refused(
    corridor: InProcessCorridor, listener: tuple[Listener, list[str]], secret: str, why: str
) -> None:
    forwarder = await client_for(corridor, "KZ", role="forwarder", party_id=DECLARANT)
    refused = await corridor["KZ"].client.post(
        "/v1/subscriptions", json={"url": listener[0].url, "secret": secret}, headers=forwarder
    )
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["errors"]
    assert error["pointer"] == "/body/secret" and why in error["detail"], error


def test_the_listener_answers_401_to_anything_not_signed_with_its_secret(listener: tuple[Listener, list[str]]) -> None:
    receiver, lines = listener
    body = b'{"type": "tracking.exit", "data": {"mrn": "26KZALA000000001J5", "bizLocation": {"office": "KZZHZ001"}}}'
    now = datetime.now(UTC)
    signed = Webhook(receiver.secret).sign("msg_1", now, body)  # the reference implementation signs
    good = {"webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signed}
    stranger = Webhook(signing.new_secret()).sign("msg_1", now, body)
    stale = now - timedelta(minutes=10)
    with httpx.Client() as http:
        assert http.post(receiver.url, content=body, headers=good).status_code == 204
        for headers, content in (
            ({**good, "webhook-signature": stranger}, body),  # another secret
            (good, body.replace(b"exit", b"entry")),  # a changed body
            ({**good, "webhook-timestamp": str(int(stale.timestamp()))}, body),  # replayed later
            ({"webhook-id": "msg_1"}, body),  # unsigned
        ):
            answer = http.post(receiver.url, content=content, headers=headers)
            assert answer.status_code == 401, answer.text
    assert (receiver.received, receiver.refused) == (1, 4)
    assert lines[0].startswith("tracking.exit 26KZALA000000001J5 at KZZHZ001 ")
    assert all(line.startswith("refused ") for line in lines[1:])
