"""Fixtures for transit movements: customs clients on each in-process node, a registered guarantee, a declaration."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.support.calendar import limit_date
from tests.support.inprocess import InProcessCorridor
from tests.support.papers import provide_papers
from transit_window.clients.service import add_client
from transit_window.db.session import unit_of_work

GRN = "26KZ0000000001234"


def declaration(**changes: Any) -> dict[str, Any]:
    """Fresh apples from Almaty to Ashgabat through Uzbekistan (KZ → UZ → TM)."""
    body: dict[str, Any] = {
        "declarant": {"id": "230340000126", "name": "Almaty Fruit Export LLP", "country": "KZ"},
        "consignor": {"id": "230340000126", "name": "Almaty Fruit Export LLP", "country": "KZ"},
        "consignee": {"id": "TMASB44107", "name": "Ashgabat Bazaar Trading", "country": "TM"},
        "carrier": {"id": "230340000126", "name": "Almaty Fruit Export LLP", "country": "KZ"},
        "vehicle": {"plate": "123 abc-02", "country": "KZ", "trailer_plate": "45TRL02"},
        "containers": ["CSQU3054383"],
        "seals": ["KZ-SEAL-000731"],
        "goods": [
            {
                "hs_code": "080810",
                "description": "Fresh apples, Aport variety, in cartons",
                "packages": 1400,
                "package_type": "CT",
                "gross_mass_kg": "19600.000",
                "net_mass_kg": "18200.000",
                "value": "23660.00",
                "currency": "USD",
            }
        ],
        "itinerary": ["KZALA001", "KZZHZ001", "UZGIS001", "UZALT001", "TMFAR001", "TMASB001"],
        "guarantee": {"grn": GRN, "amount": "5000.00", "currency": "USD"},
        "documents": [{"type": "phytosanitary", "number": "KZ-PHY-2026-004417", "country": "KZ"}],
        "limit_date": limit_date(10),
    }
    body = copy.deepcopy(body)
    body.update(changes)
    return body


@pytest.fixture
async def customs(corridor: InProcessCorridor) -> dict[str, dict[str, str]]:
    """A customs client per node: headers to use on that node's API."""
    headers = {}
    for node_id, entry in corridor.nodes.items():
        async with unit_of_work(entry.node) as session:
            _, token = await add_client(session, name=f"customs {node_id}", role="customs")
        headers[node_id] = {"Authorization": f"Bearer {token}"}
    return headers


@pytest.fixture
async def papers(corridor: InProcessCorridor) -> list[str]:
    """The phytosanitary certificate and the UZ transit permit `declaration()` needs, obtained through the API."""
    return await provide_papers(corridor, declaration())


@pytest.fixture
async def guarantee(corridor: InProcessCorridor, customs: dict[str, dict[str, str]], papers: list[str]) -> str:
    """Everything release checks: the guarantee, and (through `papers`) the certificate and permits."""
    del papers
    response = await corridor["KZ"].client.post(
        "/v1/guarantees",
        json={"grn": GRN, "holder_id": "230340000126", "reference_amount": "25000.00", "currency": "USD"},
        headers=customs["KZ"],
    )
    assert response.status_code == 201, response.text
    return GRN
