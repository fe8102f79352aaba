"""The implementer's kit, `transit-window conformance`, run the way another country's engineers would run it.

Against our own node (a real `transit-window serve` process) every check passes. Against deliberately broken nodes
(small HTTP servers in this file that get one part of the protocol wrong) the kit names exactly the checks they fail
and exits 1.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.keys import signed, trust_body
from transit_window import clock
from transit_window.conformance import CHECKS, ConformanceSetupError, run_checks
from transit_window.corridor.local import LocalCorridor
from transit_window.corridor.topology import NodeSpec
from transit_window.errors import NotAuthentic, Problem
from transit_window.protocol import jws
from transit_window.protocol.envelope import digest_of, open_envelope, sign_receipt
from transit_window.protocol.trust import TrustList

if TYPE_CHECKING:
    from tests.support.keys import TestMember


def table_rows(output: str) -> dict[str, str]:
    """check name -> PASS/FAIL, read from the rich table the CLI prints (continuation lines have no name)."""
    rows: dict[str, str] = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) >= 4 and cells[1] in CHECKS:
            rows[cells[1]] = cells[2]
    return rows


def inbox_counts(url: str) -> dict[tuple[str, str], float]:
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "tw_inbox_messages_total":
                counts[(sample.labels["outcome"], sample.labels["reason"])] = sample.value
    return counts


@pytest.mark.corridor
def test_our_own_node_passes_every_conformance_check(
    tmp_path: Path, ports: Callable[[int], list[int]], run_cli: Callable[..., Any]
) -> None:
    """Kazakhstan's operator checks Uzbekistan's node with Kazakhstan's key: every check passes, and Uzbekistan's
    metrics show exactly the kit's traffic: two pings accepted, one replay answered from the store, and a tampered,
    a wrong-audience and an unknown-key message refused."""
    folder = (tmp_path / "corridor").resolve()
    specs = [
        NodeSpec(
            id=node,
            port=port,
            url=f"http://127.0.0.1:{port}",
            folder=folder / node,
            database_url=f"sqlite+aiosqlite:///{folder / node / 'node.db'}",
        )
        for node, port in zip(("KZ", "UZ"), ports(2), strict=True)
    ]
    corridor = LocalCorridor(specs=specs, folder=folder)
    corridor.prepare()
    kz, uz = specs
    try:
        corridor.start()
        # Something of Uzbekistan's for Kazakhstan, so the pull check has a message to verify.
        response = httpx.post(
            f"{uz.url}/v1/admin/pings",
            json={"to": ["KZ"], "note": "for the pull check"},
            headers={"Authorization": f"Bearer {corridor.token('UZ')}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        before = inbox_counts(uz.url)

        result = run_cli(
            "conformance", uz.url, "--as", "KZ", "--key", str(kz.key_file), "--trust", str(corridor.trust_file)
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert table_rows(output) == dict.fromkeys(CHECKS, "PASS"), output
        assert f"all {len(CHECKS)} checks passed" in output
        assert re.search(r"[1-9][0-9]* message\(s\) for KZ, each verifying", output), output

        after = inbox_counts(uz.url)
        gained = {key: after.get(key, 0) - before.get(key, 0) for key in after}
        assert gained.get(("accepted", ""), 0) >= 2  # the valid ping, the genuine one after the forgery (+ checkpoints)
        assert gained.get(("replayed", ""), 0) == 1
        assert gained.get(("refused", "bad-signature"), 0) == 1
        assert gained.get(("refused", "wrong-audience"), 0) == 1
        assert gained.get(("refused", "unknown-key"), 0) == 1
    finally:
        corridor.stop()


# --- broken nodes -------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class BrokenNode:
    """A stand-in for another country's node, written here to get the protocol wrong on purpose.

    `verifies`: checks envelopes like a node should (else accepts anything that parses).
    `remembers`: answers a re-delivery with the stored receipt (else signs a fresh one every time).
    `pull_needs_signature`: refuses unsigned pulls (else serves anyone).
    """

    me: TestMember
    trust: TrustList
    verifies: bool
    remembers: bool
    pull_needs_signature: bool
    receipts: dict[str, str] = dataclasses.field(default_factory=dict)
    deliveries: int = 0

    def receive(self, token: str) -> tuple[int, str, dict[str, Any]]:
        if self.verifies:
            try:
                envelope = open_envelope(
                    token, trust=self.trust, me=self.me.node, now=clock.utcnow(), skew=timedelta(seconds=120)
                )
            except NotAuthentic as exc:
                problem = Problem.from_error(exc)
                return problem.status, "application/problem+json", problem.as_dict()
            payload: dict[str, Any] = envelope.payload.model_dump(mode="json")
        else:
            _header, raw = jws.peek_compact(token)
            payload = orjson.loads(raw)
        if self.remembers and payload["id"] in self.receipts:
            return 200, "application/json", {"receipt": self.receipts[payload["id"]], "status": "accepted"}
        self.deliveries += 1
        receipt = sign_receipt(
            key=self.me.key,
            message_id=payload["id"],
            digest=digest_of(token),
            status="accepted",
            code=None,
            detail=f"delivery {self.deliveries}",  # a fresh receipt differs from every earlier one
            iss=self.me.node,
            aud=payload["iss"],
            at=clock.utcnow(),
        )
        self.receipts[payload["id"]] = receipt
        return 200, "application/json", {"receipt": receipt, "status": "accepted"}

    def handler(self) -> type[BaseHTTPRequestHandler]:
        node = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def answer(self, status: int, content_type: str, body: Any) -> None:
                data = orjson.dumps(body)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/v1/corridor/trust-list":
                    self.answer(200, "application/json", node.trust.document())
                elif self.path.startswith("/v1/corridor/messages"):
                    if node.pull_needs_signature and not self.headers.get("Authorization"):
                        unsigned = {"type": "urn:dtc:problem:not-authenticated", "title": "sign it", "status": 401}
                        self.answer(401, "application/problem+json", {**unsigned, "detail": "DTC-Signature needed"})
                    else:
                        self.answer(200, "application/json", {"messages": []})
                else:
                    self.answer(404, "application/problem+json", {"title": "not found", "status": 404})

            def do_POST(self) -> None:
                token = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                self.answer(*node.receive(token))

        return Handler


@pytest.fixture
def serve_broken(members: dict[str, TestMember], tmp_path: Path) -> Iterator[Callable[..., tuple[str, Path]]]:
    """Start a broken UZ on a free port; returns its URL and the trust list file (members KZ and UZ)."""
    servers: list[ThreadingHTTPServer] = []

    def serve(**faults: bool) -> tuple[str, Path]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        uz = dataclasses.replace(members["UZ"], endpoint=url)
        trust = signed(trust_body([members["KZ"], uz], threshold=2), [members["KZ"], uz])
        server.RequestHandlerClass = BrokenNode(me=uz, trust=trust, **faults).handler()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        trust_file = tmp_path / f"trust-{len(servers)}.json"
        trust_file.write_bytes(trust.to_json())
        return url, trust_file

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_node_that_signs_a_new_receipt_for_a_replay_fails_only_the_replay_check(
    serve_broken: Callable[..., tuple[str, Path]], members: dict[str, TestMember], run_cli: Callable[..., Any]
) -> None:
    """A node that verifies everything but forgets its receipts: the CLI prints `replay` FAIL, the rest PASS, exit 1."""
    url, trust_file = serve_broken(verifies=True, remembers=False, pull_needs_signature=True)
    result = run_cli("conformance", url, "--as", "KZ", "--key", str(members["KZ"].key_file), "--trust", str(trust_file))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    expected = dict.fromkeys(CHECKS, "PASS") | {"replay": "FAIL"}
    assert table_rows(output) == expected, output
    assert "different receipt" in output
    assert "1 of 8 checks failed: replay" in output


def test_a_node_that_accepts_anything_fails_every_refusal_check(
    serve_broken: Callable[..., tuple[str, Path]], members: dict[str, TestMember]
) -> None:
    """A node that never verifies: tampered, wrong-audience, unknown-key and unsigned pulls are all reported."""
    url, trust_file = serve_broken(verifies=False, remembers=True, pull_needs_signature=False)
    results = run_checks(url, as_node="KZ", key=members["KZ"].key, trust=TrustList.from_json(trust_file.read_bytes()))
    failed = {result.name: result.detail for result in results if not result.passed}
    assert set(failed) == {"tampered", "wrong-audience", "unknown-key", "pull-unsigned"}, results
    assert "was not refused: 200" in failed["tampered"]
    assert "addressed to" in failed["wrong-audience"]
    assert "in no trust list" in failed["unknown-key"]


def test_the_kit_refuses_to_run_with_a_key_that_is_not_the_callers(
    serve_broken: Callable[..., tuple[str, Path]], members: dict[str, TestMember]
) -> None:
    """Checking as KZ with Turkmenistan's key is the caller's mistake, not the target's: no table, an error."""
    url, _ = serve_broken(verifies=True, remembers=True, pull_needs_signature=True)
    with pytest.raises(ConformanceSetupError, match="is not a key of KZ"):
        run_checks(url, as_node="KZ", key=members["TM"].key)
