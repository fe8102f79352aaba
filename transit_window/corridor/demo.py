"""The `make demo` story, told against real node processes over HTTP only.

1. Five Central Asian nodes start with a genesis trust list signed by all five (threshold 3).
2. Azerbaijan is admitted: a version 2 signed by one member is refused; signed by the threshold it is adopted by
   Kazakhstan, announced with `corridor.trust-update`, and every node moves to version 2.
3. Every node pings every other; each delivery is shown with its verified receipt.
4. Checkpoints are published and witnessed; every node's audit passes against its peers.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from transit_window.corridor.local import LocalCorridor
from transit_window.corridor.topology import COUNTRY_NAMES, plan
from transit_window.protocol.keys import load_private_key
from transit_window.protocol.trust import TrustKey, TrustList, TrustListBody, TrustMember, next_version

CENTRAL_ASIA = ["KZ", "KG", "UZ", "TJ", "TM"]
ALL = [*CENTRAL_ASIA, "AZ"]
console = Console()


class Api:
    def __init__(self, corridor: LocalCorridor) -> None:
        self.corridor = corridor
        self.http = httpx.Client(timeout=30.0)

    def call(self, node: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        spec = self.corridor.spec(node)
        headers = {"Authorization": f"Bearer {self.corridor.token(node)}"}
        return self.http.request(method, f"{spec.url}{path}", headers=headers, **kwargs)

    def ok(self, node: str, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(node, method, path, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{node} {method} {path}: {response.status_code} {response.text}")
        return response.json()


def _wait(what: str, predicate: Callable[[], bool], *, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with console.status(what):
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
    raise TimeoutError(f"timed out: {what}")


def admit_azerbaijan(corridor: LocalCorridor, api: Api) -> None:
    current = TrustList.from_json(corridor.trust_file.read_bytes())
    az = corridor.spec("AZ")
    az_key = load_private_key(az.key_file)
    body = next_version(current.body, valid_for=timedelta(days=365), threshold=4)
    member = TrustMember(
        node="AZ",
        name=COUNTRY_NAMES["AZ"],
        endpoint=az.url,
        keys=[TrustKey(kid=az_key.kid, jwk=az_key.public_jwk, not_before=body.issued_at - timedelta(hours=1))],
    )
    body = TrustListBody.model_validate(
        {**body.model_dump(), "members": [*body.model_dump()["members"], member.model_dump()]}
    )
    candidate = TrustList.from_body(body)
    keys = {node: load_private_key(corridor.spec(node).key_file) for node in ALL}

    candidate.sign(keys["KZ"])
    refused = api.call("KZ", "POST", "/v1/admin/trust-list", json=candidate.document())
    console.print(f"  version 2 signed by KZ alone → [red]{refused.status_code}[/red] {refused.json().get('detail')}")
    for node in ("KG", "UZ", "AZ"):
        candidate.sign(keys[node])
    adopted = api.ok("KZ", "POST", "/v1/admin/trust-list", json=candidate.document())
    console.print(
        f"  version 2 signed by {', '.join(adopted['signers'])} → [green]adopted by KZ[/green], "
        f"announced to {', '.join(adopted['announced_to'])}"
    )

    def everyone_on_v2() -> bool:
        versions = {node: api.ok(node, "GET", "/v1/admin/status")["trust_version"] for node in ALL}
        return all(version == 2 for version in versions.values())

    _wait("waiting for every node to accept version 2", everyone_on_v2)
    console.print("  every node now trusts version 2 (six members, threshold 4)")


def ping_everyone(corridor: LocalCorridor, api: Api) -> None:
    sent: dict[tuple[str, str], str] = {}
    for node in ALL:
        result = api.ok(node, "POST", "/v1/admin/pings", json={"note": f"salem from {node}"})
        for peer, message_id in result["messages"].items():
            sent[(node, peer)] = message_id

    def all_delivered() -> bool:
        return all(
            not api.ok(node, "GET", "/v1/admin/outbox", params={"state": "pending", "limit": 1})["items"]
            for node in ALL
        )

    _wait("delivering 30 pings", all_delivered)
    table = Table("from", "to", "message", "receipt", "latency")
    for node in ALL:
        items = api.ok(node, "GET", "/v1/admin/outbox", params={"limit": 100})["items"]
        by_id = {item["id"]: item for item in items}
        for peer in ALL:
            if peer == node:
                continue
            item = by_id[sent[(node, peer)]]
            latency = _seconds(item["created_at"], item["delivered_at"])
            status = item["receipt_status"] or item["state"]
            colour = "green" if status == "accepted" else "red"
            table.add_row(
                node,
                peer,
                item["id"][:13] + "…",
                f"[{colour}]{status}[/{colour}] (signed by {peer})",
                f"{latency * 1000:.0f} ms",
            )
    console.print(table)


def _seconds(start: str, end: str | None) -> float:
    from transit_window.clock import parse

    if end is None:
        return float("nan")
    return (parse(end) - parse(start)).total_seconds()


def audit_everyone(api: Api) -> bool:
    for node in ALL:
        api.ok(node, "POST", "/v1/admin/checkpoints")

    def checkpoints_delivered() -> bool:
        return all(
            not api.ok(node, "GET", "/v1/admin/outbox", params={"state": "pending", "limit": 1})["items"]
            for node in ALL
        )

    _wait("delivering checkpoints to the witnesses", checkpoints_delivered)
    table = Table("node", "log entries", "head", "witnessed by", "audit")
    all_ok = True
    for node in ALL:
        report = api.ok(node, "GET", "/v1/admin/audit")
        witnesses = ", ".join(f"{peer}:{count}" for peer, count in sorted(report["witnessed"].items()) if count)
        verdict = "[green]ok[/green]" if report["ok"] else f"[red]{'; '.join(report['problems'])}[/red]"
        all_ok = all_ok and report["ok"]
        table.add_row(node, str(report["size"]), report["head"][:16] + "…", witnesses, verdict)
    console.print(table)
    return all_ok


def run_demo(*, folder: Path, base_port: int, exit_after: bool, wait: Callable[[Callable[[], None]], None]) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    corridor = LocalCorridor(
        specs=plan(ALL, base_port=base_port, folder=folder), folder=folder, members=CENTRAL_ASIA, threshold=3
    )
    console.rule("[bold]Digital Transit Corridor: the signed protocol")
    console.print("Preparing six nodes: keys (Ed25519, 0600), databases (SQLite, migrated), demo clients…")
    corridor.prepare()
    api = Api(corridor)
    try:
        corridor.start()
        console.print(
            f"[bold]1.[/bold] Five nodes share genesis trust list version 1 (sha256 {corridor.genesis_sha256[:16]}…), "
            "threshold 3; Azerbaijan's node runs but is not yet a member"
        )
        console.print("[bold]2.[/bold] Admitting Azerbaijan")
        admit_azerbaijan(corridor, api)
        console.print("[bold]3.[/bold] Every node pings every other node")
        ping_everyone(corridor, api)
        console.print("[bold]4.[/bold] Checkpoints witnessed by peers; audit of every node")
        ok = audit_everyone(api)
        console.rule("[bold green]story complete" if ok else "[bold red]audit failed")
        for spec in corridor.specs:
            console.print(f"  {spec.id} {COUNTRY_NAMES[spec.id]:<13} {spec.url}  (log {spec.log_file})")
        console.print(f"Demo clients (one token per role per node): {corridor.manifest}")
        if not ok:
            raise SystemExit(1)
        if exit_after:
            return
        console.print("Nodes keep running; press Ctrl-C to stop them.")
        wait(lambda: None)
    finally:
        corridor.stop()
