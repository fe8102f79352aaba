"""Bad input at the certificates API: each wrong request is a 4xx problem+json (pointing at the field where there
is one) and changes nothing on any node: no certificate, share, file or outbound message, no changed status or hash.

Kazakhstan's plant-protection service is the client. The corridor is shared by the module (the requests change
nothing); its operator's HS file adds live cattle (HS 010229) to the code list, so that a phytosanitary certificate
for live animals fails on the certificate rule rather than on an unknown code.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from tests.conftest import NODES
from tests.documents.conftest import PDF_BYTES, assert_problem, certificate, token
from tests.support import databases
from tests.support.inprocess import InProcessCorridor
from tests.support.keys import TestMember as Member
from tests.support.keys import signed, trust_body
from tests.support.pdf import minimal_pdf
from transit_window import clock
from transit_window.documents.models import Document, DocumentFile, DocumentShare
from transit_window.protocol.models import OutboxMessage

Body = dict[str, Any]
PDF_TYPE = {"Content-Type": "application/pdf"}
LIVE_CATTLE = {"hs_code": "010229", "description": "Live cattle", "quantity": "12", "unit": "H87"}


@dataclass
class Desk:
    """The module's corridor, the clients' headers, and the certificates the stories act on."""

    corridor: InProcessCorridor
    permits: dict[str, str]
    customs: dict[str, str]
    tm_permits: dict[str, str]
    declared: Body  # issued with a declared pdf_sha256, no PDF yet
    bare: Body  # no hash, no PDF
    with_pdf: Body  # its PDF uploaded
    withdrawn: Body


@pytest.fixture(scope="module")
async def desk(
    node_databases: dict[str, str], members: dict[str, Member], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Desk]:
    await asyncio.gather(*(databases.truncate(url) for url in node_databases.values()))
    folder = Path(tmp_path_factory.mktemp("documents-bad-input"))
    trust = signed(trust_body([members[node] for node in NODES], threshold=2), [members[node] for node in NODES])
    (folder / "genesis.json").write_bytes(trust.to_json())
    hs_file = folder / "hs-operator.json"
    hs_file.write_bytes(orjson.dumps({"codes": [{"code": "010229", "description": "Live cattle, other"}]}))
    corridor = InProcessCorridor()
    try:
        for node in NODES:
            await corridor.add_node(
                members[node],
                database_url=node_databases[node],
                trust_file=folder / "genesis.json",
                genesis_sha256=trust.sha256,
                hs_file=hs_file,
            )
        permits = await token(corridor, "KZ", "permits")
        kz = corridor["KZ"].client

        async def issue(**changes: Any) -> Body:
            response = await kz.post("/v1/documents", json=certificate(**changes), headers=permits)
            assert response.status_code == 201, response.text
            body: Body = response.json()
            return body

        declared = await issue(number="KZ-PHY-1", pdf_sha256=hashlib.sha256(PDF_BYTES).hexdigest())
        bare = await issue(number="KZ-PHY-2")
        with_pdf = await issue(number="KZ-PHY-3", share_with=[])
        uploaded = await kz.put(
            f"/v1/documents/{with_pdf['id']}/pdf", content=PDF_BYTES, headers={**permits, **PDF_TYPE}
        )
        assert uploaded.status_code == 200, uploaded.text
        withdrawn = await issue(number="KZ-PHY-4", share_with=[])
        answer = await kz.post(f"/v1/documents/{withdrawn['id']}/withdraw", json={"reason": "typo"}, headers=permits)
        assert answer.status_code == 200, answer.text
        yield Desk(
            corridor=corridor,
            permits=permits,
            customs=await token(corridor, "KZ", "customs"),
            tm_permits=await token(corridor, "TM", "permits"),
            declared=declared,
            bare=bare,
            with_pdf=with_pdf,
            withdrawn=withdrawn,
        )
    finally:
        await corridor.close()


async def stored(corridor: InProcessCorridor) -> dict[str, Any]:
    """Row counts of every table a certificate request could write, and each certificate's state, per node."""
    state: dict[str, Any] = {}
    for node, entry in corridor.nodes.items():
        async with entry.node.sessionmaker() as session:
            counts = [
                int(await session.scalar(select(func.count()).select_from(model)) or 0)
                for model in (Document, DocumentShare, DocumentFile, OutboxMessage)
            ]
            rows = (
                await session.execute(
                    select(Document.id, Document.status, Document.pdf_sha256, Document.updated_at).order_by(Document.id)
                )
            ).all()
            acknowledged = (await session.execute(select(DocumentShare.acknowledged_at))).scalars().all()
            state[node] = (counts, [tuple(row) for row in rows], sorted(map(str, acknowledged)))
    return state


async def refused(
    desk: Desk, request: Callable[[], Awaitable[httpx.Response]], status: int, pointer: str | None, code: str | None
) -> Body:
    before = await stored(desk.corridor)
    problem = assert_problem(await request(), status, pointer, code)
    assert await stored(desk.corridor) == before
    return problem


def in_hours(hours: float) -> str:
    return clock.isoformat(clock.utcnow() + timedelta(hours=hours))


# (id, body, status, pointer, code): one change to a valid certificate each.
BODY_CASES: list[tuple[str, Body, int, str, str]] = [
    ("unknown-type", certificate(type="sanitary"), 422, "/body/type", "literal_error"),
    (
        "hs-code-not-in-the-list",
        certificate(goods=[{**certificate()["goods"][0], "hs_code": "080899"}]),
        422,
        "/body/goods/0/hs_code",
        "12",
    ),
    (
        "hs-code-with-dots",
        certificate(goods=[{**certificate()["goods"][0], "hs_code": "0808.10"}]),
        422,
        "/body/goods/0/hs_code",
        "12",
    ),
    ("phytosanitary-for-live-animals", certificate(goods=[LIVE_CATTLE]), 422, "/body/goods/0/hs_code", "14"),
    (
        "veterinary-for-apples-as-second-item",
        certificate(type="veterinary", goods=[{**LIVE_CATTLE, "hs_code": "020130"}, certificate()["goods"][0]]),
        422,
        "/body/goods/1/hs_code",
        "14",
    ),
    ("issued-tomorrow", certificate(issued_at=in_hours(24)), 422, "/body/issued_at", "14"),
    # Issue 13, finding 5: the first two were 500s (an OverflowError converting to UTC), the third a 201.
    (
        "issued-at-the-start-of-time",
        certificate(issued_at="0001-01-01T00:00:00+14:00"),
        422,
        "/body/issued_at",
        "value_error",
    ),
    (
        "issued-at-the-end-of-time",
        certificate(issued_at="9999-12-31T23:59:59-14:00"),
        422,
        "/body/issued_at",
        "value_error",
    ),
    ("issued-in-year-1", certificate(issued_at="0001-01-01T00:00:00Z"), 422, "/body/issued_at", "value_error"),
    ("issued-in-1999", certificate(issued_at="1999-12-31T23:59:59Z"), 422, "/body/issued_at", "value_error"),
    ("issued-400-days-ago", certificate(issued_at=in_hours(-24 * 400)), 422, "/body/issued_at", "14"),
    # Issue 13, finding 8: free text hides nothing from the officer reading it.
    (
        "consignor-name-with-a-right-to-left-override",
        certificate(consignor={"id": "230340000126", "name": "Almaty Fruit \u202eTLL", "country": "KZ"}),
        422,
        "/body/consignor/name",
        "value_error",
    ),
    (
        "description-with-a-zero-width-space",
        certificate(goods=[{**certificate()["goods"][0], "description": "Fresh\u200bapples"}]),
        422,
        "/body/goods/0/description",
        "value_error",
    ),
    (
        "issued-at-without-offset",
        certificate(issued_at="2026-01-01T10:00:00"),
        422,
        "/body/issued_at",
        "timezone_aware",
    ),
    ("sha256-upper-case", certificate(pdf_sha256="AB" * 32), 422, "/body/pdf_sha256", "string_pattern_mismatch"),
    ("sha256-too-short", certificate(pdf_sha256="ab" * 31), 422, "/body/pdf_sha256", "string_pattern_mismatch"),
    ("number-with-a-space", certificate(number="KZ PHY 9"), 422, "/body/number", "string_pattern_mismatch"),
    ("number-too-long", certificate(number="K" * 36), 422, "/body/number", "string_too_long"),
    ("no-goods", certificate(goods=[]), 422, "/body/goods", "too_short"),
    (
        "zero-quantity",
        certificate(goods=[{**certificate()["goods"][0], "quantity": "0"}]),
        422,
        "/body/goods/0/quantity",
        "greater_than",
    ),
    (
        "unit-lower-case",
        certificate(goods=[{**certificate()["goods"][0], "unit": "kgm"}]),
        422,
        "/body/goods/0/unit",
        "string_pattern_mismatch",
    ),
    ("unknown-field", certificate(signature="x"), 422, "/body/signature", "extra_forbidden"),
    (
        "consignee-country-unknown",
        certificate(consignee={"id": "1", "name": "x", "country": "XX"}),
        422,
        "/body/consignee/country",
        "12",
    ),
    ("share-with-this-node", certificate(share_with=["KZ"]), 422, "/body/share_with/0", "14"),
    ("share-with-a-non-corridor-country", certificate(share_with=["TM", "CN"]), 422, "/body/share_with/1", "12"),
    (
        "share-with-a-corridor-country-not-in-the-trust-list",
        certificate(share_with=["KG"]),
        422,
        "/body/share_with/0",
        "15",
    ),
    ("share-with-twice", certificate(share_with=["TM", "TM"]), 422, "/body/share_with/1", "14"),
]


@pytest.mark.parametrize(
    ("body", "status", "pointer", "code"), [case[1:] for case in BODY_CASES], ids=[case[0] for case in BODY_CASES]
)
async def test_a_bad_certificate_is_refused(desk: Desk, body: Body, status: int, pointer: str, code: str) -> None:
    kz = desk.corridor["KZ"].client
    await refused(desk, lambda: kz.post("/v1/documents", json=body, headers=desk.permits), status, pointer, code)


async def test_a_duplicate_number_is_a_conflict(desk: Desk) -> None:
    kz = desk.corridor["KZ"].client
    again = certificate(number="kz-phy-1")  # numbers are compared upper-case
    problem = await refused(desk, lambda: kz.post("/v1/documents", json=again, headers=desk.permits), 409, None, None)
    assert "KZ-PHY-1" in problem["detail"]


async def test_customs_cannot_issue(desk: Desk) -> None:
    kz = desk.corridor["KZ"].client
    await refused(
        desk, lambda: kz.post("/v1/documents", json=certificate(number="KZ-9"), headers=desk.customs), 403, None, None
    )


async def test_without_a_token_nothing_is_read_or_written(desk: Desk) -> None:
    kz = desk.corridor["KZ"].client
    await refused(desk, lambda: kz.post("/v1/documents", json=certificate(number="KZ-9")), 401, None, None)
    await refused(desk, lambda: kz.get(f"/v1/documents/{desk.bare['id']}"), 401, None, None)


async def test_withdrawing_twice_is_a_conflict(desk: Desk) -> None:
    kz = desk.corridor["KZ"].client
    url = f"/v1/documents/{desk.withdrawn['id']}/withdraw"
    await refused(desk, lambda: kz.post(url, json={"reason": "again"}, headers=desk.permits), 409, None, None)


async def test_the_issuer_cannot_acknowledge_its_own_certificate(desk: Desk) -> None:
    kz = desk.corridor["KZ"].client
    url = f"/v1/documents/{desk.bare['id']}/acknowledge"
    problem = await refused(desk, lambda: kz.post(url, headers=desk.customs), 409, None, None)
    assert "issued here" in problem["detail"]


async def test_replacing_with_the_same_number_or_another_type_is_refused(desk: Desk) -> None:
    kz = desk.corridor["KZ"].client
    url = f"/v1/documents/{desk.bare['id']}/replace"
    same = certificate(number="KZ-PHY-2")
    await refused(desk, lambda: kz.post(url, json=same, headers=desk.permits), 422, "/body/number", "14")
    origin = certificate(number="KZ-ORIG-2", type="origin")
    await refused(desk, lambda: kz.post(url, json=origin, headers=desk.permits), 422, "/body/type", "14")
    withdrawn = f"/v1/documents/{desk.withdrawn['id']}/replace"
    await refused(
        desk, lambda: kz.post(withdrawn, json=certificate(number="KZ-5"), headers=desk.permits), 409, None, None
    )


async def test_an_unknown_document_is_not_found(desk: Desk) -> None:
    kz = desk.corridor["KZ"].client
    for request in (
        lambda: kz.get("/v1/documents/0190a000-0000-7000-8000-000000000000", headers=desk.customs),
        lambda: kz.post("/v1/documents/nope/withdraw", json={"reason": "x"}, headers=desk.permits),
        lambda: kz.put("/v1/documents/nope/pdf", content=PDF_BYTES, headers={**desk.permits, **PDF_TYPE}),
        lambda: kz.get(f"/v1/documents/{desk.bare['id']}/pdf", headers=desk.customs),
    ):
        await refused(desk, request, 404, None, None)


async def test_a_bad_cursor_is_refused(desk: Desk) -> None:
    kz = desk.corridor["KZ"].client
    await refused(
        desk,
        lambda: kz.get("/v1/documents", params={"cursor": "__4"}, headers=desk.customs),
        422,
        "/query/cursor",
        "invalid",
    )


# -- the PDF ---------------------------------------------------------------------------------------------------


async def test_a_pdf_whose_hash_does_not_match_the_declared_one_is_refused(desk: Desk) -> None:
    kz = desk.corridor["KZ"].client
    other = minimal_pdf(title="Phytosanitary certificate, edited")
    url = f"/v1/documents/{desk.declared['id']}/pdf"
    problem = await refused(
        desk, lambda: kz.put(url, content=other, headers={**desk.permits, **PDF_TYPE}), 422, "/body", "14"
    )
    assert hashlib.sha256(other).hexdigest() in problem["detail"]
    assert desk.declared["pdf_sha256"] in problem["detail"]


async def test_an_upload_that_is_not_a_pdf_is_refused(desk: Desk) -> None:
    kz = desk.corridor["KZ"].client
    url = f"/v1/documents/{desk.bare['id']}/pdf"
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    await refused(desk, lambda: kz.put(url, content=png, headers={**desk.permits, **PDF_TYPE}), 422, "/body", "14")


# Issue 13, finding 7: each of these was stored (only the %PDF- prefix was checked) and served back inline.
PDF_CASES: list[tuple[str, bytes, str]] = [
    ("html-polyglot", minimal_pdf(before_xref=b"%<html><body><script>alert(1)</script></body></html>\n"), "14"),
    ("html-after-the-header", b"%PDF-1.7\n<html><script>fetch('/v1/declarations')</script></html>\n%%EOF\n", "14"),
    ("svg-script-polyglot", minimal_pdf(before_xref=b"%<svg onload=alert(1)>\n"), "14"),
    ("a-header-and-nothing-else", b"%PDF-1.7\n%%EOF\n", "14"),
    ("something-appended-after-eof", minimal_pdf() + b"%" + b"x" * 4096 + b"\n", "14"),
    ("startxref-pointing-nowhere", minimal_pdf().replace(b"startxref\n", b"startxref\n9"), "14"),
    ("open-action-javascript", minimal_pdf(catalog="/OpenAction << /S /JavaScript /JS (app.alert\\(1\\)) >> "), "15"),
    ("launch-action", minimal_pdf(catalog="/OpenAction << /S /Launch /F (cmd.exe) >> "), "15"),
    ("additional-actions", minimal_pdf(catalog="/AA << /WC << /S /JavaScript /JS (x) >> >> "), "15"),
    ("embedded-file", minimal_pdf(catalog="/Names << /EmbeddedFiles << /Names [] >> >> "), "15"),
    ("hex-escaped-javascript-name", minimal_pdf(catalog="/Names << /J#61vaScript << /Names [] >> >> "), "15"),
]


@pytest.mark.parametrize(("content", "code"), [case[1:] for case in PDF_CASES], ids=[case[0] for case in PDF_CASES])
async def test_a_polyglot_or_active_pdf_is_refused_saying_why(desk: Desk, content: bytes, code: str) -> None:
    kz = desk.corridor["KZ"].client
    url = f"/v1/documents/{desk.bare['id']}/pdf"
    problem = await refused(
        desk, lambda: kz.put(url, content=content, headers={**desk.permits, **PDF_TYPE}), 422, "/body", code
    )
    assert problem["detail"].startswith("the upload is refused: "), problem


async def test_an_upload_without_the_pdf_media_type_is_refused_with_415(desk: Desk) -> None:
    kz = desk.corridor["KZ"].client
    url = f"/v1/documents/{desk.bare['id']}/pdf"
    for media_type in ("application/octet-stream", "multipart/form-data; boundary=x", None):
        headers = {**desk.permits, **({"Content-Type": media_type} if media_type else {})}
        await refused(desk, lambda headers=headers: kz.put(url, content=PDF_BYTES, headers=headers), 415, None, None)


async def test_a_second_different_pdf_is_a_conflict(desk: Desk) -> None:
    kz = desk.corridor["KZ"].client
    url = f"/v1/documents/{desk.with_pdf['id']}/pdf"
    other = minimal_pdf(title="Another certificate")
    await refused(desk, lambda: kz.put(url, content=other, headers={**desk.permits, **PDF_TYPE}), 409, None, None)


async def test_customs_cannot_upload_a_pdf(desk: Desk) -> None:
    url = f"/v1/documents/{desk.bare['id']}/pdf"
    kz = desk.corridor["KZ"].client
    await refused(desk, lambda: kz.put(url, content=PDF_BYTES, headers={**desk.customs, **PDF_TYPE}), 403, None, None)


async def _chunks(total: int) -> AsyncIterator[bytes]:
    yield b"%PDF-1.7\n"
    chunk = b"0" * (1024 * 1024)
    for _ in range(total // len(chunk)):
        yield chunk


@pytest.mark.parametrize("streamed", [False, True], ids=["with-content-length", "streamed"])
async def test_a_20_mib_upload_is_refused_with_413(desk: Desk, streamed: bool) -> None:
    kz = desk.corridor["KZ"].client
    url = f"/v1/documents/{desk.bare['id']}/pdf"
    size = 20 * 1024 * 1024
    content: Any = _chunks(size) if streamed else b"%PDF-1.7\n" + b"0" * size
    problem = await refused(
        desk, lambda: kz.put(url, content=content, headers={**desk.permits, **PDF_TYPE}), 413, None, None
    )
    assert str(10 * 1024 * 1024) in problem["detail"]


async def test_other_bodies_keep_the_1_mib_limit(desk: Desk) -> None:
    """The PDF's larger limit is for its path only: a 2 MiB certificate is refused before it is parsed."""
    kz = desk.corridor["KZ"].client
    body = certificate(number="KZ-BIG", goods=[{**certificate()["goods"][0], "description": "a" * 2 * 1024 * 1024}])
    await refused(desk, lambda: kz.post("/v1/documents", json=body, headers=desk.permits), 413, None, None)
