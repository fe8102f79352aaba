"""Opaque cursors for keyset pagination: the last key of a page, base64url-encoded so clients do not build them."""

from __future__ import annotations

import base64

from transit_window.errors import FieldError, InvalidInput


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "the cursor is not one this API gave out", errors=[FieldError("/query/cursor", "bad cursor")]
        ) from exc
