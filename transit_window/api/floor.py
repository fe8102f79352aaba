"""A benchmark floor: `POST /v1/_floor` parses a JSON object and stores it as one row, nothing else.

Mounted only when `TW_BENCH_FLOOR_ENDPOINT=true` and kept out of the OpenAPI spec. It measures what the same
server, middleware, session dependency and unit of work cost for one stored row, so `bench/declarations.py` can
print declarations/s as a share of it. No authentication, no validation beyond "a JSON object", one Core INSERT.

Its table is deliberately not part of the node's schema (its own `MetaData`, no migration): the benchmark creates
it in its throwaway database with `create_table` before it starts the node.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Column, MetaData, String, Table, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from transit_window import clock
from transit_window.api.deps import SessionDep
from transit_window.db.base import JSONType, UTCDateTime
from transit_window.ids import new_id

metadata = MetaData()
floor_rows = Table(
    "bench_floor_rows",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("body", JSONType, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

router = APIRouter(include_in_schema=False)


class FloorIn(BaseModel):
    """Any JSON object: the least a typed endpoint can parse."""

    model_config = ConfigDict(extra="allow")


async def create_table(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)


@router.post("/v1/_floor", status_code=201)
async def store_one_row(body: FloorIn, session: SessionDep) -> dict[str, str]:
    row_id = new_id()
    await session.execute(insert(floor_rows).values(id=row_id, body=body.model_dump(), created_at=clock.utcnow()))
    return {"id": row_id}
