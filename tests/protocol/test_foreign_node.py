"""A node another country built from openapi/PROTOCOL.md alone, with PyJWT, talks to a real node over HTTP.

Everything on the foreign side here is written from PROTOCOL.md's text, with a JOSE library this project does not
use and the standard library: key ids, the genesis trust list and its pinned hash, envelopes, receipts, signed
requests, and an HTTP server answering deliveries and gap pulls. Nothing on that side imports `transit_window`; the
project only starts the real node (Uzbekistan, a `transit-window serve` process on SQLite) and reads its operator
status to know when background work has happened. If this test needs the code to pass, PROTOCOL.md is incomplete.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from transit_window.corridor.local import LocalCorridor
from transit_window.corridor.topology import NodeSpec, ensure_key

# --- the foreign team's code: PROTOCOL.md, nothing else ----------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def canonical(document: Any) -> bytes:
    """§2 "The payload bytes": JCS, which for these documents is sorted keys and no whitespace."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def now_text(offset: timedelta = timedelta(0)) -> str:
    """Conventions: a time is an RFC 3339 string; we write UTC with milliseconds and Z, like the reference."""
    moment = datetime.now(UTC) + offset
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def public_jwk(public: Ed25519PublicKey) -> dict[str, str]:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}


def kid_of(jwk_: dict[str, str]) -> str:
    """§1: the RFC 7638 thumbprint of {"crv","kty","x"}."""
    members = {"crv": jwk_["crv"], "kty": jwk_["kty"], "x": jwk_["x"]}
    return b64url(hashlib.sha256(json.dumps(members, sort_keys=True, separators=(",", ":")).encode()).digest())


def uuid7() -> str:
    """§3: `id` is a UUIDv7, lower case with hyphens (RFC 9562: 48 bits of Unix milliseconds, version, variant)."""
    value = (time.time_ns() // 1_000_000) << 80 | uuid.uuid4().int & ((1 << 80) - 1)
    value = value & ~(0xF << 76) | 0x7 << 76
    value = value & ~(0x3 << 62) | 0x2 << 62
    return str(uuid.UUID(int=value))


def sign(payload: bytes, key: Ed25519PrivateKey, *, kid: str, typ: str) -> str:
    """A compact JWS with alg EdDSA, kid and typ in the protected header (§1)."""
    return jwt.api_jws.encode(payload, key, algorithm="EdDSA", headers={"kid": kid, "typ": typ})


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


@dataclass
class Member:
    node: str
    endpoint: str
    jwk: dict[str, str]

    @property
    def kid(self) -> str:
        return kid_of(self.jwk)


@dataclass
class ForeignNode:
    """Kazakhstan's node as the foreign team wrote it: enough of the protocol to be a member."""

    me: str
    key: Ed25519PrivateKey
    members: dict[str, Member] = field(default_factory=dict)
    sent: dict[int, str] = field(default_factory=dict)  # seq → the envelope we sent to UZ, kept to serve pulls
    received: list[dict[str, Any]] = field(default_factory=list)
    pulls: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def kid(self) -> str:
        return kid_of(public_jwk(self.key.public_key()))

    # §2: the genesis, written by us, signed by every member with its own key
    def genesis(self, signers: dict[str, Ed25519PrivateKey]) -> tuple[dict[str, Any], bytes]:
        issued = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        stamp = "%Y-%m-%dT%H:%M:%SZ"
        document = {
            "version": 1,
            "issued_at": issued.strftime(stamp),
            "expires_at": (issued + timedelta(days=30)).strftime(stamp),
            "threshold": 2,
            "members": [
                {
                    "node": member.node,
                    "name": member.node,
                    "endpoint": member.endpoint,
                    "keys": [
                        {
                            "kid": member.kid,
                            "jwk": member.jwk,
                            "not_before": issued.strftime(stamp),
                            "not_after": None,
                            "revoked_at": None,
                        }
                    ],
                }
                for member in self.members.values()
            ],
        }
        payload = canonical(document)
        signatures = []
        for node, key in signers.items():
            protected, _, signature = sign(payload, key, kid=self.members[node].kid, typ="dtc-trust+jws").split(".")
            signatures.append({"protected": protected, "signature": signature})
        return {"payload": b64url(payload), "signatures": signatures}, payload

    def verify(self, token: str, *, typ: str, signer: str | None = None) -> tuple[str, dict[str, Any]]:
        """The signer's node id and the payload of a JWS signed by a member's key; raises ValueError."""
        if any(not part for part in token.split(".")) or token.count(".") != 2:
            raise ValueError("malformed")
        header = jwt.get_unverified_header(token)
        if header.get("alg") != "EdDSA" or header.get("typ") != typ or "crit" in header:
            raise ValueError("bad-header")
        owner = next((member for member in self.members.values() if member.kid == header.get("kid")), None)
        if owner is None or (signer is not None and owner.node != signer):
            raise ValueError("unknown-key")
        key = jwt.PyJWK(owner.jwk).key
        payload = json.loads(jwt.api_jws.decode_complete(token, key=key, algorithms=["EdDSA"])["payload"])
        return owner.node, payload

    # §3: envelopes
    def envelope(self, *, seq: int, type: str, body: dict[str, Any], subject: str | None = None) -> str:
        payload = {
            "id": uuid7(),
            "type": type,
            "iss": self.me,
            "aud": "UZ",
            "iat": now_text(),
            "seq": seq,
            "subject": subject,
            "trust": 1,
            "body": body,
        }
        token = sign(json.dumps(payload).encode(), self.key, kid=self.kid, typ="dtc-msg+jws")
        with self.lock:
            self.sent[seq] = token
        return token

    # §4: a receipt for what UZ delivers to us
    def receipt_for(self, token: str) -> dict[str, Any]:
        try:
            sender, payload = self.verify(token, typ="dtc-msg+jws")
            if payload["aud"] != self.me or payload["iss"] != sender:
                raise ValueError("wrong-audience or wrong-issuer")
        except (ValueError, KeyError, jwt.PyJWTError) as exc:
            with self.lock:
                self.refusals.append(str(exc))
            problem = {"type": "urn:dtc:problem:message-not-authentic", "title": "refused", "status": 400}
            return {"receipt": None, "status": None, "code": None, "problem": {**problem, "detail": str(exc)}}
        receipt = {
            "msg": payload["id"],
            "digest": digest(token),
            "status": "accepted",
            "code": None,
            "detail": None,
            "at": now_text(),
            "iss": self.me,
            "aud": sender,
        }
        with self.lock:
            self.received.append(payload | {"token": token})
        signed = sign(json.dumps(receipt).encode(), self.key, kid=self.kid, typ="dtc-receipt+jws")
        return {"receipt": signed, "status": "accepted", "code": None, "problem": None}

    # §5: signed requests, both ways
    def request_signature(self, method: str, target: str, *, aud: str = "UZ", iat: str | None = None) -> str:
        claims = {"iss": self.me, "aud": aud, "iat": iat or now_text(), "method": method, "path": target}
        return "DTC-Signature " + sign(json.dumps(claims).encode(), self.key, kid=self.kid, typ="dtc-request+jws")

    def check_request(self, method: str, target: str, authorization: str) -> str:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "dtc-signature":
            raise ValueError("unsigned")
        signer, claims = self.verify(token.strip(), typ="dtc-request+jws")
        iat = datetime.fromisoformat(claims["iat"].replace("Z", "+00:00"))
        if claims["iss"] != signer or claims["aud"] != self.me:
            raise ValueError("wrong-issuer or wrong-audience")
        if abs((datetime.now(UTC) - iat).total_seconds()) > 120:
            raise ValueError("stale-request or future-iat")
        if (claims["method"], claims["path"]) != (method, target):
            raise ValueError("request-mismatch")
        return signer

    def serve_pull(self, target: str, authorization: str) -> tuple[int, dict[str, Any]]:
        try:
            signer = self.check_request("GET", target, authorization)
        except (ValueError, KeyError, jwt.PyJWTError) as exc:
            return 401, {"type": "urn:dtc:problem:request-not-authentic", "status": 401, "reason": str(exc)}
        query = parse_qs(urlsplit(target).query)
        if query["to"] != [signer]:
            return 403, {"type": "urn:dtc:problem:forbidden", "status": 403, "reason": "not-your-messages"}
        after, limit = int(query.get("after_seq", ["0"])[0]), int(query.get("limit", ["500"])[0])
        with self.lock:
            self.pulls.append(target)
            messages = [self.sent[seq] for seq in sorted(self.sent) if seq > after][:limit]
        return 200, {"messages": messages}

    def handler(self) -> type[BaseHTTPRequestHandler]:
        node = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if status == 200 else "application/problem+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.startswith("/v1/corridor/messages?"):
                    self.answer(*node.serve_pull(self.path, self.headers.get("Authorization", "")))
                else:
                    self.answer(404, {"status": 404, "title": "not found"})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Type", "").startswith("application/jose"):
                    result = node.receipt_for(raw.decode("ascii"))
                    if result["problem"]:
                        self.answer(400, result["problem"])
                    else:
                        self.answer(200, {key: result[key] for key in ("receipt", "status", "code")})
                else:
                    self.answer(200, {"results": [node.receipt_for(token) for token in json.loads(raw)["messages"]]})

        return Handler


# --- the test: the real node on one side, the foreign node on the other --------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Setting:
    kz: ForeignNode
    uz_url: str
    genesis_sha256: str
    corridor: LocalCorridor
    http: httpx.Client

    def status(self) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.corridor.token('UZ')}"}
        response = self.http.get(f"{self.uz_url}/v1/admin/status", headers=headers)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def wait_until(self, what: str, predicate: Callable[[], bool], *, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        log = self.corridor.spec("UZ").log_file
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:]) if log.exists() else ""
        raise AssertionError(f"timed out waiting until {what}\n{tail}")


@pytest.fixture
def setting(tmp_path: Path) -> Iterator[Setting]:
    """Kazakhstan's foreign node on a local HTTP server; Uzbekistan's reference node as its own process."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    kz_url = f"http://127.0.0.1:{server.server_address[1]}"
    uz_port = free_port()
    folder = (tmp_path / "corridor").resolve()
    uz = NodeSpec(
        id="UZ",
        port=uz_port,
        url=f"http://127.0.0.1:{uz_port}",
        folder=folder / "UZ",
        database_url=f"sqlite+aiosqlite:///{folder / 'UZ' / 'node.db'}",
    )
    ensure_key(uz)  # Uzbekistan makes its key where it runs and hands over the public half
    uz_key = serialization.load_pem_private_key(uz.key_file.read_bytes(), password=None)
    assert isinstance(uz_key, Ed25519PrivateKey)

    kz = ForeignNode(me="KZ", key=Ed25519PrivateKey.generate())
    kz.members = {
        "KZ": Member("KZ", kz_url, public_jwk(kz.key.public_key())),
        "UZ": Member("UZ", uz.url, public_jwk(uz_key.public_key())),
    }
    document, payload = kz.genesis({"KZ": kz.key, "UZ": uz_key})  # the ceremony: both sign what KZ wrote
    genesis_sha256 = hashlib.sha256(payload).hexdigest()
    corridor = LocalCorridor(
        specs=[uz],
        folder=folder,
        extra_env={"TW_GAP_PULL_SECONDS": "0.2", "TW_BACKOFF_CAP_SECONDS": "1", "TW_WORKER_POLL_SECONDS": "0.2"},
    )
    corridor.trust_file.parent.mkdir(parents=True, exist_ok=True)
    corridor.trust_file.write_text(json.dumps(document))
    server.RequestHandlerClass = kz.handler()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    http = httpx.Client(timeout=10)
    try:
        corridor.prepare()
        assert corridor.genesis_sha256 == genesis_sha256  # the node pins the hash we computed
        corridor.start()
        yield Setting(kz=kz, uz_url=uz.url, genesis_sha256=genesis_sha256, corridor=corridor, http=http)
    finally:
        http.close()
        corridor.stop()
        server.shutdown()
        server.server_close()


@pytest.mark.corridor
def test_a_node_written_from_protocol_md_with_pyjwt_interoperates_with_the_reference_node(setting: Setting) -> None:
    kz, http, uz_url = setting.kz, setting.http, setting.uz_url

    # §2: the node serves the genesis we wrote, payload bytes untouched
    served = http.get(f"{uz_url}/v1/corridor/trust-list").json()
    payload = base64.urlsafe_b64decode(served["payload"] + "=" * (-len(served["payload"]) % 4))
    assert hashlib.sha256(payload).hexdigest() == setting.genesis_sha256

    # §3, §4: an envelope we sign is accepted with a receipt signed by UZ for exactly it; a replay gets that receipt
    first = kz.envelope(seq=1, type="corridor.ping", body={"note": "salem from a PyJWT node"})
    answer = http.post(f"{uz_url}/v1/corridor/messages", content=first, headers={"Content-Type": "application/jose"})
    assert answer.status_code == 200, answer.text
    signer, receipt = kz.verify(answer.json()["receipt"], typ="dtc-receipt+jws", signer="UZ")
    _, sent = kz.verify(first, typ="dtc-msg+jws")
    assert (signer, receipt["msg"], receipt["digest"]) == ("UZ", sent["id"], digest(first))
    assert (receipt["status"], receipt["code"], receipt["iss"], receipt["aud"]) == ("accepted", None, "UZ", "KZ")
    assert (answer.json()["status"], answer.json()["code"]) == ("accepted", None)
    again = http.post(f"{uz_url}/v1/corridor/messages", content=first, headers={"Content-Type": "application/jose"})
    assert again.json()["receipt"] == answer.json()["receipt"]

    # §5 Gaps: seq 3 arrives, 2 does not (we never push it); UZ pulls it from our server with a signed request
    kz.envelope(seq=2, type="corridor.ping", body={"note": "only by pulling"})
    third = kz.envelope(seq=3, type="corridor.ping", body={"note": "the third"})
    batch = http.post(f"{uz_url}/v1/corridor/messages", json={"messages": [third]})
    (result,) = batch.json()["results"]
    assert result["status"] == "accepted" and result["problem"] is None, result
    setting.wait_until(
        "UZ pulled seq 2", lambda: setting.status()["inbound"].get("KZ") == {"contiguous": 3, "max_seen": 3}
    )
    assert kz.pulls and kz.pulls[0].startswith("/v1/corridor/messages?to=UZ&after_seq=1"), kz.pulls

    # UZ delivers to us: its ping (and the checkpoint of its log) gets our receipts, which UZ verifies
    ping = http.post(
        f"{uz_url}/v1/admin/pings",
        json={"to": ["KZ"], "note": "salem from Tashkent"},
        headers={"Authorization": f"Bearer {setting.corridor.token('UZ')}"},
    )
    assert ping.status_code == 200, ping.text

    def delivered() -> bool:
        states = setting.status()["outbox"].get("KZ", {})
        return states.get("delivered", 0) >= 1 and not set(states) - {"delivered"}

    setting.wait_until("UZ holds a verified receipt from KZ for everything it sent", delivered)
    assert not kz.refusals, kz.refusals
    assert "salem from Tashkent" in [message["body"].get("note") for message in kz.received]

    # §5 Signed requests: we pull what UZ holds for us, every message verifying as an envelope from UZ to KZ
    target = "/v1/corridor/messages?to=KZ&after_seq=0&limit=100"
    pulled = http.get(f"{uz_url}{target}", headers={"Authorization": kz.request_signature("GET", target)})
    assert pulled.status_code == 200, pulled.text
    tokens = pulled.json()["messages"]
    opened = [kz.verify(token, typ="dtc-msg+jws", signer="UZ")[1] for token in tokens]
    assert [message["seq"] for message in opened] == list(range(1, len(opened) + 1))
    assert {(message["iss"], message["aud"]) for message in opened} == {("UZ", "KZ")}
    assert set(tokens) == {message["token"] for message in kz.received}  # the very strings it pushed

    # §6: a checkpoint of our log, witnessed by UZ and served back exactly as we signed it
    at = now_text()
    body = {"node": "KZ", "size": 7, "head": "c0" * 32, "at": at}
    checkpoint = kz.envelope(seq=4, type="corridor.checkpoint", body=body, subject="log:KZ")
    kept = http.post(f"{uz_url}/v1/corridor/messages", content=checkpoint, headers={"Content-Type": "application/jose"})
    assert kept.json()["status"] == "accepted", kept.text
    target = "/v1/corridor/checkpoints?node=KZ"
    witnessed = http.get(f"{uz_url}{target}", headers={"Authorization": kz.request_signature("GET", target)})
    assert witnessed.status_code == 200, witnessed.text
    assert witnessed.json() == {"checkpoints": [body | {"token": checkpoint}]}

    # §5: refusals of signed reads, as the table says
    stale = kz.request_signature("GET", target, iat=now_text(-timedelta(minutes=10)))
    other = kz.request_signature("GET", "/v1/corridor/checkpoints?node=TM")
    for authorization, reason in ((stale, "stale-request"), (other, "request-mismatch")):
        refused = http.get(f"{uz_url}{target}", headers={"Authorization": authorization})
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "DTC-Signature"
        assert refused.headers["content-type"] == "application/problem+json"
        assert (refused.json()["type"], refused.json()["reason"]) == ("urn:dtc:problem:request-not-authentic", reason)
