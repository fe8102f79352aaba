"""README's tour as a newcomer runs it: every ```sh block of "A tour of the API" (up to the next `## ` heading, so
its subsections are in), joined in order and run by one `bash -euo pipefail` from the repository's root, with
`curl` and `jq` from the machine. The only thing the suite changes is where the demo wrote its `corridor.json`
(`CORRIDOR`, which the tour reads with a default) and where scratch files go (`TMPDIR`); the addresses and tokens come
from that file, exactly as in a developer's shell.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
TOUR_HEADING = "## A tour of the API\n"
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.DOTALL | re.MULTILINE)
TOOLS = ("bash", "curl", "jq")


def tour_blocks(text: str | None = None) -> list[str]:
    """The tour's shell blocks, in the order README gives them."""
    text = README.read_text() if text is None else text
    start = text.index(TOUR_HEADING)
    end = text.find("\n## ", start + len(TOUR_HEADING))
    return SH_BLOCK.findall(text[start : end if end != -1 else len(text)])


def tour_script() -> str:
    return "\n".join(tour_blocks())


def require_tools() -> None:
    """curl and jq (`make test` and .ci/run install Debian's): skipped locally without them, a failure under CI."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not missing:
        return
    reason = f"README's tour needs {', '.join(missing)} (apt-get install {' '.join(missing)})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: under CI the tour must run (.ci/run installs them)")
    pytest.skip(reason)


def run_tour(*, corridor: Path, scratch: Path, timeout: float = 240.0) -> subprocess.CompletedProcess[str]:
    """Run the whole tour against the demo that wrote `corridor`; stdout and stderr together, as a terminal shows."""
    scratch.mkdir(parents=True, exist_ok=True)
    script = scratch / "tour.sh"
    script.write_text(tour_script())
    env = {name: value for name, value in os.environ.items() if not name.startswith("TW_")}
    env |= {"CORRIDOR": str(corridor), "TMPDIR": str(scratch)}
    return subprocess.run(
        ["bash", "-euo", "pipefail", str(script)],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
