"""The API keeps its published contract under hostile input: Schemathesis generates requests from the committed
`openapi/openapi.json` (valid ones and ones that break the schema), sends them to a real node as every role, and
checks each answer: never a 5xx, never a status or body the spec does not describe, and every 4xx a problem+json
that says what went wrong.

Each operation is fuzzed as each role it admits (the roles are read off the routes, so a new route is covered the
day it is added), and a quarter as many examples as the roles it refuses (anonymous included). Requests come from
three sources: valid per the schema, schema-breaking, and the spec's own examples (which reach the 2xx answers);
path identifiers are sometimes real ones from the seeded node, so the fuzzer reaches past the 404 into the service
code. The suite runs 60 examples per operation and admitted role (an operation without inputs has one request
to make, and Hypothesis stops there) and 15 per refused operation, on both dialects: about 11,000 requests in a
minute and a half on two cores, which keeps the whole suite within its time. TW_FUZZ_EXAMPLES=100 (or more) is the
thorough run. A last, deterministic
test puts a NUL in every parameter, which Schemathesis seldom does and PostgreSQL never accepts.
"""

from __future__ import annotations

import base64
import copy
import functools
import inspect
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from hypothesis import HealthCheck, event, given, reject, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode, SerializationContext
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz.conftest import ANONYMOUS, Seeded, examples
from tests.support.inprocess import InProcessCorridor
from transit_window import spec
from transit_window.app import create_app
from transit_window.clients.service import ROLES
from transit_window.settings import Settings

SPEC = json.loads((spec.SPEC_DIR / "openapi.json").read_text())
SCHEMA = schemathesis.openapi.from_dict(SPEC)
OPERATIONS = {
    operation.definition.raw["operationId"]: operation for operation in (r.ok() for r in SCHEMA.get_all_operations())
}
PROBLEM_JSON = "application/problem+json"


@schemathesis.serializer("application/pdf", "application/jose")
def _raw(context: SerializationContext, value: Any) -> dict[str, Any]:
    """A PDF upload or a signed corridor message as bytes, whatever the generator made of the string schema."""
    del context
    if isinstance(value, bytes):
        return {"data": value}
    return {"data": (value if isinstance(value, str) else json.dumps(value)).encode("utf-8", "surrogatepass")}


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


def _roles_of(route: APIRoute) -> tuple[str, ...]:
    """The roles `require(...)` admits on this route; none for public and peer-signed routes."""
    for dependency in _dependencies(route.dependant):
        call = dependency.call
        if call is not None and call.__qualname__ == "require.<locals>.dependency":
            roles: tuple[str, ...] = inspect.getclosurevars(call).nonlocals["roles"]
            return roles
    return ()


ROUTE_ROLES = {
    context.unique_id: _roles_of(context.route)
    for context in iter_route_contexts(create_app(Settings(), background=False).routes)
    if isinstance(context.route, APIRoute)
}
ADMITTED = [(operation_id, role) for operation_id in OPERATIONS for role in ROUTE_ROLES[operation_id] or (ANONYMOUS,)]
REFUSED = [operation_id for operation_id in OPERATIONS if ROUTE_ROLES[operation_id]]


def no_server_error(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Never a 5xx, except one the operation documents as an answer (`/readyz`: 503 while the node is not ready)."""
    if str(response.status_code) in case.operation.responses.status_codes:
        return None
    return not_a_server_error(ctx, response, case)


def problem_details(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4xx is RFC 9457 problem+json whose status matches the response and which says what went wrong."""
    del ctx
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.split(";")[0].strip() == PROBLEM_JSON, (
        f"{case.operation.label} answered {response.status_code} as {content_type!r}, not {PROBLEM_JSON}"
    )
    problem = response.json()
    assert isinstance(problem, dict), problem
    assert problem.get("status") == response.status_code, problem
    for member in ("title", "detail"):
        assert isinstance(problem.get(member), str) and problem[member].strip(), (member, problem)
    return None


CHECKS = [
    no_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    problem_details,
]


def _request(case: Case, *, base_url: str, headers: dict[str, str]) -> dict[str, Any]:
    """httpx keyword arguments for `case` (Schemathesis serializes for `requests`)."""
    kwargs = case.as_transport_kwargs(base_url=base_url, headers=headers)
    kwargs.pop("cookies", None)
    if "data" in kwargs:
        data = kwargs.pop("data")
        kwargs["content" if isinstance(data, bytes | str) else "data"] = data
    return kwargs


async def _exchange(case: Case, corridor: InProcessCorridor, headers: dict[str, str]) -> None:
    kz = corridor["KZ"]
    try:
        request = kz.client.build_request(**_request(case, base_url=kz.member.endpoint, headers=headers))
    except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeEncodeError, ValueError, TypeError):
        reject()  # a request no HTTP client can send (a header with a newline, say) says nothing about the node
    response = await kz.client.send(request)
    event(f"answered {response.status_code}")
    case.validate_response(response, checks=CHECKS, headers=headers)


@functools.cache
def _strategies(operation_id: str) -> tuple[st.SearchStrategy[Case], ...]:
    """Valid requests, requests that break the schema, and the spec's own examples (which reach the 2xx paths)."""
    operation = OPERATIONS[operation_id]
    return (
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        *operation.get_strategies_from_examples(),
    )


def _draw_case(data: st.DataObject, operation_id: str, seeded: Seeded) -> Case:
    case = data.draw(st.one_of(_strategies(operation_id)), label="case")
    for name in list(case.path_parameters or {}):
        known = seeded.known.get(name)
        if known and data.draw(st.booleans(), label=f"real {name}"):
            case.path_parameters[name] = data.draw(st.sampled_from(known), label=name)
    return case


FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    database=None,
)


@pytest.mark.parametrize(("operation_id", "role"), ADMITTED, ids=[f"{op}-{role}" for op, role in ADMITTED])
@settings(FUZZ, max_examples=examples(60))
@given(data=st.data())
async def test_an_admitted_role_gets_only_answers_the_spec_describes(
    fuzz_corridor: InProcessCorridor, seeded: Seeded, operation_id: str, role: str, data: st.DataObject
) -> None:
    case = _draw_case(data, operation_id, seeded)
    await _exchange(case, fuzz_corridor, seeded.headers[role])


@pytest.mark.parametrize("operation_id", REFUSED)
@settings(FUZZ, max_examples=max(examples(60) // 4, 1))
@given(data=st.data())
async def test_a_refused_role_gets_a_problem_the_spec_describes(
    fuzz_corridor: InProcessCorridor, seeded: Seeded, operation_id: str, data: st.DataObject
) -> None:
    admitted = ROUTE_ROLES[operation_id]
    role = data.draw(st.sampled_from([ANONYMOUS, *(role for role in ROLES if role not in admitted)]), label="role")
    case = _draw_case(data, operation_id, seeded)
    await _exchange(case, fuzz_corridor, seeded.headers[role])


# --- NUL, the character PostgreSQL will not take -------------------------------------------------------------------

NUL = "a\x00b"


def _example_body(operation_id: str) -> Any:
    """The first example of the operation's JSON body in the spec, if it has one."""
    content = OPERATIONS[operation_id].definition.raw.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    examples = SPEC["components"]["schemas"].get(schema.get("$ref", "").rsplit("/", 1)[-1], {}).get("examples")
    return copy.deepcopy(examples[0]) if examples else NOT_SET


def _string_leaves(value: Any, pointer: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _string_leaves(item, (*pointer, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _string_leaves(item, (*pointer, index))
    elif isinstance(value, str):
        yield pointer


def _with_nul(body: Any, pointer: tuple[str | int, ...]) -> Any:
    changed = copy.deepcopy(body)
    parent = changed
    for part in pointer[:-1]:
        parent = parent[part]
    parent[pointer[-1]] += "\x00"
    return changed


def _nul_cases(operation_id: str, seeded: Seeded) -> Iterator[tuple[str, Case]]:
    """The operation with a NUL in one path parameter, query parameter or body string at a time, everything else
    real: the spec's example body, identifiers of the seeded node."""
    operation = OPERATIONS[operation_id]
    real = {parameter.name: (seeded.known.get(parameter.name) or ["x"])[0] for parameter in operation.path_parameters}
    body = _example_body(operation_id)
    media = "application/json" if body is not NOT_SET else None
    for parameter in operation.path_parameters:
        # Percent-encoded by hand: Schemathesis leaves path values as they are, and httpx will not send a raw NUL.
        case = operation.Case(path_parameters={**real, parameter.name: "a%00b"}, body=body, media_type=media)
        yield f"/path/{parameter.name}", case
    for parameter in operation.query:
        yield f"/query/{parameter.name}", operation.Case(path_parameters=real, query={parameter.name: NUL})
    for pointer in _string_leaves(body) if body is not NOT_SET else ():
        case = operation.Case(path_parameters=real, body=_with_nul(body, pointer), media_type=media)
        yield "/body/" + "/".join(map(str, pointer)), case


async def test_a_nul_anywhere_in_a_request_is_refused_as_the_spec_says(
    fuzz_corridor: InProcessCorridor, seeded: Seeded
) -> None:
    """PostgreSQL refuses U+0000 in text outright, so a NUL that reaches a query is a 500 there and not on SQLite;
    Schemathesis seldom puts one in a path or query. Every parameter of every operation, and every string of the
    spec's example bodies, gets one here (the outbox cursor and retry ids, consignment MRNs, document ids and
    numbers, the guarantee, permit application and seal ids, two filters, and a forwarder without a party were
    500s on PostgreSQL)."""
    kz = fuzz_corridor["KZ"]
    failures = []
    for operation_id in OPERATIONS:
        headers = seeded.headers[(ROUTE_ROLES[operation_id] or (ANONYMOUS,))[0]]
        for where, case in _nul_cases(operation_id, seeded):
            response = await kz.client.send(
                kz.client.build_request(**_request(case, base_url=kz.member.endpoint, headers=headers))
            )
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except Exception as failure:  # every failure is listed, not only the first
                failures.append(f"{case.operation.label} NUL at {where}: {response.status_code} {failure}")
    assert not failures, "\n".join(failures)


# --- dates at the ends of the corridor's range (issue 13, finding 5) -----------------------------------------------

# Out of the range 2000-01-01 .. 2100-01-01 (exclusive): each must be a 422 naming the field. The first two were
# 500s (converting to UTC overflows `datetime`), the others stored.
TIMES_OUT = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00Z",
    "1999-12-31T23:59:59.999Z",
    "2000-01-01T13:59:59+14:00",
    "2100-01-01T00:00:00Z",
    "2099-12-31T10:00:00-14:00",
]
TIMES_IN = [
    "2000-01-01T00:00:00Z",
    "2000-01-01T14:00:00+14:00",
    "2099-12-31T23:59:59.999Z",
    "2099-12-31T09:59:59-14:00",
]
DATES_OUT = ["0001-01-01", "1999-12-31", "2100-01-01", "9999-12-31"]
DATES_IN = ["2000-01-01", "2099-12-31"]
TIME_CURSORS = {"events_query", "permits_list"}  # cursors that carry a time: base64url of "time|id"
DATE_FORMATS = ("date-time", "date")


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema itself: `$ref` followed, and of an `anyOf` (an optional field) the branch that is not null."""
    while True:
        if "$ref" in schema:
            schema = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        elif "anyOf" in schema:
            schema = next(branch for branch in schema["anyOf"] if branch.get("type") != "null")
        else:
            return schema


def _date_leaves(value: Any, schema: dict[str, Any], pointer: tuple[str | int, ...] = ()) -> Iterator[tuple[Any, str]]:
    """(pointer, format) of every date or date-time in `value`, read off the schema it follows."""
    schema = _resolve(schema)
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _date_leaves(item, schema.get("properties", {}).get(key, {}), (*pointer, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _date_leaves(item, schema.get("items", {}), (*pointer, index))
    elif schema.get("format") in DATE_FORMATS:
        yield pointer, schema["format"]


def _replaced(body: Any, pointer: tuple[str | int, ...], value: str) -> Any:
    changed = copy.deepcopy(body)
    parent = changed
    for part in pointer[:-1]:
        parent = parent[part]
    parent[pointer[-1]] = value
    return changed


def _time_cursor(moment: str) -> str:
    return base64.urlsafe_b64encode(f"{moment}|00000000-0000-0000-0000-000000000000".encode()).decode().rstrip("=")


def _date_cases(operation_id: str, seeded: Seeded) -> Iterator[tuple[str, str, bool, Case]]:
    """(where, value, in range?, case): each date parameter, body date and time cursor of the operation set to each
    value in turn, everything else real (the spec's example body, identifiers of the seeded node)."""
    operation = OPERATIONS[operation_id]
    real = {parameter.name: (seeded.known.get(parameter.name) or ["x"])[0] for parameter in operation.path_parameters}
    values = {"date-time": (TIMES_OUT, TIMES_IN), "date": (DATES_OUT, DATES_IN)}
    for parameter in operation.query:
        found = _resolve(parameter.definition.get("schema", {})).get("format")
        if found in DATE_FORMATS:
            out, within = values[found]
            for value in out + within:
                case = operation.Case(path_parameters=real, query={parameter.name: value})
                yield f"/query/{parameter.name}", value, value in within, case
    if operation_id in TIME_CURSORS:
        for value in TIMES_OUT + TIMES_IN:
            case = operation.Case(path_parameters=real, query={"cursor": _time_cursor(value)})
            yield "/query/cursor", value, value in TIMES_IN, case
    body = _example_body(operation_id)
    if body is NOT_SET:
        return
    content = operation.definition.raw["requestBody"]["content"]["application/json"]
    for key, field in _resolve(content["schema"]).get("properties", {}).items():
        if key not in body and _resolve(field).get("format") in DATE_FORMATS:
            body = {**body, key: None}  # left out of the example (it defaults to today or now): set here in turn
    for pointer, found in _date_leaves(body, content["schema"]):
        out, within = values[found]
        for value in out + within:
            case = operation.Case(
                path_parameters=real, body=_replaced(body, pointer, value), media_type="application/json"
            )
            yield "/body/" + "/".join(map(str, pointer)), value, value in within, case


def _request_date_fields() -> dict[str, dict[str, Any]]:
    """Every date or date-time a request takes, as "operation /query/name" or "operation /body/path" (`*` for any
    index), with its schema."""
    found: dict[str, dict[str, Any]] = {}

    def walk(schema: dict[str, Any], where: str, seen: frozenset[str]) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                walk(SPEC["components"]["schemas"][name], where, seen | {name})
            return
        for branch in schema.get("anyOf", []):
            walk(branch, where, seen)
        if schema.get("format") in DATE_FORMATS:
            found[where] = schema
        for key, item in schema.get("properties", {}).items():
            walk(item, f"{where}/{key}", seen)
        if "items" in schema:
            walk(schema["items"], f"{where}/*", seen)

    for operation_id, operation in OPERATIONS.items():
        for parameter in operation.query:
            walk(parameter.definition.get("schema", {}), f"{operation_id} /query/{parameter.name}", frozenset())
        content = operation.definition.raw.get("requestBody", {}).get("content", {}).get("application/json")
        if content:
            walk(content["schema"], f"{operation_id} /body", frozenset())
    return found


def test_every_date_the_api_takes_publishes_the_corridor_range() -> None:
    """The bounds are in the spec with each date (`formatMinimum`...), so clients and fuzzers see them."""
    fields = _request_date_fields()
    assert len(fields) >= 10, sorted(fields)
    unbounded = sorted(where for where, schema in fields.items() if "formatMinimum" not in schema)
    assert not unbounded, unbounded


async def test_dates_at_and_past_the_ends_of_the_range_are_answered_as_the_spec_says(
    fuzz_corridor: InProcessCorridor, seeded: Seeded
) -> None:
    """Every date query parameter, time cursor and date in the spec's example bodies, as each of the extreme values:
    never a 5xx, always an answer the spec describes; outside the range a 422 pointing at the field."""
    kz = fuzz_corridor["KZ"]
    failures = []
    reached: set[str] = set()
    for operation_id in OPERATIONS:
        headers = seeded.headers[(ROUTE_ROLES[operation_id] or (ANONYMOUS,))[0]]
        for where, value, within, case in _date_cases(operation_id, seeded):
            reached.add(f"{operation_id} " + "/".join("*" if part.isdigit() else part for part in where.split("/")))
            response = await kz.client.send(
                kz.client.build_request(**_request(case, base_url=kz.member.endpoint, headers=headers))
            )
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
                if not within:
                    assert response.status_code == 422, response.text
                    pointers = [error["pointer"] for error in response.json().get("errors", [])]
                    assert where in pointers, pointers
            except Exception as failure:  # every failure is listed, not only the first
                failures.append(f"{case.operation.label} {where}={value}: {response.status_code} {failure}")
    assert not failures, "\n".join(failures)
    missed = sorted(set(_request_date_fields()) - reached)
    assert not missed, f"dates no example reaches (add them to the schema's example): {missed}"


# --- characters that hide what text says (issue 13, finding 8) ---------------------------------------------------

HIDDEN = "\u202e"  # RIGHT-TO-LEFT OVERRIDE; its siblings (bidi, zero-width) go through the same validator


def _hidden_cases(operation_id: str, seeded: Seeded) -> Iterator[tuple[str, Case]]:
    """The operation with U+202E added to one query parameter or one string of the example body at a time."""
    operation = OPERATIONS[operation_id]
    real = {parameter.name: (seeded.known.get(parameter.name) or ["x"])[0] for parameter in operation.path_parameters}
    for parameter in operation.query:
        yield f"/query/{parameter.name}", operation.Case(path_parameters=real, query={parameter.name: "a" + HIDDEN})
    body = _example_body(operation_id)
    for pointer in _string_leaves(body) if body is not NOT_SET else ():
        changed = _replaced(body, pointer, f"{_at(body, pointer)}{HIDDEN}")
        yield (
            "/body/" + "/".join(map(str, pointer)),
            operation.Case(path_parameters=real, body=changed, media_type="application/json"),
        )


def _at(body: Any, pointer: tuple[str | int, ...]) -> Any:
    for part in pointer:
        body = body[part]
    return body


async def test_a_bidi_override_in_any_field_is_a_422_naming_it(
    fuzz_corridor: InProcessCorridor, seeded: Seeded
) -> None:
    """No free-text field of any request takes a U+202E: every query parameter and every string of the spec's
    example bodies, as the role the operation admits, answers 422 pointing at the field (an alert's note, a
    webhook's description and URL, permit tokens and cursors took it before)."""
    kz = fuzz_corridor["KZ"]
    failures = []
    for operation_id in OPERATIONS:
        headers = seeded.headers[(ROUTE_ROLES[operation_id] or (ANONYMOUS,))[0]]
        for where, case in _hidden_cases(operation_id, seeded):
            response = await kz.client.send(
                kz.client.build_request(**_request(case, base_url=kz.member.endpoint, headers=headers))
            )
            if not ROUTE_ROLES[operation_id] and response.status_code == 401:
                continue  # a peer-signed route: an unsigned request is refused before its parameters are read
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
                assert response.status_code == 422, response.text
                pointers = [error["pointer"] for error in response.json().get("errors", [])]
                # the field, or the list it is in (event types are checked as a whole)
                assert any(p.startswith(where) or where.startswith(f"{p}/") for p in pointers), pointers
            except Exception as failure:
                failures.append(f"{case.operation.label} U+202E at {where}: {response.status_code} {failure}")
    assert not failures, "\n".join(failures)
