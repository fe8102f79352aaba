"""Free text as the node accepts it: one validator (`Printable`) for every free-text string a client sends, and for the
text fields of corridor message bodies (a peer's NUL is then a refused message, `invalid-body`, not a failed insert).

A low-level module (like `errors.py`): features import it, it imports no feature.
"""

from __future__ import annotations

from pydantic import AfterValidator

# Bidirectional controls (embeddings, overrides, isolates, marks) and invisible characters. A U+202E in a trader's
# name or a remark shows a clerk text in another order than stored (`exe.txt` for `txt.exe`), and zero-width
# characters make two different ids or plates look the same; neither has a use in a customs field.
_BIDI = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
_INVISIBLE = {0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF}


def _refused(char: str) -> str | None:
    code = ord(char)
    if code < 32 or 127 <= code < 160:
        return "control character"
    if code in _BIDI:
        return "bidirectional control character"
    if code in _INVISIBLE:
        return "zero-width character"
    return None


def printable(value: str) -> str:
    """Refuse NUL and other control characters (they break fixed-format exports, and PostgreSQL refuses a NUL in
    text outright: a 500 rather than an answer), and the bidi and zero-width characters that hide what text says."""
    for char in value:
        kind = _refused(char)
        if kind is not None:
            raise ValueError(f"contains the {kind} U+{ord(char):04X}; only printable text is allowed")
    return value


Printable = AfterValidator(printable)
