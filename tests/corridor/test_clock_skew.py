"""A node whose clock runs ten minutes ahead: its peers refuse what it signs with a reason that names the clock, and
its operator sees it in the outbox (the row's last error) and in /metrics (`tw_delivery_failures_total` by reason).
Once the clock is right, new messages go through at once; what it signed while ahead stays queued until real time
reaches its `iat` (less the allowed skew), never dropped.

The skew is real: the process runs under libfaketime (Debian's `faketime`, installed by `make test` as root), so
the node, its key and its database see nothing unusual. Skipped locally without it; under CI a failure."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.corridor.conftest import require_libfaketime

if TYPE_CHECKING:
    from tests.corridor.conftest import StartCorridor

pytestmark = pytest.mark.corridor


def test_a_node_ten_minutes_ahead_is_refused_with_a_reason_in_its_outbox_and_metrics(
    start_corridor: StartCorridor,
) -> None:
    libfaketime = require_libfaketime("the clock-skew test")
    ahead = {"LD_PRELOAD": str(libfaketime), "FAKETIME": "+10m", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    corridor = start_corridor(["KZ", "UZ"], node_env={"KZ": ahead})

    sent = corridor.admin("KZ", "POST", "/v1/admin/pings", json={"to": ["UZ"], "note": "what time is it?"})
    message_id = sent["messages"]["UZ"]

    def refused() -> bool:
        rows = corridor.admin("KZ", "GET", "/v1/admin/outbox", params={"peer": "UZ"})["items"]
        row = next((item for item in rows if item["id"] == message_id), None)
        return row is not None and "clock" in (row.get("last_error") or "")

    corridor.wait_until("UZ refused KZ's ping for its clock", refused)
    rows = corridor.admin("KZ", "GET", "/v1/admin/outbox", params={"peer": "UZ"})["items"]
    row = next(item for item in rows if item["id"] == message_id)
    assert row["state"] == "pending" and row["attempts"] >= 1  # kept and retried, not dropped
    assert "s ahead of this node's clock" in row["last_error"], row["last_error"]
    assert corridor.counter("KZ", "tw_delivery_failures", peer="UZ", reason="future-iat") >= 1
    assert corridor.counter("UZ", "tw_inbox_messages", outcome="accepted") == 0

    corridor.process("KZ").stop()  # the operator fixes the clock (NTP) and restarts the node
    for name in ahead:
        corridor.process("KZ").env.pop(name)
    corridor.start_node("KZ")
    after = corridor.admin("KZ", "POST", "/v1/admin/pings", json={"to": ["UZ"], "note": "clock fixed"})
    fresh_id = after["messages"]["UZ"]

    def fresh_delivered() -> bool:
        rows = corridor.admin("KZ", "GET", "/v1/admin/outbox", params={"peer": "UZ"})["items"]
        return any(item["id"] == fresh_id and item["state"] == "delivered" for item in rows)

    corridor.wait_until("a message signed with the right time delivered", fresh_delivered)
    rows = corridor.admin("KZ", "GET", "/v1/admin/outbox", params={"peer": "UZ"})["items"]
    early = next(item for item in rows if item["id"] == message_id)
    # What KZ signed while ahead carries that time: it stays queued (not dead, not dropped) until real time reaches
    # its iat less the allowed skew, then goes through like any retry.
    assert early["state"] == "pending" and "ahead of this node's clock" in early["last_error"]
