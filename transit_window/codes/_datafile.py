"""Reading reference JSON files into pydantic models, with errors that name the bad entry.

Owns only the translation of JSON and pydantic failures into `ReferenceDataError` messages such as
``offices.json: offices[3] (code 'KZALA001'), field 'lat': Input should be less than or equal to 90``.
It must not know what offices or HS codes are.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from transit_window.codes._errors import ReferenceDataError

M = TypeVar("M", bound=BaseModel)


def read_bundled(name: str, model: type[M]) -> M:
    """Read a data file shipped in this package."""
    text = resources.files("transit_window.codes").joinpath(name).read_text(encoding="utf-8")
    return parse_reference(text, source=f"bundled {name}", model=model)


def read_file(path: Path | str, model: type[M]) -> M:
    """Read an operator's data file; every failure becomes a `ReferenceDataError` naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReferenceDataError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ReferenceDataError(f"{path}: cannot be read as UTF-8 text ({error})") from None
    return parse_reference(text, source=str(path), model=model)


def parse_reference(text: str, *, source: str, model: type[M]) -> M:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReferenceDataError(
            f"{source}: not valid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from None
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems = [_describe(raw, detail) for detail in error.errors(include_url=False)]
        raise ReferenceDataError(f"{source}: " + "; ".join(problems)) from None


def _describe(raw: Any, detail: Any) -> str:
    """One pydantic error as `list[index] (code 'X'), field 'name': message`."""
    location: tuple[int | str, ...] = tuple(detail["loc"])
    message = str(detail["msg"]).removeprefix("Value error, ")
    parts: list[str] = []
    node = raw
    index = 0
    while index < len(location):
        key = location[index]
        if isinstance(key, str) and index + 1 < len(location) and isinstance(location[index + 1], int):
            position = location[index + 1]
            assert isinstance(position, int)
            entry = _child(_child(node, key), position)
            parts.append(f"{key}[{position}]" + _entry_label(entry))
            node = entry
            index += 2
        else:
            parts.append(f"field '{key}'")
            node = _child(node, key)
            index += 1
    where = ", ".join(parts) if parts else "top level"
    return f"{where}: {message}"


def _child(node: Any, key: int | str) -> Any:
    if isinstance(node, dict) and isinstance(key, str):
        return node.get(key)
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        return node[key]
    return None


def _entry_label(entry: Any) -> str:
    if isinstance(entry, dict):
        for key in ("code", "chapter"):
            value = entry.get(key)
            if isinstance(value, str):
                return f" ({key} {value!r})"
    return ""
