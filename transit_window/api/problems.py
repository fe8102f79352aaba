"""The one place that turns errors into RFC 9457 `application/problem+json` responses."""

from __future__ import annotations

import logging
import traceback
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, PendingRollbackError
from starlette.exceptions import HTTPException as StarletteHTTPException

from transit_window.errors import DomainError, NotAuthenticated, Problem

logger = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


class FieldProblem(BaseModel):
    pointer: str = Field(description="JSON pointer (RFC 6901) into the request, e.g. /body/goods/0/hs_code")
    detail: str
    code: str = Field(
        description="NCTS functional error code: 12 wrong type, format or value, 13 missing, 14 against a rule, "
        "15 not allowed here (some domain checks use a named code instead, e.g. not-your-device)"
    )
    type: str | None = Field(default=None, description="For a structural error, the validator's own error type")


# Structural errors (pydantic's) carry the same NCTS codes as the domain's own (errors.FieldError): a missing field
# is 13, a field the schema does not allow 15, anything else wrong in type, format or range 12. The validator's own
# error type stays beside it, in `type`.
_MISSING = frozenset(
    {"missing", "missing_argument", "missing_keyword_only_argument", "missing_positional_only_argument"}
)
_NOT_ALLOWED = frozenset({"extra_forbidden", "unexpected_keyword_argument", "unexpected_positional_argument"})
_NOT_AN_OBJECT = frozenset({"model_attributes_type", "dict_type", "model_type"})


def ncts_code(error_type: str) -> str:
    if error_type in _MISSING:
        return "13"
    if error_type in _NOT_ALLOWED:
        return "15"
    return "12"


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _json_syntax(document: object, position: object, reason: str) -> str:
    """'Expecting value at line 3, column 14': where a person finds the mistake, not a character offset."""
    if not isinstance(document, str) or not isinstance(position, int):
        return f"the body is not valid JSON: {reason}"
    line = document.count("\n", 0, position) + 1
    column = position - (document.rfind("\n", 0, position) + 1) + 1
    return f"the body is not valid JSON: {reason} at line {line}, column {column}"


class ProblemDocument(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldProblem] | None = None


def problem_response(
    problem: Problem, *, instance: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    body = problem.as_dict()
    if instance:
        body["instance"] = instance
    return Response(orjson.dumps(body), status_code=problem.status, media_type=PROBLEM_JSON, headers=headers)


def _pointer(loc: tuple[Any, ...] | list[Any]) -> str:
    return "/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in loc)


def install(app: FastAPI) -> None:
    _declare_problems_as_problem_json(app)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        headers = {"WWW-Authenticate": exc.challenge} if isinstance(exc, NotAuthenticated) else None
        if "retry_after" in exc.extra:
            headers = {"Retry-After": str(exc.extra["retry_after"])}
        return problem_response(Problem.from_error(exc), instance=request.url.path, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        content_type = request.headers.get("content-type", "")
        errors = []
        for error in exc.errors():
            kind = str(error.get("type", "invalid"))
            location = tuple(error.get("loc", ()))
            if location == ("body",) and kind in _NOT_AN_OBJECT and content_type and not _is_json(content_type):
                problem = Problem(
                    status=415,
                    title="Unsupported media type",
                    detail=f"the body must be JSON, sent with Content-Type: application/json (this one is "
                    f"{content_type.split(';', 1)[0].strip() or 'unnamed'})",
                    type="urn:dtc:problem:unsupported-media-type",
                )
                return problem_response(problem, instance=request.url.path, headers={"Accept": "application/json"})
            if kind == "json_invalid":
                reason = str((error.get("ctx") or {}).get("error", "syntax error"))
                position = location[1] if len(location) > 1 else None
                detail = _json_syntax(getattr(exc, "body", None), position, reason)
                errors.append({"pointer": "/body", "detail": detail, "code": "12", "type": kind})
                continue
            message = str(error.get("msg", "invalid"))
            errors.append({"pointer": _pointer(location), "detail": message, "code": ncts_code(kind), "type": kind})
        return problem_response(_invalid_fields(errors), instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            # FastAPI answers a JSON syntax error with a 422 `json_invalid` but a body that is not UTF-8 with a bare
            # 400. To a client both are the same mistake (JSON is UTF-8, RFC 8259 §8.1): one documented answer.
            error = {
                "pointer": "/body",
                "detail": "the body is not UTF-8 encoded JSON",
                "code": "12",
                "type": "json_invalid",
            }
            return problem_response(_invalid_fields([error]), instance=request.url.path)
        titles = {404: "Not found", 405: "Method not allowed", 413: "Request body too large"}
        problem = Problem(
            status=exc.status_code,
            title=titles.get(exc.status_code, "HTTP error"),
            detail=str(exc.detail) if exc.detail else titles.get(exc.status_code, ""),
        )
        return problem_response(problem, instance=request.url.path, headers=getattr(exc, "headers", None))

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PendingRollbackError)
    @app.exception_handler(OSError)
    async def _database(request: Request, exc: Exception) -> Response:
        if not database_unavailable(exc):
            return await _unexpected(request, exc)
        logger.warning("database unavailable: %s", exc)
        problem = Problem(
            status=503,
            title="Database unavailable",
            detail="the node's database is unreachable or busy; retry shortly",
            type="urn:dtc:problem:unavailable",
        )
        return problem_response(problem, instance=request.url.path, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error on %s", request.url.path)
        problem = Problem(status=500, title="Internal error", detail="an unexpected error occurred; it was logged")
        return problem_response(problem, instance=request.url.path)


# SQLSTATEs of a server that is away rather than a request that is wrong: connection exceptions (class 08),
# administrator or crash shutdown, and "the database system is starting up / shutting down" (57P01-57P03).
_AWAY_STATES = ("08", "57P01", "57P02", "57P03")


def database_unavailable(exc: BaseException) -> bool:
    """True when `exc` says the node's database is down, restarting, or dropped the connection: a 503 to retry.

    SQLAlchemy wraps most of these as `OperationalError`/`InterfaceError`, but with asyncpg "the database system
    is starting up" arrives as a bare `DBAPIError`, a refused connection as the driver's own `OSError`, and a
    statement on a connection invalidated mid-transaction as `PendingRollbackError` (code 8s2b)."""
    if isinstance(exc, DBAPIError):
        state = str(getattr(exc.orig, "sqlstate", None) or "")
        return (
            isinstance(exc, OperationalError | InterfaceError)
            or exc.connection_invalidated
            or state.startswith(_AWAY_STATES)
        )
    if isinstance(exc, PendingRollbackError):
        return exc.code == "8s2b"  # "Can't reconnect until invalid transaction is rolled back"
    if isinstance(exc, OSError):  # only when the database driver raised it, not any other socket
        return any("asyncpg" in frame.f_code.co_filename for frame, _ in traceback.walk_tb(exc.__traceback__))
    return False


def _invalid_fields(errors: list[dict[str, str]]) -> Problem:
    first = errors[0] if errors else {"pointer": "/", "detail": "invalid request"}
    detail = f"{first['pointer']}: {first['detail']}"
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more)"
    return Problem(
        status=422,
        title="The request has invalid fields",
        detail=detail,
        type="urn:dtc:problem:invalid-input",
        extra={"errors": errors},
    )


def _declare_problems_as_problem_json(app: FastAPI) -> None:
    """Errors are only ever sent as problem+json: FastAPI files a response `model` (and its own automatic 422)
    under application/json, so move every 4xx/5xx body to problem+json with the problem schema."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.setdefault(
                "ProblemDocument", ProblemDocument.model_json_schema(ref_template="#/components/schemas/{model}")
            )
            components.setdefault("FieldProblem", FieldProblem.model_json_schema())
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
            problem = {"schema": {"$ref": "#/components/schemas/ProblemDocument"}}
            for item in schema.get("paths", {}).values():
                for operation in item.values():
                    if "requestBody" in operation:  # every body passes the size limit (api/middleware.BodyLimit)
                        operation.setdefault("responses", {}).setdefault(
                            "413", {"description": "Request body too large", "content": {PROBLEM_JSON: problem}}
                        )
                        if "application/json" in operation["requestBody"].get("content", {}):
                            operation["responses"].setdefault(
                                "415",
                                {"description": "The body is not sent as JSON", "content": {PROBLEM_JSON: problem}},
                            )
                    for status, response in operation.get("responses", {}).items():
                        content = response.get("content", {})
                        if status[0] in "45" and "application/json" in content:
                            content.pop("application/json")
                            content[PROBLEM_JSON] = problem
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status documented with the problem schema."""
    return {
        status: {"model": ProblemDocument, "content": {PROBLEM_JSON: {}}, "description": "Problem details"}
        for status in statuses
    }
