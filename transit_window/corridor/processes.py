"""Starting, stopping and killing node processes (`transit-window serve`), and waiting until they are ready."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import IO

import httpx

from transit_window.corridor.topology import NodeSpec


@dataclass
class NodeProcess:
    spec: NodeSpec
    env: dict[str, str]
    command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "transit_window", "serve"])
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    def start(self) -> None:
        self.spec.folder.mkdir(parents=True, exist_ok=True)
        self._log = open(self.spec.log_file, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, *, timeout: float = 60.0, need_worker: bool = True) -> None:
        deadline = time.monotonic() + timeout
        last = "not started"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.spec.id} exited with {self.process.returncode}; see {self.spec.log_file}")
            try:
                response = httpx.get(f"{self.spec.url}/readyz", timeout=2.0)
                if response.status_code == 200:
                    return
                checks = response.json().get("checks", {})
                last = str(checks)
                if not need_worker and all(v == "ok" for k, v in checks.items() if k != "worker"):
                    return
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.2)
        raise TimeoutError(f"{self.spec.id} not ready after {timeout:.0f} s ({last}); see {self.spec.log_file}")

    def stop(self, *, timeout: float = 15.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def kill(self) -> None:
        """SIGKILL the whole process group: no goodbye, exactly like a power cut."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
