"""Three real node processes on loopback, each on its own PostgreSQL database, ping each other over HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.corridor.conftest import StartCorridor

pytestmark = pytest.mark.corridor

NODES = ["KZ", "UZ", "TM"]
PINGS = 10


def test_three_nodes_ping_each_other_and_every_receipt_is_verified_by_its_sender(
    start_corridor: StartCorridor,
) -> None:
    """KZ, UZ and TM each ping the other two; every ping arrives once and its sender holds a verified receipt."""
    corridor = start_corridor(NODES)
    for node in NODES:
        status = corridor.status(node)
        assert (status["node"], status["trust_version"], sorted(status["members"])) == (node, 1, sorted(NODES))

    for node in NODES:
        result = corridor.admin(node, "POST", "/v1/admin/pings", json={"note": f"salem from {node}", "count": PINGS})
        assert sorted(result["messages"]) == sorted(set(NODES) - {node})
        assert result["sent"] == PINGS * 2

    corridor.wait_until(
        "every node shows its pings to both peers delivered",
        lambda: all(corridor.all_delivered(node, peer, PINGS) for node in NODES for peer in NODES if peer != node),
    )

    for sender in NODES:
        for peer in NODES:
            if peer != sender:
                corridor.assert_delivered_once(sender, peer, count=PINGS)

    for node in NODES:
        peers = [peer for peer in NODES if peer != node]
        # The operator's view over HTTP: delivered pings with the peer's accepted receipt, no gaps inbound.
        delivered = corridor.admin(node, "GET", "/v1/admin/outbox", params={"state": "delivered", "limit": 500})
        pings = [item for item in delivered["items"] if item["type"] == "corridor.ping"]
        assert len(pings) == PINGS * 2
        assert {item["receipt_status"] for item in pings} == {"accepted"}
        assert {item["peer"] for item in pings} == set(peers)
        inbound = corridor.status(node)["inbound"]
        assert all(inbound[peer]["contiguous"] >= PINGS for peer in peers), inbound
        # Prometheus: the receipts the worker verified, the messages the inbox accepted, nothing refused.
        for peer in peers:
            assert corridor.counter(node, "tw_deliveries", peer=peer, outcome="delivered") >= PINGS
        assert corridor.counter(node, "tw_inbox_messages", outcome="accepted") >= PINGS * 2
        assert corridor.counter(node, "tw_inbox_messages", outcome="refused") == 0
        assert corridor.counter(node, "tw_inbox_messages", outcome="duplicate") == 0

    def no_gaps() -> bool:
        statuses = [corridor.status(node)["inbound"] for node in NODES]
        return all(seen["max_seen"] == seen["contiguous"] for inbound in statuses for seen in inbound.values())

    # Batches may overtake each other (delivery lanes); in the end every node holds each sender's sequence whole.
    corridor.wait_until("no node sees a gap in any sender's sequence", no_gaps)
