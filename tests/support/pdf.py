"""Small, real PDFs for tests: what an upload must be since the node parses it (`transit_window/documents/pdf.py`).

`minimal_pdf()` is one page with one line of text, a correct xref table and trailer; `title` makes different files,
`padding` makes a big one (inside the page's content stream), `catalog` adds entries to the catalog (e.g. an
`/OpenAction`), `before_xref` adds raw bytes between the objects and the xref (a polyglot's HTML, say).
"""

from __future__ import annotations


def minimal_pdf(
    *, title: str = "Phytosanitary certificate", padding: int = 0, catalog: str = "", before_xref: bytes = b""
) -> bytes:
    text = title.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET\n".encode() + (b"%" + b"x" * padding + b"\n" if padding else b"")
    objects = [
        f"<< /Type /Catalog /Pages 2 0 R {catalog}>>".encode(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    out += before_xref
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
