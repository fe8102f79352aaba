"""Forwarders follow a consignment across the corridor: the same timeline on every node, scoped access, and a
public view by tracking code."""

from __future__ import annotations

from tests.support.inprocess import InProcessCorridor
from tests.tracking.conftest import Travelled, client_for


async def test_timeline_is_the_same_on_departure_and_destination_nodes(
    corridor: InProcessCorridor, travelled: Travelled, declarant: dict[str, dict[str, str]]
) -> None:
    timelines = {}
    for node in ("KZ", "UZ", "TM"):
        response = await corridor[node].client.get(
            f"/v1/consignments/{travelled.mrn}/timeline", headers=declarant[node]
        )
        assert response.status_code == 200, response.text
        timelines[node] = [
            (e["step"], e["bizLocation"]["office"], e["signedBy"], e["eventTime"], e["bizStep"])
            for e in response.json()["events"]
        ]
    assert timelines["KZ"] == timelines["UZ"] == timelines["TM"]
    assert [step for step, *_ in timelines["KZ"]] == [
        "released",
        "exit",
        "entry",
        "exit",
        "entry",
        "arrived",
        "control-results",
        "closed",
    ]
    kz = (await corridor["KZ"].client.get(f"/v1/consignments/{travelled.mrn}/timeline", headers=declarant["KZ"])).json()
    entry_uz = next(e for e in kz["events"] if e["bizLocation"]["office"] == "UZGIS001")
    assert (entry_uz["signedBy"], entry_uz["verification"], entry_uz["eventTimeZoneOffset"]) == (
        "UZ",
        "verified",
        "+05:00",
    )
    assert entry_uz["eventTime"].endswith("+05:00")
    assert entry_uz["bizStep"] == "entering_exiting" and entry_uz["unece24StatusCode"] == "16"
    assert entry_uz["what"]["containers"] == ["CSQU3054383"]
    released = kz["events"][0]
    assert (released["signedBy"], released["verification"]) == ("KZ", "local")


async def test_a_forwarder_not_party_to_the_consignment_gets_404(
    corridor: InProcessCorridor, travelled: Travelled
) -> None:
    stranger = await client_for(corridor, "KZ", role="forwarder", party_id="990140000385")
    for path in (f"/v1/consignments/{travelled.mrn}", f"/v1/consignments/{travelled.mrn}/timeline"):
        response = await corridor["KZ"].client.get(path, headers=stranger)
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == "application/problem+json"
    listed = await corridor["KZ"].client.get("/v1/consignments", headers=stranger)
    assert listed.json()["items"] == []


async def test_delegation_lets_another_party_follow_one_consignment(
    corridor: InProcessCorridor, travelled: Travelled, declarant: dict[str, dict[str, str]]
) -> None:
    agent = await client_for(corridor, "KZ", role="forwarder", party_id="990140000385")
    before = await corridor["KZ"].client.get(f"/v1/consignments/{travelled.mrn}/timeline", headers=agent)
    assert before.status_code == 404
    granted = await corridor["KZ"].client.post(
        f"/v1/consignments/{travelled.mrn}/grants", json={"party_id": "990140000385"}, headers=declarant["KZ"]
    )
    assert granted.status_code == 201, granted.text
    after = await corridor["KZ"].client.get(f"/v1/consignments/{travelled.mrn}/timeline", headers=agent)
    assert after.status_code == 200
    refused = await corridor["KZ"].client.post(
        f"/v1/consignments/{travelled.mrn}/grants", json={"party_id": "111111111111"}, headers=agent
    )
    assert refused.status_code == 403


async def test_public_tracking_code_shows_no_values_or_parties_and_can_be_rotated(
    corridor: InProcessCorridor, travelled: Travelled, declarant: dict[str, dict[str, str]]
) -> None:
    kz = corridor["KZ"]
    public = await kz.client.get(f"/v1/track/{travelled.tracking_code}")
    assert public.status_code == 200, public.text
    body = public.json()
    assert body["status"] == "closed"
    assert body["route"][0]["office"] == "KZALA001"
    text = public.text
    for secret in ("230340000126", "23660", "Almaty Fruit Export", "123ABC02"):
        assert secret not in text
    russian = (await kz.client.get(f"/v1/track/{travelled.tracking_code}", params={"lang": "ru"})).json()
    assert russian["timeline"][0]["label"] == "Выпущено для транзита"

    rotated = await kz.client.post(f"/v1/consignments/{travelled.mrn}/tracking-code", headers=declarant["KZ"])
    assert rotated.status_code == 200, rotated.text
    assert (await kz.client.get(f"/v1/track/{travelled.tracking_code}")).status_code == 404
    assert (await kz.client.get(f"/v1/track/{rotated.json()['tracking_code']}")).status_code == 200


async def test_epcis_query_filters_by_biz_step_location_and_time(
    corridor: InProcessCorridor, travelled: Travelled, declarant: dict[str, dict[str, str]]
) -> None:
    kz = corridor["KZ"]
    crossings = await kz.client.get(
        "/v1/events", params={"EQ_bizStep": "entering_exiting", "MATCH_mrn": travelled.mrn}, headers=declarant["KZ"]
    )
    assert crossings.status_code == 200, crossings.text
    assert [e["bizLocation"]["office"] for e in crossings.json()["items"]] == [
        "KZZHZ001",
        "UZGIS001",
        "UZALT001",
        "TMFAR001",
    ]
    at_farap = await kz.client.get("/v1/events", params={"EQ_bizLocation": "TMFAR001"}, headers=declarant["KZ"])
    assert [e["step"] for e in at_farap.json()["items"]] == ["entry"]
    page = await kz.client.get("/v1/events", params={"limit": 3}, headers=declarant["KZ"])
    assert len(page.json()["items"]) == 3 and page.json()["next"]
    rest = await kz.client.get("/v1/events", params={"cursor": page.json()["next"]}, headers=declarant["KZ"])
    assert len(rest.json()["items"]) == 5
    naive = await kz.client.get("/v1/events", params={"GE_eventTime": "2026-01-01T00:00:00"}, headers=declarant["KZ"])
    assert naive.status_code == 422
