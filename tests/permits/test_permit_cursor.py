"""Paging through permits never skips nor repeats one, however close together they were issued.

The cursor is the last row's (issued_at, id). Written with millisecond precision while `issued_at` is stored with
microseconds, a permit issued in the same millisecond as a page's last row, but later within it, sorted before the
cursor's rounded-down time and was skipped. The property: for any issue times packed into a few milliseconds and any
page size, following `next` yields every permit exactly once, newest first.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.inprocess import InProcessCorridor
from transit_window.db.session import unit_of_work
from transit_window.permits.models import Permit

_RUN = itertools.count()


async def _issue(corridor: InProcessCorridor, *, carrier: str, offsets: list[int]) -> list[str]:
    """Permits of one carrier issued `offsets` microseconds after a base time; their ids, newest first."""
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    rows = []
    for index, offset in enumerate(offsets):
        issued = base + timedelta(microseconds=offset)
        rows.append(
            Permit(
                id=f"UZ-KZ-{base.year}-2-{carrier[-6:]}{index:02d}",
                issuer="UZ",
                holder="KZ",
                year=base.year,
                type="transit",
                carrier_id=carrier,
                carrier_name="Almaty Fruit Export LLP",
                plate="123ABC02",
                trailer_plate=None,
                route=["KZ", "UZ"],
                trips=1,
                valid_from=base,
                expires_at=base + timedelta(days=30),
                issued_at=issued,
                token="not-a-jws: the list does not read it",
                status="active",
                entries=0,
                exits=0,
                application_id=None,
                revoked_at=None,
                revoke_reason=None,
                updated_at=issued,
            )
        )
    async with unit_of_work(corridor["KZ"].node) as session:
        session.add_all(rows)
    return [row.id for row in sorted(rows, key=lambda row: (row.issued_at, row.id), reverse=True)]


async def _page_through(corridor: InProcessCorridor, headers: dict[str, str], *, carrier: str, limit: int) -> list[str]:
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"carrier": carrier, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        answer = await corridor["KZ"].client.get("/v1/permits", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        seen += [item["id"] for item in answer.json()["items"]]
        cursor = answer.json()["next"]
        if cursor is None:
            return seen


async def test_following_next_yields_every_permit_once_newest_first(
    corridor: InProcessCorridor, border: dict[str, dict[str, str]]
) -> None:
    loop = asyncio.get_running_loop()

    # Offsets within 3 ms: many permits share a millisecond and some a microsecond (then the id breaks the tie).
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(offsets=st.lists(st.integers(min_value=0, max_value=3_000), min_size=1, max_size=9), limit=st.integers(1, 4))
    def property_(offsets: list[int], limit: int) -> None:
        carrier = f"2303400{next(_RUN):05d}"  # one carrier per example: examples share the database

        async def check() -> None:
            expected = await _issue(corridor, carrier=carrier, offsets=offsets)
            assert await _page_through(corridor, border["KZ"], carrier=carrier, limit=limit) == expected

        asyncio.run_coroutine_threadsafe(check(), loop).result()

    await asyncio.to_thread(property_)
