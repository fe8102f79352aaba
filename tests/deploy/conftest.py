"""Helpers for the deploy tests: free loopback ports, the operator's CLI run as its own process, and clean-up of
every node process a test started."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
BIN = Path(sys.executable).parent  # where `transit-window`, `hadolint` and `check-jsonschema` are installed

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 right now (held open together so none repeats)."""
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]


def clean_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test run's environment without any TW_* setting, the venv first on PATH, wide enough for rich tables."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("TW_")}
    clean["PATH"] = f"{BIN}{os.pathsep}{clean.get('PATH', '')}"
    return {**clean, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb", **(extra or {})}


@pytest.fixture
def ports() -> Callable[[int], list[int]]:
    return free_ports


@pytest.fixture
def clean_env() -> Callable[[dict[str, str] | None], dict[str, str]]:
    return clean_environment


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """`transit-window ARGS` in its own process, as an operator runs it (no TW_* inherited from the test run)."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "transit-window"), *args],
            cwd=tmp_path,
            env=clean_environment(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts (with start_new_session=True); each is stopped, then killed, at teardown."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
    for process in started:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


# --- the compose file, as `docker compose` would read it --------------------------------------------------------

_VARIABLE = re.compile(r"\$\$|\$\{(?P<braced>[^}]*)\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a compose `.env` file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose's interpolation: `$$` is a literal `$`; `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
    `${VAR:?error}` and `$VAR` are replaced from `variables`, and an unset required variable is an error."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        expression = match.group("braced") if match.group("braced") is not None else match.group("bare")
        for operator in (":-", "-", ":?", "?"):
            name, found, argument = expression.partition(operator)
            if found:
                break
        else:
            name, operator, argument = expression, "", ""
        value = variables.get(name)
        empty = value is None or (value == "" and operator.startswith(":"))
        if operator in (":-", "-") and (value is None or empty):
            return argument
        if operator in (":?", "?") and (value is None or empty):
            raise ValueError(f"compose needs {name}: {argument}")
        if value is None:
            raise ValueError(f"{name} is not set in deploy/.env.example and has no default")
        return value

    return _VARIABLE.sub(replace, text)


def resolve(node: Any, variables: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, list):
        return [resolve(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: resolve(value, variables) for key, value in node.items()}
    return node


def load_compose(variables: dict[str, str] | None = None) -> dict[str, Any]:
    """deploy/compose.yaml with YAML anchors merged and variables substituted from deploy/.env.example."""
    raw = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    document: dict[str, Any] = resolve(raw, variables or read_env_file(DEPLOY / ".env.example"))
    return document


@pytest.fixture(scope="session")
def env_example() -> dict[str, str]:
    return read_env_file(DEPLOY / ".env.example")


@pytest.fixture(scope="session")
def compose(env_example: dict[str, str]) -> dict[str, Any]:
    """deploy/compose.yaml as compose reads it with deploy/.env copied from deploy/.env.example."""
    return load_compose(env_example)
