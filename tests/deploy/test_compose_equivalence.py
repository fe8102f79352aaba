"""What `docker compose -f deploy/compose.yaml up` starts, started here as local processes on loopback: the same
commands (each service's entrypoint and command), the same TW_* settings, the same order (migrations, bootstrap,
nodes once healthy by the compose health check), on PostgreSQL with one database per node, and then the nodes
exchange signed messages. So what the compose file would run is what is tested, without a Docker engine.

The only differences, all mechanical and made in one place (`Localize`):
- volumes: the named volume `corridor` mounted at `/data` becomes a temporary folder, and a bind mount
  (`./bootstrap.sh:/opt/deploy/bootstrap.sh`) becomes the file in deploy/;
- hosts and ports: `http://<node>:<port>` becomes `http://127.0.0.1:<free port>` (and `TW_PORT` that port),
  `TW_HOST` 0.0.0.0 becomes 127.0.0.1, and each compose database URL (`…@postgres:5432/tw_<node>`) becomes a fresh
  database on the local PostgreSQL (made by tests/support/databases.py, as the init script would);
- three of the six nodes (KZ, UZ, AZ: Almaty, Tashkent, Baku): the bootstrap's member table keeps their lines and
  its threshold is capped at three, since a genesis cannot need more signatures than it has members;
- `transit-window` and `python` are this virtualenv's, first on PATH (the image's are in /opt/venv/bin).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import databases
from transit_window.protocol.trust import TrustList

pytestmark = pytest.mark.corridor

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
NODES = ("KZ", "UZ", "AZ")
COMPOSE_PORTS = {"KZ": 8101, "UZ": 8103, "AZ": 8106}


def image_entrypoint() -> list[str]:
    """The Dockerfile's ENTRYPOINT: what compose runs when a service does not override it."""
    entrypoints = re.findall(r"^ENTRYPOINT\s+(\[.*\])\s*$", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    result: list[str] = json.loads(entrypoints[-1])
    return result


def image_healthcheck() -> list[str]:
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    match = re.search(r"^HEALTHCHECK\s.*?CMD\s+(\[.*\])\s*$", text, re.MULTILINE)
    assert match, "the Dockerfile has a HEALTHCHECK CMD [...]"
    result: list[str] = json.loads(match.group(1))
    return result


@dataclasses.dataclass
class Localize:
    """The compose → loopback substitutions described in the module docstring."""

    replacements: dict[str, str]
    volumes: dict[str, str]

    def text(self, value: str) -> str:
        for old, new in self.replacements.items():
            value = value.replace(old, new)
        for target, source in sorted(self.volumes.items(), key=lambda item: -len(item[0])):
            value = re.sub(rf"(?<![\w/.]){re.escape(target)}(?=/|\b|$)", source, value)
        return value

    def service(self, service: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
        entrypoint = service.get("entrypoint", image_entrypoint())
        argv = [self.text(part) for part in [*entrypoint, *service.get("command", [])]]
        env = {name: self.text(str(value)) for name, value in service.get("environment", {}).items()}
        if env.get("TW_HOST") == "0.0.0.0":
            env["TW_HOST"] = "127.0.0.1"
        return argv, env


def run(argv: list[str], env: dict[str, str], clean_env: Callable[[dict[str, str]], dict[str, str]], cwd: Path) -> str:
    result = subprocess.run(argv, env=clean_env(env), cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{argv} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def test_the_compose_corridor_runs_as_local_processes_and_its_nodes_exchange_signed_messages(
    compose: dict[str, Any],
    tmp_path: Path,
    ports: Callable[[int], list[int]],
    processes: list[subprocess.Popen[bytes]],
    clean_env: Callable[[dict[str, str]], dict[str, str]],
) -> None:
    """Migrate, bootstrap and serve Kazakhstan, Uzbekistan and Azerbaijan exactly as compose would; each becomes
    healthy by the compose health check (and the image's), serves the genesis the bootstrap signed, and every ping
    between them is delivered with an accepted signed receipt."""
    databases.require_postgres()
    services = compose["services"]
    data = tmp_path / "corridor"  # the named volume `corridor`
    data.mkdir(mode=0o700)
    local_ports = dict(zip(NODES, ports(len(NODES)), strict=True))
    database_urls: dict[str, str] = {}
    try:
        replacements: dict[str, str] = {}
        for node in NODES:
            env = services[node.lower()]["environment"]
            database_urls[node] = databases.create_postgres_database(f"compose_{node}")
            replacements[env["TW_DATABASE_URL"]] = database_urls[node]
            replacements[env["TW_PUBLIC_URL"]] = f"http://127.0.0.1:{local_ports[node]}"
        volumes: dict[str, str] = {}
        for service in ("bootstrap", *(node.lower() for node in NODES)):
            for mount in services[service].get("volumes", []):
                source, target = mount.split(":")[:2]
                volumes[target] = str(DEPLOY / source) if source.startswith(".") else str(tmp_path / source)
        assert volumes == {"/data": str(data), "/opt/deploy/bootstrap.sh": str(DEPLOY / "bootstrap.sh")}
        localize = Localize(replacements=replacements, volumes=volumes)

        # 1. The one-shot migrations, in parallel as compose starts them once PostgreSQL is healthy.
        with concurrent.futures.ThreadPoolExecutor(len(NODES)) as pool:
            migrations = [
                pool.submit(run, *localize.service(services[f"migrate-{node.lower()}"]), clean_env, tmp_path)
                for node in NODES
            ]
            for migration in migrations:
                assert "database at head" in migration.result()

        # 2. The bootstrap, with its member table cut to the three nodes.
        argv, env = localize.service(services["bootstrap"])
        env["TW_BOOTSTRAP_MEMBERS"] = "\n".join(
            line for line in env["TW_BOOTSTRAP_MEMBERS"].splitlines() if line.split()[:1] and line.split()[0] in NODES
        )
        env["TW_BOOTSTRAP_THRESHOLD"] = str(min(int(env["TW_BOOTSTRAP_THRESHOLD"]), len(NODES)))
        run(argv, env, clean_env, tmp_path)
        made = {path: path.read_bytes() for path in data.rglob("*") if path.is_file()}
        # `docker compose up` runs the one-shots again on every `up`: the second run keeps every key, the genesis
        # and every token.
        run(argv, env, clean_env, tmp_path)
        assert {path: path.read_bytes() for path in data.rglob("*") if path.is_file()} == made
        genesis = TrustList.from_json((data / "trust" / "genesis.json").read_bytes())
        assert (data / "trust" / "genesis.sha256").read_text().strip() == genesis.sha256
        assert sorted(genesis.signing_members(genesis, at=genesis.body.issued_at)) == sorted(NODES)
        tokens = {node: (data / node / "admin-token").read_text().strip() for node in NODES}
        for node in NODES:
            assert (data / node / "node-key.pem").stat().st_mode & 0o077 == 0
        # The corridor file the host's tools read (`transit-window demo --against`): each node's published URL and
        # one token per role, the admin's being the one above; readable by the volume's owner only.
        manifest = json.loads((data / "corridor.json").read_text())
        assert (data / "corridor.json").stat().st_mode & 0o077 == 0
        assert manifest["genesis_sha256"] == genesis.sha256
        assert [entry["id"] for entry in manifest["nodes"]] == list(NODES)
        for entry in manifest["nodes"]:
            assert entry["url"] == f"http://127.0.0.1:{COMPOSE_PORTS[entry['id']] + 100}"
            assert entry["tokens"]["admin"] == tokens[entry["id"]]
            assert sorted(entry["tokens"]) == ["admin", "customs", "device", "forwarder", "permits"]
            assert entry["forwarder_party"] == "230340000126"

        # 3. The nodes, with the compose entrypoint (the genesis hash from the bootstrap's file) and settings.
        node_envs: dict[str, dict[str, str]] = {}
        for node in NODES:
            argv, env = localize.service(services[node.lower()])
            assert env["TW_PORT"] == str(COMPOSE_PORTS[node])
            env["TW_PORT"] = str(local_ports[node])
            node_envs[node] = env
            log = (tmp_path / f"{node}.log").open("wb")
            processes.append(
                subprocess.Popen(
                    argv,
                    env=clean_env(env),
                    cwd=data,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            log.close()

        # 4. Healthy, by the compose health check and by the image's HEALTHCHECK, run as Docker would run them.
        healthchecks = {
            node: [services[node.lower()]["healthcheck"]["test"][1:], image_healthcheck()[:]] for node in NODES
        }
        deadline = time.monotonic() + 60
        for node in NODES:
            compose_check, image_check = healthchecks[node]
            while True:
                probe = subprocess.run(compose_check, env=clean_env(node_envs[node]), capture_output=True, timeout=10)
                if probe.returncode == 0:
                    break
                if time.monotonic() > deadline or processes[NODES.index(node)].poll() is not None:
                    log_text = (tmp_path / f"{node}.log").read_text(errors="replace")[-3000:]
                    pytest.fail(f"{node} never became healthy: {probe.stderr.decode()[-500:]}\n{log_text}")
                time.sleep(0.3)
            assert subprocess.run(image_check, env=clean_env(node_envs[node]), timeout=10).returncode == 0

        # 5. Signed messages: every node pings the other two; each ping ends delivered with an accepted receipt.
        with httpx.Client(timeout=10) as http:
            for node in NODES:
                base = f"http://127.0.0.1:{local_ports[node]}"
                served = TrustList.from_json(http.get(f"{base}/v1/corridor/trust-list").content)
                assert served.sha256 == genesis.sha256
                answer = http.post(
                    f"{base}/v1/admin/pings",
                    json={"note": f"salem from {node}"},
                    headers={"Authorization": f"Bearer {tokens[node]}"},
                )
                assert answer.status_code == 200, answer.text
                assert sorted(answer.json()["messages"]) == sorted(set(NODES) - {node})

            def delivered(node: str) -> list[dict[str, Any]]:
                page = http.get(
                    f"http://127.0.0.1:{local_ports[node]}/v1/admin/outbox",
                    params={"state": "delivered", "limit": 100},
                    headers={"Authorization": f"Bearer {tokens[node]}"},
                ).json()
                return [item for item in page["items"] if item["type"] == "corridor.ping"]

            deadline = time.monotonic() + 30
            while not all(len(delivered(node)) == len(NODES) - 1 for node in NODES):
                assert time.monotonic() < deadline, {node: delivered(node) for node in NODES}
                time.sleep(0.2)
            for node in NODES:
                pings = delivered(node)
                assert {item["peer"] for item in pings} == set(NODES) - {node}
                assert {item["receipt_status"] for item in pings} == {"accepted"}
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            process.wait(20)
        for url in database_urls.values():
            databases.drop_database(url)
