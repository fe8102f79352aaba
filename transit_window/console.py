"""The console every command and the demo's story print to. On a terminal rich fits its width; into a file or a pipe
(a log, a test, CI) rich would wrap at 80 columns, splitting URLs, tokens and table rows across lines, so there lines
are as long as they are (`soft_wrap`) and tables get room. A `COLUMNS` in the environment still decides.

In the foundation, not in `cli/`: the demo (`corridor/`) prints through it too, and `cli/` runs the demo, so it sits
below both and imports nothing of the node."""

from __future__ import annotations

import os
import sys

from rich.console import Console

WIDTH_OFF_TERMINAL = 200


def console_for(stream: str = "stdout") -> Console:
    target = sys.stderr if stream == "stderr" else sys.stdout
    if target.isatty() or os.environ.get("COLUMNS"):
        return Console(stderr=stream == "stderr")
    return Console(stderr=stream == "stderr", width=WIDTH_OFF_TERMINAL, soft_wrap=True)
