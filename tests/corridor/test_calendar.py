"""The demo story on the days the calendar matters, with every process's clock moved by libfaketime (Debian's
`faketime`, as the clock-skew test uses): 20 December, 23:30 on 31 December in Tashkent, 00:30 on 1 January in Almaty,
31 January and the next leap day, each in this year's terms (`tests/support/calendar.py`). The story obtains the
certificate and permits through the API, releases, records the permits' ENTRY and EXIT at every border, verifies each
permit and audits every log: it must complete on each of those days, in the time zone of the day's country.

The processes see nothing unusual: libfaketime shifts the wall clock and the monotonic clock alike (shifting one and
not the other makes `time.sleep` fail with EINVAL), so timers keep working and only the date moves."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.corridor.conftest import free_base_port, require_libfaketime
from tests.support.calendar import YEAR_END_INSTANTS
from transit_window.corridor.demo import RECEIVER_PORT_OFFSET

pytestmark = pytest.mark.corridor
ZONES = {
    "dec-20": "Asia/Almaty",
    "dec-31-23h30-tashkent": "Asia/Tashkent",
    "jan-01-00h30-almaty": "Asia/Almaty",
    "jan-31": "Asia/Baku",
    "leap-day": "Asia/Bishkek",
}


@pytest.mark.parametrize("day", YEAR_END_INSTANTS, ids=list(YEAR_END_INSTANTS))
def test_the_demo_story_completes_on_the_days_around_the_year_end(day: str, tmp_path: Path) -> None:
    libfaketime = require_libfaketime("the calendar test")
    target = YEAR_END_INSTANTS[day]
    offset = int((target - datetime.now(UTC)).total_seconds())
    env = {
        **os.environ,
        "LD_PRELOAD": str(libfaketime),
        "FAKETIME": f"{offset:+d}",  # relative, so the clock runs on from the target instant
        "TZ": ZONES[day],
        "COLUMNS": "250",
    }
    command = [sys.executable, "-m", "transit_window", "demo", "--exit", "--dir", str(tmp_path / "demo")]
    run = subprocess.run(
        [*command, "--base-port", str(free_base_port(RECEIVER_PORT_OFFSET))],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=300,
    )
    printed = run.stdout.decode() + run.stderr.decode()
    assert run.returncode == 0, f"the demo at {target.isoformat()} ({day}):\n{printed[-6000:]}"
    assert "story complete" in printed
    assert "audit failed" not in printed
    year = target.astimezone(ZoneInfo("Asia/Almaty")).year  # the apples' carrier is Kazakh: its calendar's year
    assert f"UZ-KZ-{year}-2-1" in printed, printed[-3000:]
