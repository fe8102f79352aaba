"""A forwarder's and a customs officer's receivers get the corridor's tracking events as signed webhooks: every event
once, in order per MRN, each signature checked by the reference Standard Webhooks implementation on a real HTTP
server on loopback; a receiver killed for a while loses nothing; one that keeps failing gets its subscription
disabled with the reason shown, and nothing is lost when it is enabled again."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from tests.support.inprocess import InProcessCorridor
from tests.webhooks.conftest import (
    DECLARANT,
    STEPS,
    Receiver,
    body_of,
    client_for,
    deliver,
    make_due,
    release,
    subscribe,
    take_steps,
)
from transit_window import clock


async def _deliveries(corridor: InProcessCorridor, headers: dict[str, str], subscription: str) -> list[dict[str, Any]]:
    response = await corridor["KZ"].client.get(f"/v1/subscriptions/{subscription}/deliveries", headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _timeline_ids(corridor: InProcessCorridor, headers: dict[str, str], mrn: str) -> list[str]:
    response = await corridor["KZ"].client.get(f"/v1/consignments/{mrn}/timeline", headers=headers)
    assert response.status_code == 200, response.text
    return [event["eventID"] for event in response.json()["events"]]


def _ids_by_mrn(receiver: Receiver, path: str) -> dict[str, list[str]]:
    by_mrn: dict[str, list[str]] = {}
    for payload in receiver.events(path):
        by_mrn.setdefault(payload["data"]["mrn"], []).append(payload["data"]["eventID"])
    return by_mrn


async def test_every_event_arrives_once_in_order_per_mrn_and_a_receiver_killed_for_a_while_loses_nothing(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str, receiver: Receiver
) -> None:
    forwarder = await client_for(corridor, "KZ", role="forwarder", party_id=DECLARANT)
    stranger = await client_for(corridor, "KZ", role="forwarder", party_id="990140000385")
    everything = await subscribe(corridor, forwarder, receiver, "/forwarder")
    crossings = await subscribe(
        corridor, customs["KZ"], receiver, "/customs", event_types=["tracking.exit", "tracking.entry"]
    )
    others = await subscribe(corridor, stranger, receiver, "/stranger")

    first = await release(corridor, customs)
    second = await release(corridor, customs)
    await subscribe(corridor, forwarder, receiver, "/second", mrn=second)  # from now on, this MRN only
    await take_steps(corridor, customs, first, STEPS[:2])  # exit Kazakhstan, enter Uzbekistan (signed by UZ)
    await take_steps(corridor, customs, second, STEPS[:1])

    receiver.stop()  # the forwarder's server goes down
    attempted = await deliver(corridor)
    assert attempted == 5, "one attempt per subscription and MRN: the next event of an MRN waits for the one before"
    log = await _deliveries(corridor, forwarder, everything["id"])
    heads = [item for item in log if item["attempts"] == 1]
    assert {item["mrn"] for item in heads} == {first, second}
    for item in heads:
        assert item["state"] == "pending" and item["response_status"] is None
        assert "ConnectError" in item["last_error"]
        waited = clock.parse(item["next_attempt_at"]) - clock.parse(item["last_attempt_at"])
        assert waited >= timedelta(seconds=corridor["KZ"].settings.webhook_backoff_base_seconds), "backs off"
    assert await deliver(corridor) == 0, "nothing is due while backing off"
    await take_steps(corridor, customs, first, STEPS[2:])  # the rest of the journey happens while it is down
    await make_due(corridor)
    assert await deliver(corridor) == 5

    receiver.start()  # back on the same port
    await make_due(corridor)
    await deliver(corridor)

    assert receiver.rejected == [], "every request verifies with the reference Standard Webhooks implementation"
    ids = Counter(item.headers["webhook-id"] for item in receiver.received)
    assert max(ids.values()) == 1, "no event was sent twice"
    timeline_first = await _timeline_ids(corridor, forwarder, first)
    timeline_second = await _timeline_ids(corridor, forwarder, second)
    assert len(timeline_first) == 8 and len(timeline_second) == 2
    assert _ids_by_mrn(receiver, "/forwarder") == {first: timeline_first, second: timeline_second}
    assert _ids_by_mrn(receiver, "/second") == {second: timeline_second[1:]}
    customs_first = [
        (p["type"], p["data"]["eventID"]) for p in receiver.events("/customs") if p["data"]["mrn"] == first
    ]
    assert customs_first == [
        (kind, event) for kind, event in zip(["tracking.exit", "tracking.entry"] * 2, timeline_first[1:5], strict=True)
    ], "customs get only the crossings they asked for, in order"
    assert [p["data"]["mrn"] for p in receiver.events("/customs")].count(second) == 1
    assert receiver.events("/stranger") == [] and await _deliveries(corridor, stranger, others["id"]) == []

    timeline = (await corridor["KZ"].client.get(f"/v1/consignments/{first}/timeline", headers=forwarder)).json()
    sent = {p["data"]["eventID"]: p for p in receiver.events("/forwarder")}
    for event in timeline["events"]:
        payload = sent[event["eventID"]]
        assert payload["type"] == f"tracking.{event['step']}"
        assert payload["data"] == event, "the webhook carries the event as the timeline shows it"
    entry_uz = sent[timeline["events"][2]["eventID"]]["data"]
    assert (entry_uz["signedBy"], entry_uz["verification"], entry_uz["bizStep"]) == (
        "UZ",
        "verified",
        "entering_exiting",
    )

    log = await _deliveries(corridor, forwarder, everything["id"])
    assert len(log) == 10 and {item["state"] for item in log} == {"delivered"}
    assert sorted(item["attempts"] for item in log if item["mrn"] == first)[-1] == 3
    assert {item["response_status"] for item in log} == {200}
    state = (await corridor["KZ"].client.get(f"/v1/subscriptions/{everything['id']}", headers=forwarder)).json()
    assert state["active"] and state["consecutive_failures"] == 0
    assert "secret" not in state, "the secret is shown only when created or rotated"
    assert {item["state"] for item in await _deliveries(corridor, customs["KZ"], crossings["id"])} == {"delivered"}

    # Redelivery on demand: the same webhook-id and body, a fresh timestamp and signature.
    oldest = log[-1]
    original = next(item for item in receiver.received if item.headers["webhook-id"] == oldest["id"])
    again = await corridor["KZ"].client.post(
        f"/v1/subscriptions/{everything['id']}/deliveries/{oldest['id']}/redeliver", headers=forwarder
    )
    assert again.status_code == 202, again.text
    assert again.json()["state"] == "pending"
    assert await deliver(corridor) == 1
    resent = [item for item in receiver.received if item.headers["webhook-id"] == oldest["id"]]
    assert len(resent) == 2 and resent[1].body == original.body and body_of(resent[1]) == body_of(original)
    assert receiver.rejected == []
    metrics = corridor["KZ"].node.metrics.webhook_deliveries
    assert metrics.labels(outcome="delivered")._value.get() == len(receiver.received)
    assert metrics.labels(outcome="failed")._value.get() == 10


@pytest.mark.parametrize("max_failures", [3])
async def test_a_receiver_that_keeps_failing_gets_its_subscription_disabled_with_the_reason_shown(
    corridor: InProcessCorridor,
    customs: dict[str, dict[str, str]],
    guarantee: str,
    receiver: Receiver,
    max_failures: int,
) -> None:
    forwarder = await client_for(corridor, "KZ", role="forwarder", party_id=DECLARANT)
    subscription = await subscribe(corridor, forwarder, receiver, "/broken")
    receiver.status = 500
    first = await release(corridor, customs)

    for _ in range(max_failures):
        await make_due(corridor)
        assert await deliver(corridor) == 1
    state = (await corridor["KZ"].client.get(f"/v1/subscriptions/{subscription['id']}", headers=forwarder)).json()
    assert state["active"] is False and state["disabled_at"]
    assert "3 consecutive failed attempts" in state["disabled_reason"]
    assert "HTTP 500" in state["disabled_reason"] and "receiver broken" in state["disabled_reason"]
    [held] = await _deliveries(corridor, forwarder, subscription["id"])
    assert (held["state"], held["attempts"], held["response_status"]) == ("failed", 3, 500)

    second = await release(corridor, customs)  # an event while disabled is kept, not sent
    await make_due(corridor)
    assert await deliver(corridor) == 0
    log = await _deliveries(corridor, forwarder, subscription["id"])
    assert [item["state"] for item in log] == ["failed", "failed"]
    refused = await corridor["KZ"].client.post(
        f"/v1/subscriptions/{subscription['id']}/deliveries/{log[0]['id']}/redeliver", headers=forwarder
    )
    assert refused.status_code == 409

    receiver.status = 200  # fixed; the forwarder switches the subscription back on
    enabled = await corridor["KZ"].client.post(f"/v1/subscriptions/{subscription['id']}/enable", headers=forwarder)
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["active"] and enabled.json()["disabled_reason"] is None
    assert await deliver(corridor) == 2
    assert receiver.rejected == []
    delivered = [p["data"]["mrn"] for p in receiver.events("/broken")]
    assert sorted(delivered[-2:]) == sorted([first, second]), "two MRNs: sent side by side, each in its own order"
    assert delivered.count(first) == 4 and delivered.count(second) == 1, "three failed tries, then delivered"
    assert {item["state"] for item in await _deliveries(corridor, forwarder, subscription["id"])} == {"delivered"}
