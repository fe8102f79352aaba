"""One application at the carrier's node yields each route country's permit, signed by that country; uses and
revocations travel back (in-process corridor KZ, UZ, TM on both dialects)."""

from __future__ import annotations

from datetime import timedelta

from tests.permits.conftest import grant, obtain
from tests.support.calendar import quota_year
from tests.support.inprocess import InProcessCorridor
from transit_window import clock


async def test_one_application_yields_the_uz_transit_permit_and_tm_is_permit_free_for_a_trip_to_tm(
    corridor: InProcessCorridor, authority: dict[str, dict[str, str]], border: dict[str, dict[str, str]]
) -> None:
    await grant(corridor, authority, issuer="UZ", quantity=5)
    await corridor.deliver_all()
    quotas = (await corridor["KZ"].client.get("/v1/permits/quotas", headers=authority["KZ"])).json()["items"]
    assert [(q["issuer"], q["holder"], q["remaining"]) for q in quotas] == [("UZ", "KZ", 5)]

    application = await obtain(corridor, authority)

    assert application["status"] == "complete"
    answers = {request["country"]: request for request in application["requests"]}
    assert answers["UZ"]["status"] == "issued" and answers["UZ"]["type"] == "transit"
    assert answers["TM"]["status"] == "not-required" and "permit-free" in answers["TM"]["reason"]
    permit_id = answers["UZ"]["permit_id"]
    year = quota_year()
    assert permit_id == f"UZ-KZ-{year}-2-1"

    kept = (await corridor["KZ"].client.get(f"/v1/permits/{permit_id}", headers=authority["KZ"])).json()
    assert kept["issuer"] == "UZ" and kept["status"] == "active" and kept["plate"] == "123ABC02"
    quotas = (await corridor["KZ"].client.get("/v1/permits/quotas", headers=authority["KZ"])).json()["items"]
    assert quotas[0]["issued"] == 1 and quotas[0]["remaining"] == 4
    on_route = await corridor["TM"].client.get(f"/v1/permits/{permit_id}", headers=border["TM"])
    assert on_route.status_code == 200  # the other route countries keep a copy for sightings and checks

    verified = await corridor["TM"].client.post(
        "/v1/permits/verify", json={"token": kept["token"], "plate": "123 ABC 02"}, headers=border["TM"]
    )
    assert verified.json()["result"] == "valid", verified.text

    entry = await corridor["UZ"].client.post(
        f"/v1/permits/{permit_id}/use",
        json={"activity": "ENTRY", "office": "UZGIS001", "plate": "123ABC02", "token": kept["token"]},
        headers=border["UZ"],
    )
    assert entry.status_code == 200, entry.text
    assert entry.json()["permit"]["status"] == "in_use"
    again = await corridor["UZ"].client.post(
        f"/v1/permits/{permit_id}/use",
        json={"activity": "ENTRY", "office": "UZGIS001", "plate": "123ABC02"},
        headers=border["UZ"],
    )
    assert again.status_code == 409 and "second ENTRY" in again.json()["detail"]
    leave = await corridor["UZ"].client.post(
        f"/v1/permits/{permit_id}/use",
        json={"activity": "EXIT", "office": "UZALT001", "plate": "123ABC02"},
        headers=border["UZ"],
    )
    assert leave.status_code == 200, leave.text
    assert leave.json()["permit"]["status"] == "consumed"
    await corridor.deliver_all()
    at_home = (await corridor["KZ"].client.get(f"/v1/permits/{permit_id}", headers=authority["KZ"])).json()
    assert (at_home["entries"], at_home["exits"], at_home["status"]) == (1, 1, "consumed")
    assert [activity["activity"] for activity in at_home["activities"]] == ["ENTRY", "EXIT"]
    for node in ("UZ", "KZ", "TM"):  # the issuer's record; the holder's and the route's copies once the EXIT came
        used = await corridor[node].client.post(
            "/v1/permits/verify", json={"token": kept["token"]}, headers=border[node]
        )
        answer = used.json()
        assert (answer["result"], answer["valid"]) == ("used-up", False), answer
        assert (answer["trips"], answer["entries"], answer["exits"]) == (1, 1, 1)
        assert answer["reasons"][0] == f"{permit_id} is used up: 1 of 1 trips entered and exited"


async def test_revocation_reaches_the_holder_and_the_list(
    corridor: InProcessCorridor, authority: dict[str, dict[str, str]], border: dict[str, dict[str, str]]
) -> None:
    await grant(corridor, authority, issuer="UZ")
    application = await obtain(corridor, authority)
    permit_id = next(r["permit_id"] for r in application["requests"] if r["country"] == "UZ")
    token = (await corridor["KZ"].client.get(f"/v1/permits/{permit_id}", headers=authority["KZ"])).json()["token"]

    revoked = await corridor["UZ"].client.post(
        f"/v1/permits/{permit_id}/revoke", json={"reason": "carrier licence suspended"}, headers=authority["UZ"]
    )
    assert revoked.status_code == 200, revoked.text
    await corridor.deliver_all()

    at_home = (await corridor["KZ"].client.get(f"/v1/permits/{permit_id}", headers=authority["KZ"])).json()
    assert at_home["status"] == "revoked" and at_home["revoke_reason"] == "carrier licence suspended"
    for node in ("UZ", "KZ"):
        verdict = (
            await corridor[node].client.post("/v1/permits/verify", json={"token": token}, headers=border[node])
        ).json()
        assert verdict["result"] == "revoked", (node, verdict)
        assert "carrier licence suspended" in verdict["reasons"][0]
    listed = (await corridor["UZ"].client.get("/v1/permits/revocations")).json()
    assert listed["version"] == 1 and [entry["id"] for entry in listed["revoked"]] == [permit_id]
    refused = await corridor["UZ"].client.post(
        f"/v1/permits/{permit_id}/use",
        json={"activity": "ENTRY", "office": "UZGIS001", "plate": "123ABC02"},
        headers=border["UZ"],
    )
    assert refused.status_code == 409 and "revoked" in refused.json()["detail"]


async def test_an_exhausted_quota_refuses_with_the_reason(
    corridor: InProcessCorridor, authority: dict[str, dict[str, str]]
) -> None:
    await grant(corridor, authority, issuer="UZ", quantity=1)
    first = await obtain(corridor, authority)
    second = await obtain(corridor, authority)
    assert first["status"] == "complete"
    assert second["status"] == "partly-refused"
    refusal = next(r for r in second["requests"] if r["country"] == "UZ")
    assert refusal["status"] == "refused" and "all 1 transit permits of UZ" in refusal["reason"]


async def test_a_sighting_elsewhere_is_reported_to_the_issuer_and_an_impossible_journey_alerts(
    corridor: InProcessCorridor, authority: dict[str, dict[str, str]], border: dict[str, dict[str, str]]
) -> None:
    """TM's post at Farap sees the UZ permit (a SIGHTING: only UZ records ENTRY/EXIT); UZ gets the report. Ten
    minutes later the same permit is presented at Gishtkuprik, some 800 km away: UZ raises a fraud alert."""
    await grant(corridor, authority, issuer="UZ")
    application = await obtain(corridor, authority)
    permit_id = next(r["permit_id"] for r in application["requests"] if r["country"] == "UZ")
    permit = (await corridor["UZ"].client.get(f"/v1/permits/{permit_id}", headers=border["UZ"])).json()
    # Ten minutes ago, or when the permit began if that is later: it starts at midnight in the carrier's calendar,
    # which may be moments ago (a run at 19:05 UTC is just past midnight in Almaty).
    seen_at = max(clock.utcnow() - timedelta(minutes=10), clock.parse(permit["valid_from"]))
    sighting = await corridor["TM"].client.post(
        f"/v1/permits/{permit_id}/use",
        json={"activity": "SIGHTING", "office": "TMFAR001", "plate": "123ABC02", "at": clock.isoformat(seen_at)},
        headers=border["TM"],
    )
    assert sighting.status_code == 200, sighting.text
    await corridor.deliver_all()
    at_issuer = (await corridor["UZ"].client.get(f"/v1/permits/{permit_id}", headers=border["UZ"])).json()
    assert [(a["activity"], a["office"], a["recorded_by"]) for a in at_issuer["activities"]] == [
        ("SIGHTING", "TMFAR001", "TM")
    ]
    entry = await corridor["UZ"].client.post(
        f"/v1/permits/{permit_id}/use",
        json={"activity": "ENTRY", "office": "UZGIS001", "plate": "123ABC02"},
        headers=border["UZ"],
    )
    assert entry.status_code == 200, entry.text
    [alert] = entry.json()["alerts"]
    assert alert["kind"] == "impossible-travel" and "TMFAR001" in alert["detail"] and "UZGIS001" in alert["detail"]
    metrics = (await corridor["UZ"].client.get("/metrics")).text
    assert 'tw_permit_alerts_total{kind="impossible-travel"} 1.0' in metrics


async def test_the_qr_code_is_served_as_svg_and_png(
    corridor: InProcessCorridor, authority: dict[str, dict[str, str]]
) -> None:
    await grant(corridor, authority, issuer="UZ")
    application = await obtain(corridor, authority)
    permit_id = next(r["permit_id"] for r in application["requests"] if r["country"] == "UZ")
    svg = await corridor["KZ"].client.get(f"/v1/permits/{permit_id}/qr", headers=authority["KZ"])
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert svg.text.lstrip().startswith("<svg") and permit_id in svg.text  # titled with the permit id
    png = await corridor["KZ"].client.get(
        f"/v1/permits/{permit_id}/qr", params={"format": "png"}, headers=authority["KZ"]
    )
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
