"""E-seal devices and the clients that may report for them (issue 13: "devices belong to what they seal").

A device client's token alone proves nothing about which truck it sits on: before this, any device token could
raise alerts on any movement. So an admin registers each device to one device client (an e-seal's own client, or
a gateway's client for all the devices behind it), with the seal number it carries. `positions.py` then takes a
ping only from the device's client, for a movement whose declaration lists that seal. Registering is an admin act
(API `PUT /v1/devices/{device_id}` or `transit-window clients add --device`); a device moves to another client only
after it is retired (`DELETE`), so a typo cannot silently hand one operator's e-seals to another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from transit_window import clock
from transit_window.api.deps import AdminClient, SessionDep
from transit_window.api.pagination import Page
from transit_window.api.problems import responses
from transit_window.clients.models import ApiClient
from transit_window.db.base import table_of
from transit_window.db.dialect import dialect_of
from transit_window.errors import Conflict, FieldError, InvalidInput, NotFound
from transit_window.text import Printable
from transit_window.tracking.models import Device

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

DEVICE_PATTERN = r"^[A-Za-z0-9._:-]+$"
DeviceId = Annotated[str, Path(min_length=1, max_length=64, pattern=DEVICE_PATTERN)]


async def register(
    session: AsyncSession, *, device_id: str, client_id: str, seal_id: str | None, registered_by: str
) -> Device:
    """Register the device to a device client (again: the same owner may change the seal it carries)."""
    client = await session.get(ApiClient, client_id)
    if client is None or client.revoked_at is not None or client.role != "device":
        raise InvalidInput(
            f"client {client_id} is not an active device client; create one with the role device first",
            errors=[FieldError("/body/client_id", "not an active client with the role device", "not-a-device-client")],
        )
    device = await session.get(Device, device_id)
    if device is None:
        # Insert-or-nothing, then read whichever row won: two registrations of one device at once (a gateway's retry
        # while its first PUT is still running) made one of them a 500 on the primary key.
        await session.execute(
            dialect_of(session)
            .insert_ignore(table_of(Device))
            .values(
                device_id=device_id,
                client_id=client_id,
                seal_id=seal_id,
                registered_at=clock.utcnow(),
                registered_by=registered_by,
            )
        )
        device = await session.get(Device, device_id, populate_existing=True)
        assert device is not None
    if device.client_id != client_id:
        raise Conflict(
            f"device {device_id} is registered to client {device.client_id}; retire it "
            f"(DELETE /v1/devices/{device_id}) before registering it to another client"
        )
    device.seal_id = seal_id
    await session.flush()
    return device


async def retire(session: AsyncSession, *, device_id: str) -> None:
    device = await session.get(Device, device_id)
    if device is None:
        raise NotFound(f"no device {device_id} at this node")
    await session.delete(device)
    await session.flush()


async def owned(session: AsyncSession, device_ids: set[str]) -> dict[str, Device]:
    """device id → its registration, for the devices of a batch that are registered at all."""
    found: dict[str, Device] = {}
    ordered = sorted(device_ids)
    for start in range(0, len(ordered), 500):
        rows = await session.scalars(select(Device).where(Device.device_id.in_(ordered[start : start + 500])))
        found.update((device.device_id, device) for device in rows)
    return found


# -- the admin API -----------------------------------------------------------------------------------------------

router = APIRouter(tags=["devices"])


class DeviceIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"client_id": "0b6f6f0e-8a55-4d0c-9d43-5f1f3e1c2a77", "seal_id": "KZ-SEAL-000731"}]
        },
    )

    client_id: str = Field(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$", description="The device client")
    seal_id: Annotated[str, Printable] | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The seal number the device carries, as declarations list it; omit when it is the device id",
    )


class DeviceOut(BaseModel):
    device_id: str
    client_id: str
    seal_id: str = Field(description="The seal number a declaration must list for this device's pings")
    registered_at: str

    @classmethod
    def of(cls, device: Device) -> DeviceOut:
        return cls(
            device_id=device.device_id,
            client_id=device.client_id,
            seal_id=device.seal,
            registered_at=clock.isoformat(device.registered_at),
        )


class DeviceList(Page[DeviceOut]):
    pass


@router.put(
    "/v1/devices/{device_id}",
    operation_id="devices_register",
    summary="Register an e-seal device to the device client that may report its pings (admin)",
    response_model=DeviceOut,
    responses=responses(401, 403, 409, 422),
)
async def put_device(device_id: DeviceId, request: DeviceIn, admin: AdminClient, session: SessionDep) -> DeviceOut:
    device = await register(
        session,
        device_id=device_id,
        client_id=request.client_id,
        seal_id=request.seal_id,
        registered_by=admin.client_id,
    )
    return DeviceOut.of(device)


@router.get(
    "/v1/devices",
    operation_id="devices_list",
    summary="The registered devices, with their client and seal (admin)",
    response_model=DeviceList,
    responses=responses(401, 403, 422),
)
async def list_devices(
    admin: AdminClient,
    session: SessionDep,
    cursor: Annotated[
        str | None, Query(max_length=64, pattern=DEVICE_PATTERN, description="`next` of the page before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeviceList:
    statement = select(Device).order_by(Device.device_id).limit(limit + 1)
    if cursor:
        statement = statement.where(Device.device_id > cursor)
    rows = list((await session.scalars(statement)).all())
    page = rows[:limit]
    return DeviceList(
        items=[DeviceOut.of(device) for device in page],
        next=page[-1].device_id if len(rows) > limit else None,
    )


@router.delete(
    "/v1/devices/{device_id}",
    operation_id="devices_retire",
    summary="Retire a device: its pings are refused until it is registered again (admin)",
    status_code=204,
    response_class=Response,
    responses=responses(401, 403, 404, 422),
)
async def delete_device(device_id: DeviceId, admin: AdminClient, session: SessionDep) -> Response:
    await retire(session, device_id=device_id)
    return Response(status_code=204)
