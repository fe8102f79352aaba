"""Secrets never reach the logs. The whole demo (six node processes, the full story) runs with every log level on and
README's tour runs against it (a webhook subscription with its receiver's secret, a guarantee's access code, every
role's token), then every log line and everything the demo printed is searched for every client token it created,
those secrets and every node's private key in every form a key takes (PEM body, raw seed as base64url, base64 and
hex); the key files and the token manifest must be private (0600). A second test runs the node's own logging at
DEBUG in-process while subscriptions are made, rotated, delivered to and disabled, and searches for the signing
secrets (and tokens, guessed ones too).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.corridor.conftest import free_base_port
from tests.declarations.conftest import declaration
from tests.support.inprocess import InProcessCorridor
from tests.support.readme import require_tools, run_tour
from tests.tracking.conftest import DECLARANT, client_for
from tests.webhooks.conftest import Receiver
from transit_window import logs
from transit_window.corridor.demo import RECEIVER_PORT_OFFSET
from transit_window.webhooks.delivery import deliver_due

# Shapes of secrets, whoever made them: a client token, a webhook secret, a PEM private key, a guarantee access code.
SHAPES = {
    "client token": re.compile(r"tw_[A-Za-z0-9_-]{40,}"),
    "webhook secret": re.compile(r"whsec_[A-Za-z0-9+/=_-]{20,}"),
    "PEM private key": re.compile(r"PRIVATE KEY-----"),
    "guarantee access code": re.compile(r"gac_[A-Za-z0-9_-]{16,}"),
}


def key_forms(pem_file: Path) -> dict[str, str]:
    """Every way a node's Ed25519 key could be written out: the PEM body and the 32-byte seed (the JWK `d`)."""
    pem = pem_file.read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    body = "".join(line for line in pem.decode().splitlines() if not line.startswith("-----"))
    return {
        f"{pem_file.parent.name} key PEM body": body,
        f"{pem_file.parent.name} key seed base64url": base64.urlsafe_b64encode(seed).decode().rstrip("="),
        f"{pem_file.parent.name} key seed base64": base64.b64encode(seed).decode().rstrip("="),
        f"{pem_file.parent.name} key seed hex": seed.hex(),
    }


def leaks(secrets: dict[str, str], texts: dict[str, str]) -> list[str]:
    found = []
    for where, text in texts.items():
        flat = re.sub(r"\s+", "", text)  # a secret wrapped across lines of a console is still a secret
        found += [f"{name} in {where}" for name, value in secrets.items() if value in text or value in flat]
        found += [f"a {shape} in {where}: {match[:12]}…" for shape, rx in SHAPES.items() for match in rx.findall(text)]
    return found


@contextmanager
def running_demo(folder: Path, *, output: Path, env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`transit-window demo` as `make demo` runs it (no --exit) into `folder`, on free ports, its output into a file;
    yields once the story is told and the nodes keep running, then stops it as Ctrl-C would and waits for it."""
    command = [sys.executable, "-m", "transit_window", "demo", "--dir", str(folder)]
    command += ["--base-port", str(free_base_port(RECEIVER_PORT_OFFSET))]
    with output.open("wb") as sink:
        demo = subprocess.Popen(command, env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while "Nodes keep running" not in output.read_text(errors="replace"):
            assert demo.poll() is None, f"the demo exited with {demo.returncode}:\n{output.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"the demo did not finish its story:\n{output.read_text()[-4000:]}"
            time.sleep(0.2)
        yield demo
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGTERM)  # the demo stops its nodes and its webhook receiver
            try:
                demo.wait(60)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait(10)


@pytest.mark.corridor
def test_a_demo_and_readmes_tour_against_it_log_no_token_and_no_private_key(tmp_path: Path) -> None:
    """The demo runs (six node processes, the full story, every log level on); README's tour runs against it exactly
    as written (`tests/support/readme.py`: every block, in order, in one `bash -euo pipefail` from the repository's
    root); then the demo stops, and every log line and everything the demo printed is searched for every client token
    it created, the webhook secret the tour subscribed its receiver with, the guarantee access code the tour was
    shown, and every node's private key in every form. The key files and the manifest must be private (0600).

    Also the demo's run in Baku's time zone (UTC+4): times are stored in UTC and shown with each office's offset,
    whatever the host's TZ (the multi-process transit test runs its nodes with TZ=Asia/Almaty); the tour computes its
    dates in the same zone."""
    require_tools()
    folder, output = tmp_path / "demo", tmp_path / "demo.out"
    env = {**os.environ, "TW_LOG_LEVEL": "DEBUG", "TZ": "Asia/Baku"}
    env.pop("COLUMNS", None)  # the demo's output is a file: it must not wrap at 80 columns by itself
    with running_demo(folder, output=output, env=env, cwd=tmp_path) as demo:
        tour = run_tour(corridor=folder / "corridor.json", scratch=tmp_path / "tour")
        assert tour.returncode == 0, f"README's tour failed against the demo:\n{tour.stdout[-6000:]}"
    assert demo.returncode == 0, output.read_text()[-4000:]
    printed = output.read_text()
    assert "story complete" in printed

    # what the tour showed: a refused second ENTRY, and its receiver's 204 for every event it subscribed to
    assert "\n409\n" in tour.stdout, tour.stdout[-3000:]
    answered = re.findall(r'"event_type":"tracking\.[a-z]+","state":"delivered","response_status":204', tour.stdout)
    assert len(answered) >= 9, tour.stdout[-3000:]  # released, an alert, six crossings, arrival
    received = [line for line in printed.splitlines() if line.startswith("  webhook ← tracking.")]
    assert len(received) == len(answered), printed[-3000:]
    assert "refused" not in "".join(received)

    manifest_file = folder / "corridor.json"
    assert f"with its secret: {manifest_file}\n" in printed, "the demo's output is wrapped"  # a long line, whole
    manifest = json.loads(manifest_file.read_text())
    nodes = manifest["nodes"]
    secrets = {f"{node['id']} {role} token": token for node in nodes for role, token in node["tokens"].items()}
    assert len(secrets) == 6 * 5
    secrets |= {f"{name} without its prefix": token.removeprefix("tw_") for name, token in list(secrets.items())}
    receiver_secret = manifest["webhook_receiver"]["secret"]
    secrets |= {"the receiver's webhook secret": receiver_secret, "its key": receiver_secret.removeprefix("whsec_")}
    codes = SHAPES["guarantee access code"].findall(tour.stdout)
    assert codes, "the tour showed no access code"
    secrets |= {f"access code {index}": code for index, code in enumerate(codes)}
    key_files = sorted(folder.rglob("*.pem"))
    assert len(key_files) == 6
    for key_file in key_files:
        secrets |= key_forms(key_file)

    texts = {"the demo's output": printed}
    texts |= {str(path.relative_to(folder)): path.read_text() for path in sorted(folder.rglob("*.log"))}
    assert len(texts) == 1 + 6, sorted(texts)
    for where, text in texts.items():
        assert "transit_window.access" in text or where == "the demo's output", f"{where} logged no request"
    assert "/v1/subscriptions" in texts["KZ/node.log"], "the scan saw none of the tour's requests"
    assert leaks(secrets, {"a planted line": f"oops {secrets['KZ admin token']}"}), "the scan finds nothing"
    assert not leaks(secrets, texts)

    for private in [*key_files, manifest_file]:
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private


@contextmanager
def node_logging(level: str) -> Iterator[io.StringIO]:
    """The logging a node process sets up (`logs.configure`, JSON lines), into a buffer instead of stderr, for the
    duration; pytest's own handlers and every logger's level come back afterwards."""
    root = logging.getLogger()
    handlers, root_level = root.handlers[:], root.level
    levels = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    buffer = io.StringIO()
    stderr, sys.stderr = sys.stderr, buffer
    try:
        logs.configure(level=level, json=True)
    finally:
        sys.stderr = stderr
    try:
        yield buffer
    finally:
        root.handlers[:] = handlers
        root.setLevel(root_level)
        for name, logger in logging.root.manager.loggerDict.items():
            if isinstance(logger, logging.Logger):
                logger.setLevel(levels.get(name, logging.NOTSET))


async def test_webhook_secrets_and_tokens_stay_out_of_debug_logs(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    del guarantee
    kz = corridor["KZ"]
    settings = kz.node.settings
    settings.webhook_allow_private_targets = True  # the receivers are on loopback
    settings.webhook_max_failures = 1  # the broken receiver's subscription is disabled (and that is logged)
    forwarder = await client_for(corridor, "KZ", role="forwarder", party_id=DECLARANT)
    guessed = "tw_" + "Q" * 43  # a token-shaped guess (a mistyped real token looks the same)
    working, broken = Receiver(), Receiver(status=500)
    working.start()
    broken.start()
    secrets: dict[str, str] = {}
    try:
        with node_logging("DEBUG") as logged:
            for name, receiver in (("working", working), ("broken", broken)):
                created = await kz.client.post(
                    "/v1/subscriptions", json={"url": receiver.url("/hook")}, headers=forwarder
                )
                assert created.status_code == 201, created.text
                secrets[f"{name} receiver's secret"] = receiver.secrets["/hook"] = created.json()["secret"]
                if name == "working":
                    rotated = await kz.client.post(
                        f"/v1/subscriptions/{created.json()['id']}/secret", headers=forwarder
                    )
                    assert rotated.status_code == 200, rotated.text
                    secrets["rotated secret"] = receiver.secrets["/hook"] = rotated.json()["secret"]
            assert (
                await kz.client.get("/v1/subscriptions", headers={"Authorization": f"Bearer {guessed}"})
            ).status_code == 401
            mrn = (await kz.client.post("/v1/declarations", json=declaration(), headers=customs["KZ"])).json()["mrn"]
            assert (await kz.client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])).status_code == 200
            await corridor.deliver_all()
            assert await deliver_due(kz.node, worker_id="log-scan") == 2
    finally:
        working.stop()
        broken.stop()
    assert len(working.received) == 1 and broken.rejected == []
    text = logged.getvalue()
    assert "webhook subscription disabled" in text and "/v1/subscriptions" in text, "the scan saw nothing relevant"

    # the key inside a secret, as the HMAC uses it (Standard Webhooks: base64 after the whsec_ prefix)
    secrets |= {f"{name} without its prefix": value.removeprefix("whsec_") for name, value in list(secrets.items())}
    secrets["guessed token"] = guessed
    for node, entry in corridor.nodes.items():
        secrets[f"{node} admin token"] = entry.admin_token
        secrets[f"{node} customs token"] = customs[node]["Authorization"].removeprefix("Bearer ")
    secrets["forwarder token"] = forwarder["Authorization"].removeprefix("Bearer ")
    secrets |= key_forms(kz.member.key_file)
    assert leaks(secrets, {"a planted line": secrets["rotated secret"][6:]}), "the scan finds nothing"
    assert not leaks(secrets, {"the node's DEBUG log": text})


def test_a_tracking_code_in_a_path_is_not_logged() -> None:
    """The code is the credential of the public view; the access log keeps the route's shape only."""
    from transit_window.api.middleware import _loggable_path

    assert _loggable_path("/track/Qm9vZ2xlLXRyYWNr") == "/track/{code}"
    assert _loggable_path("/v1/track/Qm9vZ2xlLXRyYWNr") == "/v1/track/{code}"
    assert _loggable_path("/track/static/track.js") == "/track/static/track.js"
    assert _loggable_path("/v1/declarations/26KZALA000000001J7") == "/v1/declarations/26KZALA000000001J7"
