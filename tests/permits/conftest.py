"""Fixtures for permits: a permit authority and a border-post (customs) client on each in-process node."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.support.calendar import quota_year, today
from tests.support.inprocess import InProcessCorridor
from transit_window.clients.service import add_client
from transit_window.db.session import unit_of_work

CARRIER = {"id": "230340000126", "name": "Almaty Fruit Export LLP"}


def application(**changes: Any) -> dict[str, Any]:
    """The apples truck from Almaty through Uzbekistan to Turkmenistan."""
    start = today()
    body: dict[str, Any] = {
        "carrier": dict(CARRIER),
        "plate": "123ABC02",
        "trailer_plate": "45TRL02",
        "route": ["KZ", "UZ", "TM"],
        "valid_from": start.isoformat(),
        "valid_until": (start + timedelta(days=20)).isoformat(),
        "trips": 1,
    }
    body.update(changes)
    return body


async def _clients(corridor: InProcessCorridor, role: str) -> dict[str, dict[str, str]]:
    headers = {}
    for node_id, entry in corridor.nodes.items():
        async with unit_of_work(entry.node) as session:
            _, token = await add_client(session, name=f"{role} {node_id}", role=role)  # type: ignore[arg-type]
        headers[node_id] = {"Authorization": f"Bearer {token}"}
    return headers


@pytest.fixture
async def authority(corridor: InProcessCorridor) -> dict[str, dict[str, str]]:
    """A permit authority client per node."""
    return await _clients(corridor, "permits")


@pytest.fixture
async def border(corridor: InProcessCorridor) -> dict[str, dict[str, str]]:
    """A border post (customs) client per node."""
    return await _clients(corridor, "customs")


async def grant(
    corridor: InProcessCorridor,
    authority: dict[str, dict[str, str]],
    *,
    issuer: str,
    holder: str = "KZ",
    type: str = "transit",
    quantity: int = 10,
) -> dict[str, Any]:
    response = await corridor[issuer].client.post(
        "/v1/permits/quotas",
        json={"holder": holder, "year": quota_year(holder), "type": type, "quantity": quantity},
        headers=authority[issuer],
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def obtain(corridor: InProcessCorridor, authority: dict[str, dict[str, str]], **changes: Any) -> dict[str, Any]:
    """Apply at KZ and deliver everything: the application as KZ shows it afterwards."""
    response = await corridor["KZ"].client.post(
        "/v1/permits/applications", json=application(**changes), headers=authority["KZ"]
    )
    assert response.status_code == 201, response.text
    await corridor.deliver_all()
    answer = await corridor["KZ"].client.get(response.headers["location"], headers=authority["KZ"])
    assert answer.status_code == 200, answer.text
    return dict(answer.json())
