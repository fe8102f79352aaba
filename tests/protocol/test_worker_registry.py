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


def test_the_worker_process_wires_the_features_events_and_ports() -> None:
    """The worker applies inbound steps too: without the wiring a step recorded there would reach no timeline and no
    webhook, and a release would be checked against no paper at all."""
    probe = (
        "import transit_window.tasks\n"
        "from transit_window.bus import BUS\n"
        "from transit_window.declarations.events import MovementHeld, StepRecorded\n"
        "from transit_window.declarations.ports import PORTS\n"
        "from transit_window.tracking.events import EventRecorded\n"
        "print(BUS.sealed, PORTS.wired, len(PORTS.papers), PORTS.tracking_codes is not None, sorted(PORTS.parked))\n"
        "for event in (MovementHeld, StepRecorded, EventRecorded):\n"
        "    print(event.__name__, ' '.join(f'{s.__module__}.{s.__name__}' for s in BUS.subscribers(event)))\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert run.stdout.splitlines() == [
        "True True 2 True ['tracking.alert']",
        "MovementHeld transit_window.tracking.subscribers.on_movement_held",
        "StepRecorded transit_window.tracking.subscribers.on_step_recorded",
        "EventRecorded transit_window.webhooks.service.on_event_recorded",
    ], run.stdout + run.stderr


def test_a_process_never_wired_records_no_step_unheard_and_releases_nothing_unchecked() -> None:
    """Declarations imported without the composition: publishing a step's event and asking the release checks are
    refused loudly, naming the missing wiring, instead of silently skipping tracking, webhooks and the paper checks."""
    probe = (
        "import asyncio\n"
        "from transit_window.bus import IncompleteWiring, publish\n"
        "from transit_window.declarations.ports import PORTS\n"
        "try:\n"
        "    asyncio.run(publish(None, object()))\n"
        "except IncompleteWiring as exc:\n"
        "    print('bus:', exc)\n"
        "try:\n"
        "    PORTS.release_papers()\n"
        "except RuntimeError as exc:\n"
        "    print('ports:', exc)\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    lines = run.stdout.splitlines()
    assert lines[0].startswith("bus: object published before the features were wired"), run.stdout + run.stderr
    assert lines[1].startswith("ports: the release checks were never wired"), run.stdout + run.stderr
