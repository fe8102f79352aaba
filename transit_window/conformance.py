"""The implementer's kit: check, over HTTP and as one of its peers, that a node speaks the corridor protocol.

`transit-window conformance <base-url> --as <node> --key <pem> [--trust <file>] [--to <node>]` runs these checks
against any node, ours or another country's own implementation, and prints a pass/fail table:

- `trust-list`: serve a trust list whose signatures reach its threshold, unexpired (with `--trust`: the same version
  as that file or a valid successor of it);
- `accept`: accept a valid `corridor.ping` with a receipt signed by its key for exactly that message and digest;
- `replay`: answer a re-delivery of the same message with the original receipt, byte for byte;
- `tampered`: refuse a message changed after signing with a 4xx problem, and store nothing of it (the genuine
  message with the same id is accepted afterwards);
- `wrong-audience`: refuse a message addressed to another node;
- `unknown-key`: refuse a message signed by a key in no trust list;
- `pull`: serve what it holds for the caller (`GET /v1/corridor/messages?to=&after_seq=0`, a signed request), each
  message verifying as an envelope from the target to the caller;
- `pull-unsigned`: refuse the same read without a request signature (401).

The kit sends real messages: `corridor.ping`s with a high random `seq` (from `SEQ_FLOOR`, far above any real
sequence), so the target records them like any other ping. They open a gap in the caller's sequence at the target,
which the target closes after one pull from the caller's node answers that nothing is missing (PROTOCOL.md §5,
"Gaps"). Run it against a node whose operator agreed to it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import orjson

from transit_window import catalogue as catalogue  # opening envelopes needs the sealed registry
from transit_window import clock
from transit_window.errors import NotAuthentic
from transit_window.ids import new_id
from transit_window.protocol import jws
from transit_window.protocol.envelope import ReceiptError, digest_of, open_envelope, seal, verify_receipt
from transit_window.protocol.keys import SigningKey, generate_private_pem, signing_key_from_pem
from transit_window.protocol.peer_auth import PeerAuth
from transit_window.protocol.trust import TrustError, TrustList, verify_genesis, verify_successor

CHECKS = (
    "trust-list",
    "accept",
    "replay",
    "tampered",
    "wrong-audience",
    "unknown-key",
    "pull",
    "pull-unsigned",
)
PROBLEM_JSON = "application/problem+json"
SEQ_FLOOR = 1_000_000_000  # conformance pings use seq numbers far above any real sequence between two nodes


class ConformanceSetupError(Exception):
    """The checks cannot run as asked (the caller's key or node id, not the target, is wrong)."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class _Sent:
    token: str
    message_id: str
    status: int
    body: Any
    content_type: str


class _Kit:
    def __init__(self, client: httpx.Client, *, as_node: str, key: SigningKey, to: str, trust: TrustList) -> None:
        self.client = client
        self.as_node = as_node
        self.key = key
        self.to = to
        self.trust = trust
        self.seq = SEQ_FLOOR + secrets.randbelow(SEQ_FLOOR)
        self.accepted: _Sent | None = None
        self.first_receipt: str | None = None

    # -- building and sending messages -------------------------------------------------------------------------

    def envelope(self, *, note: str, aud: str | None = None, key: SigningKey | None = None) -> tuple[str, str]:
        self.seq += 1
        message_id = new_id()
        token = seal(
            key=key or self.key,
            message_id=message_id,
            type="corridor.ping",
            iss=self.as_node,
            aud=aud or self.to,
            iat=clock.utcnow(),
            seq=self.seq,
            subject=None,
            trust=self.trust.version,
            body={"note": note},
        )
        return token, message_id

    def post(self, token: str, message_id: str) -> _Sent:
        response = self.client.post(
            "/v1/corridor/messages", content=token.encode("ascii"), headers={"Content-Type": "application/jose"}
        )
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:200]
        return _Sent(
            token=token, message_id=message_id, status=response.status_code, body=body, content_type=content_type
        )

    def receipt_of(self, sent: _Sent) -> tuple[str | None, str]:
        """The verified receipt string of a 200 answer, or None and why not."""
        if sent.status != 200 or not isinstance(sent.body, dict) or not isinstance(sent.body.get("receipt"), str):
            return None, f"answered {sent.status} {_brief(sent.body)}"
        receipt: str = sent.body["receipt"]
        try:
            payload = verify_receipt(
                receipt, trust=self.trust, expect_from=self.to, message_id=sent.message_id, digest=digest_of(sent.token)
            )
        except ReceiptError as exc:
            return None, f"the receipt does not verify: {exc}"
        if payload.aud != self.as_node:
            return None, f"the receipt is addressed to {payload.aud}, not to {self.as_node}"
        if payload.status != "accepted":
            return None, f"receipt status {payload.status} (code {payload.code}): {payload.detail}"
        return receipt, f"accepted; receipt signed by {self.to} for message {sent.message_id}"

    @staticmethod
    def not_refused(sent: _Sent, *, expected: str) -> str | None:
        """None when the message was refused with a 4xx problem; else what went wrong."""
        if 400 <= sent.status < 500 and sent.content_type == PROBLEM_JSON and isinstance(sent.body, dict):
            return None
        if 400 <= sent.status < 500:
            return f"refused with {sent.status}, but not as an RFC 9457 problem (application/problem+json)"
        return f"{expected} was not refused: {sent.status} {_brief(sent.body)}"

    # -- the checks --------------------------------------------------------------------------------------------

    def accept(self) -> CheckResult:
        token, message_id = self.envelope(note="conformance: a valid message")
        sent = self.post(token, message_id)
        receipt, detail = self.receipt_of(sent)
        if receipt is None:
            return CheckResult("accept", False, detail)
        self.accepted, self.first_receipt = sent, receipt
        return CheckResult("accept", True, detail)

    def replay(self) -> CheckResult:
        if self.accepted is None or self.first_receipt is None:
            return CheckResult("replay", False, "not run: needs the message of `accept` accepted first")
        again = self.post(self.accepted.token, self.accepted.message_id)
        if again.status != 200 or not isinstance(again.body, dict):
            return CheckResult("replay", False, f"a re-delivery answered {again.status} {_brief(again.body)}")
        if again.body.get("receipt") != self.first_receipt:
            return CheckResult(
                "replay", False, "a re-delivery was answered with a different receipt, not the original one"
            )
        return CheckResult("replay", True, "the re-delivery got the original receipt, byte for byte")

    def tampered(self) -> CheckResult:
        genuine, message_id = self.envelope(note="conformance: signed, then changed")
        header, payload, signature = genuine.split(".")
        document = orjson.loads(jws.b64url_decode(payload))
        document["body"]["note"] = "conformance: changed after signing"
        forged = f"{header}.{jws.b64url(orjson.dumps(document))}.{signature}"
        sent = self.post(forged, message_id)
        failure = self.not_refused(sent, expected="a message changed after signing")
        if failure is not None:
            return CheckResult("tampered", False, failure)
        reason = _reason(sent.body)
        # Nothing of the forgery may have been stored: the genuine message with the same id is new to the target.
        after = self.post(genuine, message_id)
        receipt, detail = self.receipt_of(after)
        if receipt is None:
            return CheckResult("tampered", False, f"refused ({sent.status} {reason}), but then the genuine: {detail}")
        return CheckResult("tampered", True, f"refused ({sent.status} {reason}); the genuine one is accepted after")

    def wrong_audience(self) -> CheckResult:
        others = [node for node in self.trust.nodes() if node not in (self.to, self.as_node)]
        audience = others[0] if others else "XX"
        token, message_id = self.envelope(note="conformance: for another node", aud=audience)
        sent = self.post(token, message_id)
        failure = self.not_refused(sent, expected=f"a message addressed to {audience}")
        if failure is not None:
            return CheckResult("wrong-audience", False, failure)
        return CheckResult("wrong-audience", True, f"refused ({sent.status} {_reason(sent.body)}), aud {audience}")

    def unknown_key(self) -> CheckResult:
        stranger = signing_key_from_pem(generate_private_pem())
        token, message_id = self.envelope(note="conformance: signed by a stranger", key=stranger)
        sent = self.post(token, message_id)
        failure = self.not_refused(sent, expected=f"a message signed by key {stranger.kid} (in no trust list)")
        if failure is not None:
            return CheckResult("unknown-key", False, failure)
        return CheckResult("unknown-key", True, f"refused ({sent.status} {_reason(sent.body)})")

    def pull(self) -> CheckResult:
        params: dict[str, str | int] = {"to": self.as_node, "after_seq": 0, "limit": 100}
        response = self.client.get(
            "/v1/corridor/messages", params=params, auth=PeerAuth(key=self.key, iss=self.as_node, aud=self.to)
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return CheckResult(
                "pull", False, f"answered {response.status_code} {_brief(body)}, not {{messages: [...]}}"
            )
        messages: list[Any] = body["messages"]
        skew = timedelta(days=3650)  # stored messages are old; their keys are checked at their iat
        for index, token in enumerate(messages):
            if not isinstance(token, str):
                return CheckResult("pull", False, f"messages[{index}] is not a compact JWS string")
            try:
                opened = open_envelope(token, trust=self.trust, me=self.as_node, now=clock.utcnow(), skew=skew)
            except NotAuthentic as exc:
                if exc.reason not in ("unknown-type", "invalid-body"):  # a newer type is the target's business
                    return CheckResult("pull", False, f"messages[{index}] does not verify ({exc.reason}): {exc.detail}")
                continue
            if opened.payload.iss != self.to:
                return CheckResult("pull", False, f"messages[{index}] was sent by {opened.payload.iss}, not {self.to}")
        return CheckResult("pull", True, f"{len(messages)} message(s) for {self.as_node}, each verifying")

    def pull_unsigned(self) -> CheckResult:
        response = self.client.get("/v1/corridor/messages", params={"to": self.as_node, "after_seq": 0})
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if response.status_code == 401 and content_type == PROBLEM_JSON:
            return CheckResult("pull-unsigned", True, "refused (401) without a DTC-Signature")
        return CheckResult(
            "pull-unsigned", False, f"an unsigned pull answered {response.status_code}, not a 401 problem"
        )


def _brief(body: Any) -> str:
    text = str(body.get("detail") or body.get("title") or body) if isinstance(body, dict) else str(body)
    return text if len(text) <= 160 else text[:157] + "..."


def _reason(body: Any) -> str:
    return str(body.get("reason") or body.get("title") or "problem") if isinstance(body, dict) else "problem"


def check_trust_list(client: httpx.Client, *, held: TrustList | None) -> tuple[CheckResult, TrustList | None]:
    """Fetch and judge the served trust list; returns the list the other checks should verify against."""
    try:
        response = client.get("/v1/corridor/trust-list")
        served = TrustList.from_json(response.content) if response.status_code == 200 else None
    except (httpx.HTTPError, TrustError) as exc:
        return CheckResult("trust-list", False, f"not a trust list: {exc}"), held
    if served is None:
        return CheckResult("trust-list", False, f"GET /v1/corridor/trust-list answered {response.status_code}"), held
    now = clock.utcnow()
    try:
        if held is None:
            verify_genesis(served, pinned_sha256=served.sha256, now=now)
        elif served.version == held.version:
            if served.sha256 != held.sha256:
                raise TrustError(f"version {served.version} differs from the one in --trust ({held.sha256[:16]}…)")
            verify_genesis(served, pinned_sha256=held.sha256, now=now)
        elif served.version > held.version:
            verify_successor(held, served, now=now)
        else:
            raise TrustError(f"serves version {served.version}, older than version {held.version} in --trust")
    except TrustError as exc:
        return CheckResult("trust-list", False, str(exc)), held
    signers = sorted(served.signing_members(served, at=now))
    detail = (
        f"version {served.version}, signed by {', '.join(signers)} (threshold {served.body.threshold}), "
        f"expires {clock.isoformat(served.body.expires_at)}"
    )
    return CheckResult("trust-list", True, detail), served


def _target(trust: TrustList, base_url: str, to: str | None) -> str:
    if to:
        if trust.member(to.upper()) is None:
            raise ConformanceSetupError(f"--to {to}: not a member of trust list version {trust.version}")
        return to.upper()
    wanted = base_url.rstrip("/")
    for member in trust.body.members:
        if member.endpoint.rstrip("/") == wanted:
            return member.node
    raise ConformanceSetupError(f"no member of trust list version {trust.version} has endpoint {wanted}: pass --to")


def run_checks(
    base_url: str,
    *,
    as_node: str,
    key: SigningKey,
    trust: TrustList | None = None,
    to: str | None = None,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> list[CheckResult]:
    """Run every check in `CHECKS` against the node at `base_url`, as member `as_node` signing with `key`.

    `trust` is a trust list the caller already holds (e.g. the genesis); without it the served list is judged on
    its own signatures. Raises `ConformanceSetupError` when the caller's side is wrong (key not of `as_node`,
    unknown target) rather than reporting the target as failing.
    """
    as_node = as_node.upper()
    with httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport) as client:
        first, usable = check_trust_list(client, held=trust)
        if usable is None:
            skipped = "not run: no trust list to verify against (pass --trust)"
            return [first, *(CheckResult(name, False, skipped) for name in CHECKS[1:])]
        entry = usable.key(key.kid)
        if entry is None or entry.node != as_node:
            raise ConformanceSetupError(
                f"key {key.kid} is not a key of {as_node} in trust list version {usable.version}"
            )
        if not entry.key.valid_at(clock.utcnow()):
            raise ConformanceSetupError(entry.key.why_not_valid_at(clock.utcnow()))
        target = _target(usable, base_url, to)
        if target == as_node:
            raise ConformanceSetupError(f"--as {as_node} is the target itself; check another node")
        kit = _Kit(client, as_node=as_node, key=key, to=target, trust=usable)
        steps: list[Callable[[], CheckResult]] = [
            kit.accept,
            kit.replay,
            kit.tampered,
            kit.wrong_audience,
            kit.unknown_key,
            kit.pull,
            kit.pull_unsigned,
        ]
        results = [first]
        for step in steps:
            try:
                results.append(step())
            except httpx.HTTPError as exc:
                name = step.__name__.replace("_", "-")
                results.append(CheckResult(name, False, f"HTTP error: {type(exc).__name__}: {exc}"))
        return results
