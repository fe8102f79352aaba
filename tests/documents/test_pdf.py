"""The PDF check on its own (`transit_window/documents/pdf.py`): what it accepts, and that the operator's
`TW_PDF_ALLOW_ACTIVE` lets active content through while markup and broken structure stay refused."""

from __future__ import annotations

import pytest

from tests.support.pdf import minimal_pdf
from transit_window.documents.pdf import check_pdf
from transit_window.errors import InvalidInput
from transit_window.settings import Settings

JAVASCRIPT = minimal_pdf(catalog="/OpenAction << /S /JavaScript /JS (app.alert\\(1\\)) >> ")


def test_a_plain_pdf_small_or_large_is_accepted() -> None:
    check_pdf(minimal_pdf(), allow_active=False)
    check_pdf(minimal_pdf(padding=3 * 1024 * 1024), allow_active=False)


def test_active_content_is_refused_by_default_and_accepted_when_the_operator_allows_it() -> None:
    assert Settings().pdf_allow_active is False
    with pytest.raises(InvalidInput) as refused:
        check_pdf(JAVASCRIPT, allow_active=False)
    assert "/JavaScript" in refused.value.detail and "/OpenAction" in refused.value.detail
    check_pdf(JAVASCRIPT, allow_active=True)


def test_markup_is_refused_even_when_active_content_is_allowed() -> None:
    with pytest.raises(InvalidInput) as refused:
        check_pdf(minimal_pdf(before_xref=b"%<script>alert(1)</script>\n"), allow_active=True)
    assert "<script" in refused.value.detail
