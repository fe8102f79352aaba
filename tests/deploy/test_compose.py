"""`deploy/compose.yaml`, the whole corridor on one machine: valid against the Compose specification's JSON Schema
(offline, `check-jsonschema --builtin-schema vendor.compose-spec`), and consistent with itself: six nodes on fixed
ports, a database per node created by the init script, start order by health and completion, TW_* settings only."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NODES = {"KZ": 8101, "KG": 8102, "UZ": 8103, "TJ": 8104, "TM": 8105, "AZ": 8106}


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    result = check_jsonschema(DEPLOY / "compose.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_does_catch_a_broken_compose_file(tmp_path: Path) -> None:
    """The validation is real: a misspelt depends_on condition is refused, and so is a misspelt key."""
    text = (DEPLOY / "compose.yaml").read_text()
    for wrong, right in (
        ("condition: service_finished", "condition: service_completed_successfully"),
        ("stop_grace: 15s", "stop_grace_period: 15s"),
    ):
        path = tmp_path / "compose.yaml"
        path.write_text(text.replace(right, wrong, 1))
        result = check_jsonschema(path)
        assert result.returncode == 1, result.stdout
        assert wrong.split(":")[1 if "condition" in wrong else 0].strip() in result.stdout, result.stdout


def test_six_nodes_on_fixed_ports_each_with_its_database_key_and_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    init_sql = (DEPLOY / "postgres-init" / "10-node-databases.sql").read_text()
    created = set(re.findall(r"CREATE DATABASE (\w+);", init_sql))
    assert created == {f"tw_{node.lower()}" for node in NODES}

    for node, port in NODES.items():
        service = services[node.lower()]
        env = service["environment"]
        assert all(name.startswith("TW_") for name in env), f"{node}: only TW_* settings"
        assert (env["TW_NODE_ID"], env["TW_PORT"], env["TW_PUBLIC_URL"]) == (
            node,
            str(port),
            f"http://{node.lower()}:{port}",
        )
        assert service["ports"] == [f"127.0.0.1:{port + 100}:{port}"], "published on 82xx: never a local demo's"
        assert env["TW_DATABASE_URL"].endswith(f"@postgres:5432/tw_{node.lower()}")
        assert env["TW_KEY_FILE"] == f"/data/{node}/node-key.pem"
        assert services[f"migrate-{node.lower()}"]["environment"]["TW_DATABASE_URL"] == env["TW_DATABASE_URL"]
        assert service["command"] == ["serve"] and "transit-window" in service["entrypoint"][2]
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "bootstrap": {"condition": "service_completed_successfully"},
            f"migrate-{node.lower()}": {"condition": "service_completed_successfully"},
        }
        migrate = services[f"migrate-{node.lower()}"]
        assert migrate["command"] == ["db", "upgrade"]
        assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}

    bootstrap = services["bootstrap"]
    assert set(bootstrap["depends_on"]) == {f"migrate-{node.lower()}" for node in NODES}
    assert {value["condition"] for value in bootstrap["depends_on"].values()} == {"service_completed_successfully"}
    members = [line.split() for line in bootstrap["environment"]["TW_BOOTSTRAP_MEMBERS"].splitlines() if line.strip()]
    assert [member[0] for member in members] == list(NODES)
    for node, _name, endpoint, database, host_url in members:
        env = services[node.lower()]["environment"]
        assert (endpoint, database) == (env["TW_PUBLIC_URL"], env["TW_DATABASE_URL"]), node
        assert host_url == "http://" + services[node.lower()]["ports"][0].rsplit(":", 1)[0], node
    assert int(bootstrap["environment"]["TW_BOOTSTRAP_THRESHOLD"]) <= len(NODES)


def test_every_variable_the_compose_file_uses_is_in_env_example(env_example: dict[str, str]) -> None:
    """An operator who copies .env.example to .env sets everything compose reads, and nothing it ignores (but
    COMPOSE_PROJECT_NAME, which Compose itself reads from .env)."""
    text = (DEPLOY / "compose.yaml").read_text().replace("$$", "")
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    settings = set(env_example) - {"COMPOSE_PROJECT_NAME"}
    assert used == settings, f"missing: {used - settings}; unused: {settings - used}"


def test_the_project_name_comes_from_env_for_compose_1_and_2(env_example: dict[str, str]) -> None:
    """Compose 1.29 refuses a top-level `name:`; COMPOSE_PROJECT_NAME in .env names the project for both."""
    assert "name" not in yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert env_example["COMPOSE_PROJECT_NAME"] == "transit-corridor"
    assert "deploy/.env" in (DEPLOY.parent / ".gitignore").read_text().splitlines(), "deploy/.env is never committed"
