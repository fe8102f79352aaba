"""One envelope for every list (`items`, `next`) and opaque cursors for keyset pagination: the last key of a page,
base64url-encoded so clients do not build them."""

from __future__ import annotations

import base64
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from transit_window.errors import FieldError, InvalidInput

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """Every list answer has this shape, so a client pages through movements, alerts or deliveries the same way:
    follow `next` (pass it as `cursor`) until it is null. Subclasses name the schema in the OpenAPI document."""

    items: list[T]
    next: str | None = Field(default=None, description="Pass as `cursor` for the next page; null on the last page.")


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "the cursor is not one this API gave out", errors=[FieldError("/query/cursor", "bad cursor")]
        ) from exc
