"""Fixtures for fuzzing: one corridor (KZ, UZ, TM in process) per module, with something on it worth fuzzing.

The contract fuzz sends thousands of requests; building and truncating three nodes for each operation would cost more
than the requests themselves, so the corridor lives for the module and the examples accumulate on it, as they would
on a node in service. `Seeded` is what a real node holds after a day's work: a movement on the road (released,
exit recorded), a declaration awaiting release, a guarantee, a certificate, permits and their application, a webhook
subscription with a delivery, a tracking code; and a client of every role.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from tests.conftest import NODES
from tests.declarations.conftest import GRN, declaration
from tests.support.inprocess import InProcessCorridor, fresh_corridor
from tests.support.keys import TestMember
from tests.support.papers import provide_papers
from transit_window import clock
from transit_window.clients.service import ROLES, Role, add_client
from transit_window.db.session import unit_of_work
from transit_window.permits.models import PermitApplication
from transit_window.webhooks.models import WebhookDelivery

DECLARANT = "230340000126"
ANONYMOUS = "anonymous"


def examples(default: int) -> int:
    """Examples per test: `default` in the suite, TW_FUZZ_EXAMPLES (e.g. 100) for a thorough run."""
    return int(os.environ.get("TW_FUZZ_EXAMPLES", default))


@pytest.fixture(scope="module")
async def fuzz_corridor(
    node_databases: dict[str, str], members: dict[str, TestMember], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[InProcessCorridor]:
    """KZ, UZ and TM on clean databases of the current dialect, for the whole module."""
    async with fresh_corridor(
        {node: node_databases[node] for node in NODES}, members, folder=tmp_path_factory.mktemp("fuzz-genesis")
    ) as corridor:
        yield corridor


@dataclass
class Seeded:
    """Clients of every role at KZ, and real identifiers to put in paths (a fuzzer's random ones only find 404s)."""

    headers: dict[str, dict[str, str]]
    known: dict[str, list[str]] = field(default_factory=dict)


async def _token(corridor: InProcessCorridor, node: str, role: Role) -> dict[str, str]:
    party = DECLARANT if role == "forwarder" else None
    async with unit_of_work(corridor[node].node) as session:
        _, token = await add_client(session, name=f"fuzz {role} {node}", role=role, party_id=party)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
async def seeded(fuzz_corridor: InProcessCorridor) -> Seeded:
    corridor = fuzz_corridor
    kz = corridor["KZ"]
    headers = {role: await _token(corridor, "KZ", role) for role in ROLES}
    headers[ANONYMOUS] = {}
    customs = headers["customs"]

    permits = await provide_papers(corridor, declaration())
    registered = await kz.client.post(
        "/v1/guarantees",
        json={"grn": GRN, "holder_id": DECLARANT, "reference_amount": "25000.00", "currency": "USD"},
        headers=customs,
    )
    assert registered.status_code == 201, registered.text
    mrns = []
    for _ in range(2):
        created = await kz.client.post("/v1/declarations", json=declaration(), headers=customs)
        assert created.status_code == 201, created.text
        mrns.append(created.json()["mrn"])
    released = await kz.client.post(f"/v1/declarations/{mrns[0]}/release", headers=customs)
    assert released.status_code == 200, released.text
    await corridor.deliver_all()

    forwarder = headers["forwarder"]
    subscription = await kz.client.post(
        "/v1/subscriptions", json={"url": "https://93.184.215.14/transit", "mrn": mrns[0]}, headers=forwarder
    )
    assert subscription.status_code == 201, subscription.text
    crossed = await kz.client.post(
        f"/v1/movements/{mrns[0]}/crossings",
        json={"office": "KZZHZ001", "direction": "exit", "at": clock.isoformat(clock.utcnow())},
        headers=customs,
    )
    assert crossed.status_code == 201, crossed.text
    await corridor.deliver_all()
    documents = await kz.client.get("/v1/documents", headers=headers["permits"])
    assert documents.status_code == 200, documents.text
    async with unit_of_work(kz.node) as session:
        applications = list(await session.scalars(select(PermitApplication.id)))
        deliveries = list(await session.scalars(select(WebhookDelivery.id)))
    return Seeded(
        headers=headers,
        known={
            "mrn": mrns,
            "grn": [GRN],
            "permit_id": permits,
            "document_id": [item["id"] for item in documents.json()["items"]],
            "application_id": applications,
            "subscription_id": [subscription.json()["id"]],
            "delivery_id": deliveries,
            "code": [released.json()["tracking_code"]],
        },
    )
