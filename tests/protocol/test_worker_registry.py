"""A `transit-window worker` process (the scale-out shape: API replicas with TW_RUN_WORKER=false plus workers) pulls
gaps and applies what it fetches, so it must know every message type, not only those the protocol package defines.
It once knew 4 of 23, and refused every `transit.*`, `permit.*` and `document.*` message it pulled as unknown-type."""

from __future__ import annotations

import subprocess
import sys

from transit_window.spec import SPEC_DIR


def test_the_worker_process_knows_every_message_type_of_the_catalogue() -> None:
    published = sorted(path.stem for path in (SPEC_DIR / "messages").glob("*.json") if not path.stem.startswith("_"))
    probe = (
        "import transit_window.cli.main as cli, transit_window.tasks\n"
        "from transit_window.protocol.registry import REGISTRY\n"
        "print(' '.join(sorted(REGISTRY)))"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert run.stdout.split() == published


def test_a_process_that_never_sealed_the_registry_opens_no_envelope() -> None:
    """Only the protocol imported, as in a process composed without `transit_window.catalogue`: opening an envelope
    fails loudly before anything is read, instead of refusing a feature's messages as unknown-type forever."""
    probe = (
        "from datetime import UTC, datetime, timedelta\n"
        "from transit_window.protocol.envelope import open_envelope\n"
        "from transit_window.protocol.registry import IncompleteRegistry\n"
        "try:\n"
        "    open_envelope('a.b.c', trust=None, me='KZ', now=datetime.now(UTC), skew=timedelta(0))\n"
        "except IncompleteRegistry as exc:\n"
        "    print('refused:', exc)\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert run.stdout.startswith("refused: the message registry holds"), run.stdout + run.stderr
    assert "was never sealed" in run.stdout
