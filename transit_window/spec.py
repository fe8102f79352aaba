"""The committed specifications: `openapi/openapi.json` and the JSON Schema of every message body in
`openapi/messages/`. Generated from the code without a server; a test fails when the committed files are stale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from transit_window.protocol.catalogue import REGISTRY
from transit_window.protocol.envelope import EnvelopePayload, ReceiptPayload
from transit_window.protocol.trust import TrustListBody

SPEC_DIR = Path(__file__).resolve().parents[1] / "openapi"


def _dump(document: Any) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def message_schemas() -> dict[str, bytes]:
    """File name → content for `openapi/messages/`."""
    files: dict[str, bytes] = {}
    for name in sorted(REGISTRY):
        message = REGISTRY[name]
        schema = message.body_model.model_json_schema()
        schema["$id"] = f"urn:dtc:message:{name}"
        schema["description"] = message.summary
        files[f"{name}.json"] = _dump(schema)
    for label, model in (("envelope", EnvelopePayload), ("receipt", ReceiptPayload), ("trust-list", TrustListBody)):
        schema = model.model_json_schema()
        schema["$id"] = f"urn:dtc:{label}"
        files[f"_{label}.json"] = _dump(schema)
    return files


def openapi_document() -> bytes:
    from transit_window.app import create_app
    from transit_window.settings import Settings

    app = create_app(Settings(), background=False)
    return _dump(app.openapi())


def export(folder: Path = SPEC_DIR) -> list[Path]:
    written = []
    messages = folder / "messages"
    messages.mkdir(parents=True, exist_ok=True)
    expected = message_schemas()
    for stale in messages.glob("*.json"):
        if stale.name not in expected:
            stale.unlink()
    for name, content in expected.items():
        (messages / name).write_bytes(content)
        written.append(messages / name)
    (folder / "openapi.json").write_bytes(openapi_document())
    written.append(folder / "openapi.json")
    return written
