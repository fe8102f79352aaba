"""The corridor changes its own trust list, node processes over HTTP on PostgreSQL, admins using the CLI.

Given KZ, UZ and TM running (genesis threshold 2), when Kazakhstan's admin proposes a renewal through its node's API,
then Uzbekistan's admin sees it waiting with `transit-window proposals list`, approves it with `proposals approve`,
and version 2 is adopted by every node without anyone loading a file; Turkmenistan's admin objects to a later
proposal with `proposals object`, and Kazakhstan's node shows the reason.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from tests.corridor.conftest import StartCorridor


def proposals_cli(corridor: Any, node: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **corridor.process(node).env,
        "TW_NODE_URL": corridor.local.spec(node).url,
        "TW_ADMIN_TOKEN": corridor.local.token(node, "admin"),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "transit_window", "proposals", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_renewal_proposed_at_one_node_is_approved_with_the_cli_at_another_and_adopted_by_all(
    start_corridor: StartCorridor,
) -> None:
    corridor = start_corridor(["KZ", "UZ", "TM"])
    proposal = corridor.admin("KZ", "POST", "/v1/corridor/proposals", json={"changes": [{"kind": "renew"}]})
    assert proposal["waiting_for"] == ["UZ", "TM"]

    def waiting_at(node: str) -> bool:
        listed = corridor.admin(node, "GET", "/v1/corridor/proposals", params={"state": "open"})["items"]
        return [item["id"] for item in listed] == [proposal["id"]]

    corridor.wait_until("UZ and TM hold the proposal", lambda: waiting_at("UZ") and waiting_at("TM"))
    listed = proposals_cli(corridor, "UZ", "list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert proposal["id"] in listed.stdout and "expires" in listed.stdout

    approved = proposals_cli(corridor, "UZ", "approve", proposal["id"])
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert "version 2 adopted and sent to every member" in approved.stdout

    def everyone_at_2() -> bool:
        return all(corridor.admin(node, "GET", "/v1/admin/status")["trust_version"] == 2 for node in ("KZ", "UZ", "TM"))

    corridor.wait_until("every node adopted version 2", everyone_at_2)
    shown = proposals_cli(corridor, "KZ", "show", proposal["id"])
    assert shown.returncode == 0 and "adopted" in shown.stdout, shown.stdout + shown.stderr
    again = proposals_cli(corridor, "TM", "approve", proposal["id"])
    assert again.returncode == 1 and "refused (409)" in again.stdout, again.stdout + again.stderr

    second = corridor.admin(
        "KZ", "POST", "/v1/corridor/proposals", json={"changes": [{"kind": "threshold", "threshold": 3}]}
    )
    corridor.wait_until(
        "TM holds the second proposal",
        lambda: bool(corridor.admin("TM", "GET", "/v1/corridor/proposals", params={"state": "open"})["items"]),
    )
    objected = proposals_cli(corridor, "TM", "object", second["id"], "--reason", "three of three leaves no slack")
    assert objected.returncode == 0, objected.stdout + objected.stderr

    def objection_seen() -> bool:
        shown = corridor.admin("KZ", "GET", f"/v1/corridor/proposals/{second['id']}")
        return [(entry["node"], entry["reason"]) for entry in shown["objections"]] == [
            ("TM", "three of three leaves no slack")
        ]

    corridor.wait_until("KZ shows TM's objection", objection_seen)
