"""The body limit follows the path: the PDF upload of any certificate gets `max_document_bytes`, the positions
batch keeps its own exact-path limit, and everything else (a PDF's neighbours included) the general one."""

from __future__ import annotations

import pytest

from transit_window.api.middleware import BodyLimit
from transit_window.app import create_app
from transit_window.settings import Settings


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/v1/documents/0190a000-0000-7000-8000-000000000000/pdf", 10 * 1024 * 1024),
        ("/v1/tracking/positions", 4 * 1024 * 1024),
        ("/v1/documents", 1024 * 1024),
        ("/v1/documents/0190a000-0000-7000-8000-000000000000", 1024 * 1024),
        ("/v1/documents/a/b/pdf", 1024 * 1024),
        ("/v1/documents//pdf", 1024 * 1024),
        ("/v1/documents/x/pdf/more", 1024 * 1024),
        ("/prefix/v1/documents/x/pdf", 1024 * 1024),
    ],
)
def test_the_limit_of_each_path(path: str, limit: int) -> None:
    app = create_app(Settings(), background=False)
    [middleware] = [entry for entry in app.user_middleware if entry.cls is BodyLimit]
    body_limit = BodyLimit(app, **middleware.kwargs)
    assert body_limit.limit_for(path) == limit
