"""Fixtures for certificates: a valid certificate body, a small PDF, and API clients of the permit authorities and
customs on each in-process node."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.support.inprocess import InProcessCorridor
from tests.support.pdf import minimal_pdf
from transit_window import clock
from transit_window.api.problems import ncts_code
from transit_window.clients.service import Role, add_client
from transit_window.db.session import unit_of_work

PROBLEM_JSON = "application/problem+json"
PDF_BYTES = minimal_pdf()
Body = dict[str, Any]


def certificate(**changes: Any) -> Body:
    """Kazakhstan's plant-protection service certifies fresh apples (HS 080810) for Ashgabat, sent to Turkmenistan."""
    body: Body = {
        "type": "phytosanitary",
        "number": "KZ-PHY-2026-004417",
        "goods": [
            {
                "hs_code": "080810",
                "description": "Fresh apples, Aport variety, in cartons",
                "quantity": "18200.000",
                "unit": "KGM",
            }
        ],
        "consignor": {"id": "230340000126", "name": "Almaty Fruit Export LLP", "country": "KZ"},
        "consignee": {"id": "TMASB44107", "name": "Ashgabat Bazaar Trading", "country": "TM"},
        "destination_country": "TM",
        "issued_at": clock.isoformat(clock.utcnow() - timedelta(hours=1)),
        "share_with": ["TM"],
    }
    body = copy.deepcopy(body)
    body.update(changes)
    return body


async def token(corridor: InProcessCorridor, node: str, role: Role) -> dict[str, str]:
    async with unit_of_work(corridor[node].node) as session:
        _, secret = await add_client(session, name=f"{role} {node}", role=role)
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
async def permits(corridor: InProcessCorridor) -> dict[str, dict[str, str]]:
    """Headers of each node's certificate authority (role `permits`)."""
    return {node: await token(corridor, node, "permits") for node in corridor.nodes}


@pytest.fixture
async def customs(corridor: InProcessCorridor) -> dict[str, dict[str, str]]:
    return {node: await token(corridor, node, "customs") for node in corridor.nodes}


def assert_problem(response: httpx.Response, status: int, pointer: str | None = None, code: str | None = None) -> Body:
    """A problem+json with `status`; with `pointer`, one of its field errors points there with `code`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: Body = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"], problem
    if pointer is not None:
        errors = problem.get("errors") or []
        # a structural error carries the NCTS code of its kind and names the validator's own type beside it
        found = [(error["pointer"], error["code"]) for error in errors]
        found += [(error["pointer"], error["type"]) for error in errors if error.get("type")]
        assert (pointer, code) in found, found
        assert all(error["code"] == ncts_code(error["type"]) for error in errors if error.get("type")), errors
    return problem
