"""What an uploaded certificate PDF must be before the node keeps it: a PDF and nothing else.

A file that starts with `%PDF-` may still be an HTML page a browser would render (a polyglot), or a PDF that runs
script or launches a program when opened. Certificates are opened by officers at border posts, so an upload must:

- be a PDF by structure: the header at offset 0, `%%EOF` in the last kilobyte, a `startxref` that points at an xref
  table or an xref stream, at least one object, a catalog with at least one page;
- carry no HTML or script markup anywhere in its bytes (`<html`, `<script`...): a browser sniffing the download
  would otherwise find a page in it. Searching the whole file is cheap and robust; that such a marker turns up by
  chance inside compressed data is about as likely as a hash collision;
- carry no active content (`/JavaScript`, `/JS`, `/OpenAction`, `/AA`, `/Launch`, `/EmbeddedFile`, forms that submit
  or import data, rich media, XFA) unless the operator allows it (`TW_PDF_ALLOW_ACTIVE`).

The structure is verified with pypdf (a maintained pure-Python parser, no native code) rather than by hand: it reads
xref tables and streams and compressed object streams, where a hand-written scan of the raw bytes would miss a
`/JavaScript` hidden in a compressed object. The raw scan runs too, for names pypdf's walk might not reach (an
object outside the xref). Nothing here touches the database; `service.upload_pdf` calls it off the event loop.
"""

from __future__ import annotations

import io
import re
from typing import Any

from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

from transit_window.errors import FieldError, InvalidInput

HEADER = re.compile(rb"%PDF-[12]\.[0-9]")
EOF_WINDOW = 1024  # ISO 32000-1 §7.5.5 lets readers look for %%EOF in the last 1024 bytes
OBJECT = re.compile(rb"\d+\s+\d+\s+obj\b")
STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF")
MARKUP = (b"<html", b"<script", b"<body", b"<iframe", b"<!doctype", b"<svg", b"<object", b"<embed", b"javascript:")
ACTIVE = frozenset(
    {
        "/JavaScript",
        "/JS",
        "/OpenAction",
        "/AA",
        "/Launch",
        "/EmbeddedFile",
        "/EmbeddedFiles",
        "/SubmitForm",
        "/ImportData",
        "/RichMedia",
        "/XFA",
    }
)
_NAME = re.compile(rb"/([A-Za-z][A-Za-z0-9#]*)")
_HEX_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")


def _refuse(detail: str, code: str = "14") -> InvalidInput:
    return InvalidInput(f"the upload is refused: {detail}", errors=[FieldError("/body", detail, code)])


def check_pdf(content: bytes, *, allow_active: bool) -> None:
    """Raise `InvalidInput` (422, pointer `/body`) saying what is wrong, or return when `content` is a plain PDF."""
    if not HEADER.match(content):
        raise _refuse("not a PDF file: it must start with a %PDF-1.x or %PDF-2.x header")
    tail = content[-EOF_WINDOW:]
    if b"%%EOF" not in tail:
        raise _refuse("not a whole PDF: no %%EOF marker at its end (truncated, or something appended)")
    lowered = content.lower()
    markup = next((marker for marker in MARKUP if marker in lowered), None)
    if markup is not None:
        raise _refuse(f"the file carries HTML or script markup ({markup.decode()!r}): a PDF polyglot")
    _check_xref(content)
    reader = _read(content)
    if not allow_active:
        found = sorted(_raw_active_names(content) | _active_names(reader))
        if found:
            raise _refuse(
                f"the PDF has active content ({', '.join(found)}); this node accepts only PDFs that run nothing",
                "15",
            )


def _check_xref(content: bytes) -> None:
    pointers = list(STARTXREF.finditer(content[-EOF_WINDOW:]))
    if not pointers:
        raise _refuse("not a PDF: no startxref before its %%EOF")
    offset = int(pointers[-1].group(1))
    target = content[offset : offset + 64] if offset < len(content) else b""
    if not (target.startswith(b"xref") or OBJECT.match(target)):
        raise _refuse(f"not a PDF: startxref {offset} points at neither an xref table nor an xref stream")
    if OBJECT.search(content) is None:
        raise _refuse("not a PDF: it holds no objects")


def _read(content: bytes) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(content), strict=False)
        if reader.is_encrypted:
            raise _refuse("the PDF is encrypted; upload it unencrypted (it is signed, not secret)")
        root = reader.trailer["/Root"].get_object()
        if not isinstance(root, DictionaryObject) or root.get("/Type") != "/Catalog":
            raise _refuse("not a PDF: its trailer names no document catalog")
        if len(reader.pages) < 1:
            raise _refuse("the PDF has no pages")
    except InvalidInput:
        raise
    except Exception as exc:  # pypdf raises many types on hostile input (PdfReadError, KeyError, ValueError...)
        raise _refuse(f"the PDF cannot be read: {type(exc).__name__}") from exc
    return reader


def _raw_active_names(content: bytes) -> set[str]:
    """Active names written anywhere in the raw bytes, `#xx` escapes undone (`/J#61vaScript` is `/JavaScript`)."""
    found = set()
    for match in _NAME.finditer(content):
        name = "/" + _HEX_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), match.group(1)).decode("latin-1")
        if name in ACTIVE:
            found.add(name)
    return found


def _active_names(reader: PdfReader) -> set[str]:
    """Active names in every object pypdf can resolve, compressed object streams included."""
    found: set[str] = set()
    seen: set[int] = set()

    def visit(value: Any, depth: int) -> None:
        if depth > 64:  # a hostile nesting; what is deeper than this is not a certificate
            return
        if isinstance(value, IndirectObject):
            if id(value.pdf) != id(reader) or value.idnum in seen:
                return
            seen.add(value.idnum)
            try:
                value = value.get_object()
            except Exception:  # an unresolvable reference is a broken PDF, not an active one
                return
        if isinstance(value, DictionaryObject):
            for key, item in value.items():
                if key in ACTIVE:
                    found.add(str(key))
                if key == "/S" and isinstance(item, NameObject) and item in ACTIVE:
                    found.add(str(item))
                visit(item, depth + 1)
        elif isinstance(value, ArrayObject):
            for item in value:
                visit(item, depth + 1)

    visit(reader.trailer, 0)
    for generation, objects in reader.xref.items():
        for idnum in list(objects):
            visit(IndirectObject(idnum, generation, reader), 0)
    for idnum in list(reader.xref_objStm):
        visit(IndirectObject(idnum, 0, reader), 0)
    return found
