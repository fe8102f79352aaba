"""The corridor of deploy/compose.yaml in real containers: the node image built from the Dockerfile, six nodes and
PostgreSQL brought up by Compose, the demo story told against them, a crashed node brought back by its restart
policy with what was queued to it delivered, and the image's hygiene measured (size, layers, uid, no secret in any
layer, its health check honoured). The figures are printed (run with -s: `make compose-test`).

These need a Docker engine and take minutes, so they run only with TW_CONTAINER_TESTS=1: `make compose-test`
(deploy/containers.sh test) sets it, and CI runs it as its own step after `make test`. With it set, nothing is
skipped: no engine is a failure. The module brings the corridor up once (`deploy/containers.sh up`, which starts a
private dockerd when none answers and we are root) and down at the end (volumes removed, that dockerd stopped).
Every request goes to the nodes' ports published on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "containers.sh"
BIN = REPO / ".venv" / "bin"
NODES = ("KZ", "KG", "UZ", "TJ", "TM", "AZ")
PROJECT = "transit-corridor"

pytestmark = pytest.mark.skipif(
    os.environ.get("TW_CONTAINER_TESTS") != "1",
    reason="containers: TW_CONTAINER_TESTS=1 (make compose-test) builds the image and runs the compose corridor",
)

# What must never be in an image layer: a private key, a compose .env, the bootstrap's tokens or corridor file.
# A PEM private key is its header and a base64 body (a library's code may name the header: cryptography's ssh.py does).
PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )?PRIVATE KEY-----\r?\n[A-Za-z0-9+/=]{40,}")
SECRET_NAMES = re.compile(r"(?:^|/)(?:\.env|[^/]*key[^/]*\.pem|admin-token|clients\.json|corridor\.json)$")


@dataclass
class Corridor:
    env: dict[str, str]  # the environment with DOCKER_HOST naming the engine the script used
    manifest: Path
    nodes: dict[str, dict[str, Any]]
    figures: list[str]

    def url(self, node: str) -> str:
        return str(self.nodes[node]["url"])

    def headers(self, node: str, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.nodes[node]['tokens'][role]}"}

    def docker(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
        return result.stdout

    def container(self, service: str) -> str:
        found = self.docker(
            "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}",
            "--filter", f"label=com.docker.compose.service={service}",
        ).split()  # fmt: skip
        assert len(found) == 1, f"{service}: {found}"
        return found[0]

    def inspect(self, target: str) -> Any:
        return json.loads(self.docker("inspect", target))[0]

    def image(self) -> str:
        return str(self.inspect(self.container("kz"))["Config"]["Image"])


def script(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def corridor() -> Iterator[Corridor]:
    started = time.monotonic()
    # The script's progress as it goes (with -s), and kept for the figures.
    up = subprocess.Popen([str(SCRIPT), "up"], cwd=REPO, stderr=subprocess.PIPE, text=True)
    assert up.stderr is not None
    said: list[str] = []
    for line in up.stderr:
        sys.stderr.write(line)
        said.append(line.rstrip("\n"))
    assert up.wait(timeout=60) == 0, "deploy/containers.sh up failed:\n" + "\n".join(said[-80:])
    try:
        env = dict(os.environ)
        exported = script("env", timeout=60).stdout.strip()
        env["DOCKER_HOST"] = exported.split("=", 1)[1] if "=" in exported else env.get("DOCKER_HOST", "")
        manifest = REPO / ".corridor" / "containers" / "corridor.json"
        nodes = {node["id"]: node for node in json.loads(manifest.read_text())["nodes"]}
        # The script's timed lines (engine, bases, image build, six healthy), then the whole `up`.
        figures = [line for line in said if re.search(r" \d+(\.\d+)? s\b", line)]
        figures.append(f"containers: deploy/containers.sh up took {time.monotonic() - started:.0f} s in all")
        yield Corridor(env=env, manifest=manifest, nodes=nodes, figures=figures)
    finally:
        if os.environ.get("TW_CONTAINER_KEEP") != "1":
            down = script("down", timeout=300)
            print(down.stderr, end="")


def wait_for(what: str, check: Callable[[], bool], *, timeout: float) -> float:
    """Seconds until `check()` holds; fails with `what` after `timeout`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"timed out after {timeout:.0f} s: {what}"
        time.sleep(0.5)
    return time.monotonic() - started


def test_the_node_image_is_built_from_the_dockerfile_and_runs_as_uid_10001(corridor: Corridor) -> None:
    image = corridor.inspect(corridor.image())
    config = image["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["transit-window"] and config["Cmd"] == ["serve"]
    assert "/readyz" in " ".join(config["Healthcheck"]["Test"]), "the Dockerfile's HEALTHCHECK is in the image"
    uid = corridor.docker("exec", corridor.container("kz"), "id", "-u").strip()
    assert uid == "10001", "the serving process is not root"
    history = corridor.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", corridor.image())
    assert "useradd --system --uid" in history and " in /opt/venv" in history, "the layers are the Dockerfile's"
    layers = len(image["RootFS"]["Layers"])
    print(f"\nimage {corridor.image()}: {image['Size'] / 1e6:.0f} MB, {layers} layers, user {config['User']}")


def test_no_layer_holds_a_private_key_a_token_or_an_env_file(corridor: Corridor) -> None:
    """`docker save` of the node image, every file of every layer: no PEM private key, no file named like a secret,
    and none of the running corridor's tokens or its database password."""
    secrets = [token.encode() for node in corridor.nodes.values() for token in node["tokens"].values()]
    password = re.search(r"^POSTGRES_PASSWORD=(.+)$", (REPO / "deploy" / ".env").read_text(), re.MULTILINE)
    assert password is not None
    secrets.append(password.group(1).encode())
    saved = subprocess.run(
        ["docker", "save", corridor.image()], env=corridor.env, capture_output=True, timeout=300, check=True
    ).stdout
    files = scanned = 0
    findings: list[str] = []
    compiled_in: list[str] = []  # a library's own test keys, compiled into it: no file anyone could take for ours
    with tarfile.open(fileobj=io.BytesIO(saved)) as archive:
        for member in archive.getmembers():
            if not member.name.endswith("layer.tar"):
                if member.isfile() and member.name.endswith(".json"):  # the image config: its env, its history
                    config = archive.extractfile(member)
                    assert config is not None
                    text = config.read()
                    findings += [f"{member.name}: a secret" for secret in secrets if secret in text]
                continue
            layer_file = archive.extractfile(member)
            assert layer_file is not None
            with tarfile.open(fileobj=layer_file) as layer:
                for entry in layer.getmembers():
                    if SECRET_NAMES.search(entry.name):
                        findings.append(f"{member.name}: {entry.name}")
                    if not entry.isfile():
                        continue
                    content = layer.extractfile(entry)
                    assert content is not None
                    data = content.read()
                    files += 1
                    scanned += len(data)
                    if PRIVATE_KEY.search(data):
                        if data.startswith(b"\x7fELF"):  # compiled in: Debian's libgnutls has its self-test keys
                            compiled_in.append(entry.name)
                        else:
                            findings.append(f"{member.name}: {entry.name} holds a PEM private key")
                    findings += [f"{member.name}: {entry.name} holds a token" for secret in secrets if secret in data]
    print(
        f"\nscanned {files} files ({scanned / 1e6:.0f} MB) in the layers of {corridor.image()}: {len(findings)} found"
        f" (PEM keys compiled into a library, not counted: {', '.join(compiled_in) or 'none'})"
    )
    assert not findings, findings
    assert files > 1000, "the scan read the layers"


def test_six_nodes_are_healthy_by_the_image_check_and_ready(corridor: Corridor) -> None:
    with httpx.Client(timeout=5) as http:
        for node in NODES:
            state = corridor.inspect(corridor.container(node.lower()))["State"]
            assert state["Health"]["Status"] == "healthy", (node, state["Health"])
            assert any(probe["ExitCode"] == 0 for probe in state["Health"]["Log"]), "the check itself ran and passed"
            ready = http.get(f"{corridor.url(node)}/readyz")
            assert ready.status_code == 200, (node, ready.text)
            assert set(ready.json()["checks"].values()) == {"ok"}, ready.json()
    postgres = corridor.inspect(corridor.container("postgres"))["State"]
    assert postgres["Health"]["Status"] == "healthy"
    for one_shot in ("bootstrap", *(f"migrate-{node.lower()}" for node in NODES)):
        state = corridor.inspect(corridor.container(one_shot))["State"]
        assert (state["Status"], state["ExitCode"]) == ("exited", 0), (one_shot, state)


def test_the_demo_story_is_told_against_the_containers(corridor: Corridor) -> None:
    started = time.monotonic()
    story = subprocess.run(
        [str(BIN / "transit-window"), "demo", "--against", str(corridor.manifest)],
        cwd=REPO,
        env={**os.environ, "COLUMNS": "160", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    took = time.monotonic() - started
    print(f"\nthe demo story against the containers: exit {story.returncode} in {took:.1f} s\n{story.stdout[-4000:]}")
    assert story.returncode == 0, story.stdout[-6000:] + story.stderr[-3000:]
    assert "story complete" in story.stdout
    assert "accepted (signed by AZ)" in story.stdout and "route-deviation alert signed by KZ" in story.stdout


def test_an_admin_ping_from_kazakhstan_is_delivered_with_signed_receipts(corridor: Corridor) -> None:
    with httpx.Client(timeout=10) as http:
        sent = (
            http.post(f"{corridor.url('KZ')}/v1/admin/pings", json={"note": "salem"}, headers=corridor.headers("KZ"))
            .raise_for_status()
            .json()["messages"]
        )
        assert sorted(sent) == sorted(set(NODES) - {"KZ"})

        def receipts() -> dict[str, str | None]:
            items = http.get(
                f"{corridor.url('KZ')}/v1/admin/outbox", params={"limit": 200}, headers=corridor.headers("KZ")
            ).json()["items"]
            return {item["peer"]: item["receipt_status"] for item in items if item["id"] in sent.values()}

        took = wait_for("five receipts", lambda: len(receipts()) == 5 and None not in receipts().values(), timeout=60)
        assert set(receipts().values()) == {"accepted"}, receipts()
        print(f"\nKZ's ping delivered to the five peers with accepted signed receipts in {took:.1f} s")


def test_a_crashed_node_comes_back_by_its_restart_policy_and_gets_what_was_queued(corridor: Corridor) -> None:
    """Uzbekistan's node process is SIGKILLed from the host (as a crash or the OOM killer would; `docker kill` is a
    manual stop, which Docker's restart policy leaves alone); Kazakhstan pings meanwhile; Docker restarts the node
    (`restart: unless-stopped`), it becomes healthy again, and the queued ping is delivered with its receipt."""
    uz = corridor.container("uz")
    before = corridor.inspect(uz)
    assert before["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    started = time.monotonic()
    os.kill(before["State"]["Pid"], signal.SIGKILL)
    with httpx.Client(timeout=10) as http:

        def down() -> bool:
            try:
                return http.get(f"{corridor.url('UZ')}/readyz", timeout=1).status_code != 200
            except httpx.HTTPError:
                return True

        wait_for("UZ's node down", down, timeout=30)
        sent = (
            http.post(
                f"{corridor.url('KZ')}/v1/admin/pings",
                json={"note": "while UZ was down"},
                headers=corridor.headers("KZ"),
            )
            .raise_for_status()
            .json()["messages"]
        )

        def healthy() -> bool:
            state = corridor.inspect(uz)["State"]
            return bool(state["Running"] and state.get("Health", {}).get("Status") == "healthy")

        wait_for("UZ's node healthy again", healthy, timeout=120)
        back = time.monotonic() - started
        after = corridor.inspect(uz)
        assert after["RestartCount"] == before["RestartCount"] + 1, "Docker restarted it (the same container)"

        def delivered() -> bool:
            items = http.get(
                f"{corridor.url('KZ')}/v1/admin/outbox",
                params={"peer": "UZ", "limit": 50},
                headers=corridor.headers("KZ"),
            ).json()["items"]
            return any(item["id"] == sent["UZ"] and item["receipt_status"] == "accepted" for item in items)

        wait_for("the queued ping delivered to UZ", delivered, timeout=180)
        total = time.monotonic() - started
    print(f"\nUZ killed: healthy again after {back:.1f} s, the ping queued meanwhile delivered after {total:.1f} s")


def test_every_node_audits_ok_after_all_that(corridor: Corridor) -> None:
    with httpx.Client(timeout=30) as http:
        for node in NODES:
            http.post(f"{corridor.url(node)}/v1/admin/checkpoints", headers=corridor.headers(node)).raise_for_status()

        def settled() -> bool:
            return not any(
                http.get(
                    f"{corridor.url(node)}/v1/admin/outbox",
                    params={"state": "pending", "limit": 1},
                    headers=corridor.headers(node),
                ).json()["items"]
                for node in NODES
            )

        wait_for("checkpoints delivered to the witnesses", settled, timeout=120)
        for node in NODES:
            report = http.get(f"{corridor.url(node)}/v1/admin/audit", headers=corridor.headers(node)).json()
            assert report["ok"], (node, report["problems"])
            assert len([peer for peer, count in report["witnessed"].items() if count]) == len(NODES) - 1, report
    print("\n" + "\n".join(corridor.figures))
