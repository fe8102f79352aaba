"""Fixtures for webhooks: a real HTTP receiver on loopback that checks every request with the `standardwebhooks`
package (the reference implementation of the Standard Webhooks check, not this project's code), and a movement that
can be taken along the corridor step by step."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.declarations.conftest import customs, declaration, guarantee, papers
from tests.support.inprocess import InProcessCorridor
from tests.tracking.conftest import DECLARANT, client_for
from transit_window import clock
from transit_window.db.session import unit_of_work
from transit_window.webhooks.delivery import deliver_due
from transit_window.webhooks.models import WebhookDelivery

__all__ = ["DECLARANT", "client_for", "customs", "guarantee", "papers"]
ASHGABAT = timezone(timedelta(hours=5))
# The rest of the journey after release, as tests/tracking/conftest.py takes it: (node, path, body).
STEPS: list[tuple[str, str, dict[str, str]]] = [
    ("KZ", "crossings", {"office": "KZZHZ001", "direction": "exit"}),
    ("UZ", "crossings", {"office": "UZGIS001", "direction": "entry"}),
    ("UZ", "crossings", {"office": "UZALT001", "direction": "exit"}),
    ("TM", "crossings", {"office": "TMFAR001", "direction": "entry"}),
    ("TM", "arrival", {"office": "TMASB001"}),
    ("TM", "control-results", {"code": "A1"}),
]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    payload: dict[str, Any]


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 refuses connections when a round sends dozens at once


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1. Each path has its subscription's secret; a request that the reference
    implementation does not verify is answered 400 and kept in `rejected`."""

    port: int = 0
    status: int = 200
    secrets: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                secret = receiver.secrets.get(self.path)
                try:
                    if secret is None:
                        raise WebhookVerificationError(f"no secret for {self.path}")
                    payload = Webhook(secret).verify(body, headers)
                except (WebhookVerificationError, ValueError) as exc:
                    receiver.rejected.append(f"{self.path}: {exc}")
                    self._answer(400, b'{"error": "bad signature"}')
                    return
                receiver.received.append(Received(self.path, headers, body, payload))
                status = receiver.status
                self._answer(status, b"{}" if status < 300 else b"receiver broken")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Kill the receiver: the port refuses connections until `start()` again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(5)
            self._server = None

    def events(self, path: str) -> list[dict[str, Any]]:
        return [item.payload for item in self.received if item.path == path]


@pytest.fixture
def allow_private_targets() -> bool:
    """Tests reach the loopback receiver, so the operator's SSRF allowance is on (test_ssrf.py turns it off)."""
    return True


@pytest.fixture
def max_failures() -> int:
    return 10


@pytest.fixture(autouse=True)
def webhook_settings(allow_private_targets: bool, max_failures: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Node settings for these tests, read from the environment when the corridor's nodes start (autouse: before
    the `corridor` fixture builds them)."""
    monkeypatch.setenv("TW_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true" if allow_private_targets else "false")
    monkeypatch.setenv("TW_WEBHOOK_MAX_FAILURES", str(max_failures))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.stop()


async def subscribe(
    corridor: InProcessCorridor, headers: dict[str, str], receiver: Receiver, path: str, **filters: Any
) -> dict[str, Any]:
    """Subscribe `path` of the receiver on KZ and give the receiver the secret (shown this once)."""
    response = await corridor["KZ"].client.post(
        "/v1/subscriptions", json={"url": receiver.url(path), **filters}, headers=headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert created["secret"].startswith("whsec_")
    receiver.secrets[path] = created["secret"]
    return created


async def release(corridor: InProcessCorridor, customs: dict[str, dict[str, str]]) -> str:
    """Declare apples at Almaty and release them for transit; returns the MRN."""
    kz = corridor["KZ"]
    created = await kz.client.post("/v1/declarations", json=declaration(), headers=customs["KZ"])
    assert created.status_code == 201, created.text
    mrn: str = created.json()["mrn"]
    released = await kz.client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])
    assert released.status_code == 200, released.text
    await corridor.deliver_all()
    return mrn


async def take_steps(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], mrn: str, steps: list[tuple[str, str, Any]]
) -> None:
    for node, path, body in steps:
        body = {**body, "at": clock.utcnow().astimezone(ASHGABAT).isoformat()}
        response = await corridor[node].client.post(f"/v1/movements/{mrn}/{path}", json=body, headers=customs[node])
        assert response.status_code == 201, response.text
        await corridor.deliver_all()


async def deliver(corridor: InProcessCorridor) -> int:
    """KZ's webhook deliveries, run by hand until nothing is due (the background loops are off in tests)."""
    return await deliver_due(corridor["KZ"].node, worker_id="test-webhooks")


async def make_due(corridor: InProcessCorridor) -> None:
    """Skip the backoff wait: every pending delivery is due now."""
    async with unit_of_work(corridor["KZ"].node) as session:
        await session.execute(
            update(WebhookDelivery).where(WebhookDelivery.state == "pending").values(next_attempt_at=clock.utcnow())
        )


def body_of(item: Received) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(item.body)
    return parsed
