"""A certificate issued through the node without `issued_at` was issued now; one that gives it is checked as before
(README's tour and `openapi/examples/phyto.json` leave it out, so they never go stale)."""

from __future__ import annotations

from datetime import timedelta

from tests.documents.conftest import certificate, token
from tests.support.inprocess import InProcessCorridor
from transit_window import clock


async def test_a_certificate_without_issued_at_is_issued_now(corridor: InProcessCorridor) -> None:
    kz = corridor["KZ"]
    authority = await token(corridor, "KZ", "permits")
    body = certificate()
    del body["issued_at"]
    before = clock.utcnow()
    issued = await kz.client.post("/v1/documents", json=body, headers=authority)
    assert issued.status_code == 201, issued.text
    assert before <= clock.parse(issued.json()["issued_at"]) <= clock.utcnow()

    old = certificate(number="KZ-PHY-OLD-1", issued_at=clock.isoformat(clock.utcnow() - timedelta(days=400)))
    refused = await kz.client.post("/v1/documents", json=old, headers=authority)
    assert refused.status_code == 422 and refused.json()["errors"][0]["pointer"] == "/body/issued_at"
