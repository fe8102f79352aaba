"""JSON logs, one object per line, carrying message ids and request ids when the caller passes them in `extra`."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

_FIELDS = ("node", "msg_id", "peer", "request_id", "mrn", "type", "reason", "worker")


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in _FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(*, level: str, json: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json:
        formatter: logging.Formatter = JSONFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Quiet even at DEBUG: our access log replaces uvicorn's; httpx logs every URL it calls; aiosqlite logs every
    # statement with its bound values, which would put webhook signing secrets (stored as given) in the logs.
    for noisy in ("uvicorn.access", "httpx", "httpcore", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
