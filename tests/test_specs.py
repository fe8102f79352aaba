"""The committed specifications are what the code serves: a partner building a node in another language reads
`openapi/openapi.json` and `openapi/messages/*.json`, so they must never be stale or sloppy."""

from __future__ import annotations

import difflib
import hashlib
import re
from typing import Any

import orjson
import pytest

from transit_window import spec
from transit_window.catalogue import REGISTRY

REGENERATE = "the committed spec is stale: run `transit-window spec` and commit the result"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _diff(committed: bytes, generated: bytes, name: str) -> str:
    lines = difflib.unified_diff(
        committed.decode().splitlines(),
        generated.decode().splitlines(),
        fromfile=f"committed {name}",
        tofile=f"generated {name}",
        lineterm="",
        n=1,
    )
    return "\n".join(list(lines)[:40])


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(spec.openapi_document())
    return document


def _operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in openapi["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def test_committed_message_schemas_are_current() -> None:
    folder = spec.SPEC_DIR / "messages"
    generated = spec.message_schemas()
    committed = {path.name: path.read_bytes() for path in folder.glob("*.json")}

    assert sorted(committed) == sorted(generated), f"{REGENERATE} (files differ in {folder})"
    for name, content in generated.items():
        assert committed[name] == content, f"{REGENERATE}\n{_diff(committed[name], content, name)}"


def test_committed_openapi_is_current() -> None:
    path = spec.SPEC_DIR / "openapi.json"
    generated = spec.openapi_document()
    committed = path.read_bytes()
    assert committed == generated, f"{REGENERATE}\n{_diff(committed, generated, 'openapi.json')}"


def test_committed_example_bodies_are_current_and_valid() -> None:
    """`openapi/examples/` holds the bodies README's tour sends: each its schema's first example, accepted by it."""
    from transit_window.declarations.schemas import DeclarationIn
    from transit_window.documents.schemas import DocumentIn
    from transit_window.permits.schemas import ApplicationIn

    folder = spec.SPEC_DIR / "examples"
    for name, content in spec.example_bodies().items():
        path = folder / name
        assert path.is_file() and path.read_bytes() == content, f"{REGENERATE} ({path})"
    for name, model in (
        ("declaration.json", DeclarationIn),
        ("phyto.json", DocumentIn),
        ("application.json", ApplicationIn),
    ):
        model.model_validate_json((folder / name).read_bytes())
    declared = orjson.loads((folder / "phyto.json").read_bytes())["pdf_sha256"]
    assert declared == hashlib.sha256((folder / "phyto.pdf").read_bytes()).hexdigest(), "phyto.pdf is not phyto.json's"


def test_the_request_examples_carry_no_date_that_goes_stale(openapi: dict[str, Any]) -> None:
    """A date in a request example is refused once it is past (a limit date, a step's time, a quota year): those
    fields default to today or now, so the examples leave them out. A ping's time is the device's own reading and
    stays valid, so the position example keeps its times."""
    dated = re.compile(r"(?<!\d)(?:19|20)\d\d(?:-[01]\d-[0-3]\d)?(?!\d)")
    kept = {"PositionBatch"}
    found = []
    for name, schema in openapi["components"]["schemas"].items():
        if name in kept:
            continue
        for example in schema.get("examples", []):
            found += [f"{name}: {value}" for value in _strings_and_numbers(example) if dated.fullmatch(str(value))]
    assert not found, found


def _strings_and_numbers(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _strings_and_numbers(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _strings_and_numbers(item)]
    return [value]


def test_every_message_type_has_its_schema_file() -> None:
    folder = spec.SPEC_DIR / "messages"
    assert REGISTRY, "the catalogue registers no message types"
    for name, message in REGISTRY.items():
        path = folder / f"{name}.json"
        assert path.is_file(), f"message type {name} has no schema file {path}: run `transit-window spec`"
        schema = orjson.loads(path.read_bytes())
        assert schema["$id"] == f"urn:dtc:message:{name}"
        assert schema["description"] == message.summary
        assert schema.get("type") == "object" and "properties" in schema
    for envelope_part in ("_envelope.json", "_receipt.json", "_trust-list.json"):
        assert (folder / envelope_part).is_file()


def test_every_operation_has_a_unique_operation_id(openapi: dict[str, Any]) -> None:
    operations = _operations(openapi)
    assert operations
    missing = [f"{method.upper()} {path}" for path, method, operation in operations if not operation.get("operationId")]
    assert not missing, f"operations without operationId: {missing}"
    seen: dict[str, str] = {}
    for path, method, operation in operations:
        operation_id = operation["operationId"]
        where = f"{method.upper()} {path}"
        assert operation_id not in seen, f"operationId {operation_id} used by {seen[operation_id]} and {where}"
        seen[operation_id] = where


def test_every_declared_client_error_is_problem_json_with_its_schema(openapi: dict[str, Any]) -> None:
    """Every 4xx the API declares is RFC 9457 problem details, and only that (the handlers never answer
    a 4xx with plain application/json), with a schema a client generator can use."""
    checked = 0
    for path, method, operation in _operations(openapi):
        for status, response in operation.get("responses", {}).items():
            if not status.startswith("4"):
                continue
            where = f"{method.upper()} {path} {status}"
            content = response.get("content", {})
            assert list(content) == ["application/problem+json"], f"{where} declares {sorted(content)}"
            schema = content["application/problem+json"].get("schema")
            assert schema, f"{where}: application/problem+json without a schema"
            checked += 1
    assert checked > 0, "no 4xx responses declared at all"


def test_readme_configuration_table_lists_every_setting() -> None:
    """The README's table of TW_* settings is generated from the settings' descriptions: run `transit-window spec`."""
    from transit_window.spec import README, readme_with_settings

    text = README.read_text()
    assert readme_with_settings(text) == text, "README's settings table is stale: run `transit-window spec`"
