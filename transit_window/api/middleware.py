"""ASGI middleware: request body limits (413 before the body is read whole), HTTP metrics by route template, and
request ids (`X-Request-ID`) in responses and logs."""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """Refuse request bodies over `limit` bytes, by Content-Length or while streaming, with a 413 problem.

    `paths` gives some paths a larger (or smaller) limit: a string key is an exact path, a compiled pattern must
    match the whole path (`re.compile(r"/v1/documents/[^/]+/pdf")`). Exact paths win, then patterns in order."""

    def __init__(self, app: ASGIApp, *, limit: int, paths: Mapping[str | re.Pattern[str], int] | None = None) -> None:
        self.app = app
        self.limit = limit
        rules = paths or {}
        self.exact = {path: size for path, size in rules.items() if isinstance(path, str)}
        self.patterns = [(path, size) for path, size in rules.items() if isinstance(path, re.Pattern)]

    def limit_for(self, path: str) -> int:
        if path in self.exact:
            return self.exact[path]
        return next((size for pattern, size in self.patterns if pattern.fullmatch(path)), self.limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await self._refuse(scope, send, limit)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if received <= limit:  # past the limit the app's answer (e.g. FastAPI's 400) is replaced by 413
                await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, limited_receive, guarded_send)
        if received > limit:
            await self._refuse(scope, send, limit)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        body = orjson.dumps(
            {
                "type": "urn:dtc:problem:payload-too-large",
                "title": "Request body too large",
                "status": 413,
                "detail": f"the body exceeds {limit} bytes; split it into smaller requests",
                "instance": scope.get("path"),
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/problem+json"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class HTTPMetrics:
    def __init__(self, app: ASGIApp, *, metrics: Any) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.http_requests.labels(method=method, route=template, status=str(status)).inc()
            self.metrics.http_duration.labels(method=method, route=template).observe(time.perf_counter() - started)


_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
_access = logging.getLogger("transit_window.access")


_TRACKING_CODE = re.compile(r"^(/v1/track/|/track/)(?!static/)[^/]+")


def _loggable_path(path: str) -> str:
    """The path for the access log. A tracking code in the path is the credential of the public view: logged as
    `{code}`, like a token would never be."""
    return _TRACKING_CODE.sub(r"\1{code}", path)


def current_request_id() -> str | None:
    """The id of the HTTP request being served in this task (None outside a request)."""
    return _request_id.get()


class _RequestIdOfRecord:
    """`record.request_id`: the request being served when the record was made. A non-data descriptor, so a value
    passed as `extra={"request_id": ...}` lands in the record's __dict__ and wins (and is not refused as a clash)."""

    def __get__(self, record: object, owner: type | None = None) -> str | None:
        value = getattr(record, "__dict__", {}).get("_request_id")
        return value if isinstance(value, str) else None


class _RequestLogRecord(logging.LogRecord):
    request_id = _RequestIdOfRecord()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._request_id = _request_id.get()


class RequestID:
    """`X-Request-ID` in and out: the caller's id when it is a sane token (else a new one), echoed on the response
    and carried by every log line written while the request is served (the JSON logs' `request_id`), plus one
    access line per request."""

    header = b"x-request-id"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        if logging.getLogRecordFactory() is logging.LogRecord:  # leave a factory someone else installed alone
            logging.setLogRecordFactory(_RequestLogRecord)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(self.header, b"").decode("latin-1")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = _request_id.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(name, value) for name, value in message.get("headers", []) if name.lower() != self.header]
                message = {**message, "headers": [*headers, (self.header, request_id.encode("ascii"))]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _access.info(
                "%s %s %s %.1f ms",
                scope.get("method", ""),
                _loggable_path(scope.get("path", "")),
                status,
                (time.perf_counter() - started) * 1000,
            )
            _request_id.reset(token)


NO_STORE_MARK = "no_store"  # set in the request's state by `transit_window.api.deps.carries_secret`


class NoStore:
    """`Cache-Control: no-store` on every answer of a route that hands out a secret or a token (a webhook secret, a
    tracking code, a permit), so no browser, proxy or client cache keeps a copy. Routes declare it with the
    `carries_secret` dependency; the header is added here, on the way out, because several of those routes return a
    `Response` of their own (idempotent replays, 201s with a Location) that a dependency cannot touch."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start" and state.get(NO_STORE_MARK):
                headers = [
                    (name, value) for name, value in message.get("headers", []) if name.lower() != b"cache-control"
                ]
                message = {**message, "headers": [*headers, (b"cache-control", b"no-store")]}
            await send(message)

        await self.app(scope, receive, send_no_store)
