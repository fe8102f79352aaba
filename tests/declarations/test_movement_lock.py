"""A movement read for a step under its lock is read afresh, even when the transaction had read it before: the step
then advances the status another transaction committed meanwhile, never the stale one (journey.add_step trusts a
movement locked this way and does not read it again)."""

from __future__ import annotations

from sqlalchemy import select, update

from tests.declarations.conftest import declaration
from tests.support.inprocess import InProcessCorridor
from transit_window.declarations import service
from transit_window.declarations.models import Movement


async def test_a_locked_read_replaces_what_the_session_read_before(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    del guarantee
    kz = corridor["KZ"]
    mrn = (await kz.client.post("/v1/declarations", json=declaration(), headers=customs["KZ"])).json()["mrn"]
    assert (await kz.client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])).status_code == 200
    async with kz.node.sessionmaker() as first:
        early = await first.scalar(select(Movement).where(Movement.mrn == mrn))
        assert early is not None and early.status == "released"
        await first.commit()  # ends its transaction; the object stays in the session, as it was read
        async with kz.node.sessionmaker() as other:
            await other.execute(update(Movement).where(Movement.mrn == mrn).values(status="in_transit"))
            await other.commit()
        locked = await service.find_movement(first, mrn, lock=True)
        assert locked is early and locked.status == "in_transit"
        await first.rollback()
