"""The papers a declaration needs before release, obtained the way a carrier and an exporter would: the exporting
country's plant-protection service issues the certificates the goods need, the transit countries grant quotas, and
the carrier's authority applies once at its own node. Used by fixtures of tests that release movements."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from tests.support.inprocess import InProcessCorridor
from transit_window import clock
from transit_window.clients.service import add_client
from transit_window.codes.hs import bundled_nomenclature
from transit_window.codes.of_node import offices_of, rules_of
from transit_window.db.session import unit_of_work
from transit_window.permits.years import local_today


async def _authority(corridor: InProcessCorridor, node: str) -> dict[str, str]:
    async with unit_of_work(corridor[node].node) as session:
        _, secret = await add_client(session, name=f"permit authority {node}", role="permits")
    return {"Authorization": f"Bearer {secret}"}


async def provide_papers(
    corridor: InProcessCorridor,
    declaration: dict[str, Any],
    *,
    trips: int = 20,
    valid_until: date | None = None,
    grant_quotas: bool = True,
) -> list[str]:
    """Issue the declaration's certificates at their countries and obtain its carrier's permits for the route;
    returns the permit ids. Quotas are granted (or raised) as needed, so it can be called for many declarations.
    The permits run from the carrier's today to `valid_until`, or as long as their quota year allows."""
    authority = {node: await _authority(corridor, node) for node in corridor.nodes}
    offices = offices_of(corridor["KZ"].node)
    route = list(dict.fromkeys(offices.require(code).country for code in declaration["itinerary"]))
    destination = route[-1]
    for ref in declaration.get("documents", []):
        if ref["type"] not in ("phytosanitary", "veterinary", "origin") or ref["country"] not in corridor.nodes:
            continue
        goods = [
            {
                "hs_code": item["hs_code"],
                "description": item["description"],
                "quantity": item["net_mass_kg"],
                "unit": "KGM",
            }
            for item in declaration["goods"]
            if ref["type"] in bundled_nomenclature().required_certificates(item["hs_code"]) or ref["type"] == "origin"
        ]
        if not goods:
            continue
        response = await corridor[ref["country"]].client.post(
            "/v1/documents",
            json={
                "type": ref["type"],
                "number": ref["number"],
                "goods": goods,
                "consignor": declaration["consignor"],
                "consignee": declaration["consignee"],
                "destination_country": destination,
                "issued_at": clock.isoformat(clock.utcnow() - timedelta(hours=1)),
            },
            headers=authority[ref["country"]],
        )
        assert response.status_code in (201, 409), response.text  # 409: issued for an earlier declaration
    carrier = declaration["carrier"]
    home = carrier["country"]
    needs = [need for need in rules_of(corridor[home].node).needs(carrier_country=home, route=route) if need.required]
    today = local_today(home)  # the carrier's calendar decides the day and so the quota year
    year = today.year
    for need in needs if grant_quotas else []:
        quotas = await corridor[need.country].client.get("/v1/permits/quotas", headers=authority[need.country])
        held = next(
            (q for q in quotas.json()["items"] if (q["holder"], q["type"], q["year"]) == (home, need.type, year)),
            None,
        )
        response = await corridor[need.country].client.post(
            "/v1/permits/quotas",
            json={"holder": home, "year": year, "type": need.type, "quantity": (held["quantity"] if held else 0) + 10},
            headers=authority[need.country],
        )
        assert response.status_code == 200, response.text
    if not needs:
        return []
    response = await corridor[home].client.post(
        "/v1/permits/applications",
        json={
            "carrier": {"id": carrier["id"], "name": carrier["name"]},
            "plate": declaration["vehicle"]["plate"],
            "trailer_plate": declaration["vehicle"].get("trailer_plate"),
            "route": route,
            "valid_from": today.isoformat(),
            "trips": trips,
            **({"valid_until": valid_until.isoformat()} if valid_until else {}),
        },
        headers=authority[home],
    )
    assert response.status_code == 201, response.text
    await corridor.deliver_all()
    application = (await corridor[home].client.get(response.headers["location"], headers=authority[home])).json()
    assert application["status"] == "complete", application
    return [request["permit_id"] for request in application["requests"] if request["permit_id"]]
