"""A webhook receiver to try a subscription with (`transit-window webhooks listen`, and the one `make demo` runs).

It listens on loopback, checks every POST with the `standardwebhooks` package — the reference implementation of the
Standard Webhooks check (`webhook-id`, `webhook-timestamp` within five minutes, `webhook-signature` as HMAC-SHA256
with the `whsec_` secret), not this node's own signing code, so it also proves what a receiver in another language
would see — and prints each event as one line. A request that does not verify is answered 401 and printed as
refused; a verified one 204. It never prints or logs the secret. For trying things out, not for production: a
forwarder's real receiver stores each event keyed by `webhook-id` before answering 2xx.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from transit_window.webhooks import signing

MAX_BODY_BYTES = 1 << 20  # a delivery is one event; a megabyte is far more than any


def describe(payload: Any, *, webhook_id: str) -> str:
    """One line for a verified event: its type, the consignment, where and when, and who signed the step."""
    if not isinstance(payload, dict):
        return f"{webhook_id} (not a JSON object)"
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    assert isinstance(data, dict)
    place = data.get("bizLocation") if isinstance(data.get("bizLocation"), dict) else {}
    assert isinstance(place, dict)
    where = place.get("office") or place.get("country") or "-"
    parts = [
        str(payload.get("type", "?")),
        str(data.get("mrn", "-")),
        f"at {where}",
        str(data.get("eventTime") or payload.get("timestamp", "")),
    ]
    if data.get("signedBy"):
        parts.append(f"signed by {data['signedBy']}")
    return " ".join(parts) + f" (webhook-id {webhook_id}, signature verified)"


@dataclass
class Listener:
    """`start()` serves in a thread (the demo), `serve()` in the caller's (the command); `out` gets each line."""

    secret: str
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port; `url` tells which
    out: Callable[[str], None] = print
    received: int = 0
    refused: int = 0
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        signing.check_secret(self.secret)
        self._webhook = Webhook(self.secret)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hooks"

    def bind(self) -> None:
        self._server = ThreadingHTTPServer((self.host, self.port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]

    def start(self) -> None:
        self.bind()
        assert self._server is not None
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()

    def serve(self) -> None:
        if self._server is None:
            self.bind()
        assert self._server is not None
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._server.server_close()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def check(self, body: bytes, headers: dict[str, str]) -> str:
        """The line for a request that verifies; `WebhookVerificationError` (or ValueError) for one that does not."""
        self._webhook.verify(body, headers, json_parse=False)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        return describe(payload, webhook_id=headers.get("webhook-id", "?"))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "transit-window-webhooks"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY_BYTES:
                    self._answer(413, {"error": f"more than {MAX_BODY_BYTES} bytes"})
                    return
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                try:
                    line = listener.check(body, headers)
                except (WebhookVerificationError, ValueError) as exc:
                    with listener._lock:
                        listener.refused += 1
                    listener.out(f"refused {self.path}: {exc} (answered 401)")
                    self._answer(401, {"error": f"signature not verified: {exc}"})
                    return
                with listener._lock:
                    listener.received += 1
                listener.out(line)
                self._answer(204, None)

            def do_GET(self) -> None:
                self._answer(200, {"receiver": "transit-window webhooks listen", "received": listener.received})

            def _answer(self, status: int, document: dict[str, Any] | None) -> None:
                body = b"" if document is None else json.dumps(document).encode()
                self.send_response(status)
                if body:
                    self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # each request is printed as its event line, nothing else

        return Handler
