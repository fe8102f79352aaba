"""Fixtures for tracking: a movement taken from Almaty to Ashgabat on the in-process corridor, and forwarders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta, timezone

import pytest

from tests.declarations.conftest import customs, declaration, guarantee, papers
from tests.support.inprocess import InProcessCorridor
from transit_window import clock
from transit_window.clients.service import add_client
from transit_window.db.session import unit_of_work
from transit_window.tracking.devices import register

__all__ = ["customs", "guarantee", "papers"]
DECLARANT = "230340000126"
DEVICE = "ESEAL-KZ-0042"  # the e-seal of the test declaration
SEAL = "KZ-SEAL-000731"  # the seal the test declaration lists
ASHGABAT = timezone(timedelta(hours=5))


async def client_for(corridor: InProcessCorridor, node: str, *, role: str, party_id: str | None) -> dict[str, str]:
    """A client of `node`. A device client comes with the test declaration's e-seal registered to it (the one
    device of a test: registering it to a second client is refused); `device_for` registers others."""
    if role == "device":
        return await device_for(corridor, node, devices={DEVICE: SEAL})
    async with unit_of_work(corridor[node].node) as session:
        _, token = await add_client(session, name=f"{role} {party_id}", role=role, party_id=party_id)  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {token}"}


async def device_client(
    corridor: InProcessCorridor, node: str, *, devices: dict[str, str | None]
) -> tuple[str, dict[str, str]]:
    """A device client of `node` (an e-seal's own, or a gateway's) with `devices` (device id → the seal it carries,
    None when the device id is the seal number) registered to it, as an admin would: its id and its headers."""
    async with unit_of_work(corridor[node].node) as session:
        client, token = await add_client(session, name=f"device {', '.join(devices) or '-'}", role="device")
        for device_id, seal_id in devices.items():
            await register(
                session, device_id=device_id, client_id=client.id, seal_id=seal_id, registered_by="test-admin"
            )
    return client.id, {"Authorization": f"Bearer {token}"}


async def device_for(corridor: InProcessCorridor, node: str, *, devices: dict[str, str | None]) -> dict[str, str]:
    return (await device_client(corridor, node, devices=devices))[1]


@dataclass
class Travelled:
    mrn: str
    tracking_code: str


async def travel(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], *, until: str = "closed"
) -> Travelled:
    """Declare at Almaty, release, and record the steps to Ashgabat, delivering after each (stop after `until`)."""
    kz = corridor["KZ"]
    created = await kz.client.post("/v1/declarations", json=declaration(), headers=customs["KZ"])
    assert created.status_code == 201, created.text
    mrn = created.json()["mrn"]
    released = await kz.client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])
    assert released.status_code == 200, released.text
    code = released.json()["tracking_code"]
    await corridor.deliver_all()
    steps = [
        ("KZ", "crossings", {"office": "KZZHZ001", "direction": "exit"}, "exit-kz"),
        ("UZ", "crossings", {"office": "UZGIS001", "direction": "entry"}, "entry-uz"),
        ("UZ", "crossings", {"office": "UZALT001", "direction": "exit"}, "exit-uz"),
        ("TM", "crossings", {"office": "TMFAR001", "direction": "entry"}, "entry-tm"),
        ("TM", "arrival", {"office": "TMASB001"}, "arrived"),
        ("TM", "control-results", {"code": "A1"}, "closed"),
    ]
    for node, path, body, label in steps:
        body = {**body, "at": clock.utcnow().astimezone(ASHGABAT).isoformat()}
        response = await corridor[node].client.post(f"/v1/movements/{mrn}/{path}", json=body, headers=customs[node])
        assert response.status_code == 201, response.text
        await corridor.deliver_all()
        if label == until:
            break
    return Travelled(mrn=mrn, tracking_code=code)


@pytest.fixture
async def travelled(corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str) -> Travelled:
    return await travel(corridor, customs)


@pytest.fixture
async def declarant(corridor: InProcessCorridor) -> dict[str, dict[str, str]]:
    """The declarant's forwarder client on every node (same party id everywhere)."""
    return {node: await client_for(corridor, node, role="forwarder", party_id=DECLARANT) for node in corridor.nodes}
