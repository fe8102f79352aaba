"""Certificates across the corridor, as on the IPPC ePhyto hub: Kazakhstan's plant-protection service issues a
phytosanitary certificate for apples and sends it to Turkmenistan, whose authority acknowledges it; Kazakhstan
sees the acknowledgement, replaces the certificate, and Turkmenistan sees the old one replaced by the new one."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
from sqlalchemy import select

from tests.documents.conftest import PDF_BYTES, assert_problem, certificate
from tests.support.inprocess import InProcessCorridor, InProcessNode
from tests.support.keys import TestMember as Member
from tests.support.pdf import minimal_pdf
from transit_window import clock
from transit_window.db.session import unit_of_work
from transit_window.documents import service
from transit_window.ids import new_id
from transit_window.protocol.envelope import seal
from transit_window.protocol.models import OutboxMessage

Headers = dict[str, dict[str, str]]


async def send(sender: Member, to: InProcessNode, *, type: str, body: dict[str, Any], seq: int) -> httpx.Response:
    """A message signed by `sender`, posted straight to `to`'s inbox (as a misbehaving peer would)."""
    token = seal(
        key=sender.key,
        message_id=new_id(),
        type=type,
        iss=sender.node,
        aud=to.id,
        iat=clock.utcnow(),
        seq=seq,
        subject=None,
        trust=1,
        body=body,
    )
    return await to.client.post("/v1/corridor/messages", content=token, headers={"Content-Type": "application/jose"})


async def issue(corridor: InProcessCorridor, headers: dict[str, str], **changes: Any) -> dict[str, Any]:
    response = await corridor["KZ"].client.post("/v1/documents", json=certificate(**changes), headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/v1/documents/{body['id']}"
    return body


async def test_issue_acknowledge_replace_across_the_corridor(
    corridor: InProcessCorridor, permits: Headers, customs: Headers
) -> None:
    kz, tm = corridor["KZ"], corridor["TM"]

    # Given Kazakhstan issues a phytosanitary certificate for apples and sends it to Turkmenistan
    issued = await issue(corridor, permits["KZ"], number="kz-phy-2026-004417")
    assert (issued["number"], issued["status"], issued["country"]) == ("KZ-PHY-2026-004417", "issued", "KZ")
    assert issued["received_from"] is None and issued["has_pdf"] is False
    assert [share["country"] for share in issued["shared_with"]] == ["TM"]
    await corridor.deliver_all()

    # Turkmenistan's customs find the copy by its number
    listed = await tm.client.get("/v1/documents", params={"number": "KZ-PHY-2026-004417"}, headers=customs["TM"])
    assert listed.status_code == 200, listed.text
    [copy] = listed.json()["items"]
    assert (copy["id"], copy["received_from"], copy["status"]) == (issued["id"], "KZ", "issued")
    assert copy["goods"] == issued["goods"] and copy["goods"][0]["quantity"] == "18200.000"
    assert copy["shared_with"][0]["country"] == "TM" and copy["shared_with"][0]["acknowledged_at"] is None
    uz_view = await corridor["UZ"].client.get(f"/v1/documents/{issued['id']}", headers=customs["UZ"])
    assert_problem(uz_view, 404)

    # When Turkmenistan acknowledges it (twice is a conflict)
    acknowledged = await tm.client.post(f"/v1/documents/{issued['id']}/acknowledge", headers=customs["TM"])
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["shared_with"][0]["acknowledged_at"] is not None
    assert_problem(await tm.client.post(f"/v1/documents/{issued['id']}/acknowledge", headers=permits["TM"]), 409)
    await corridor.deliver_all()

    # Then Kazakhstan sees the acknowledgement
    original = (await kz.client.get(f"/v1/documents/{issued['id']}", headers=customs["KZ"])).json()
    assert original["shared_with"][0]["country"] == "TM"
    assert original["shared_with"][0]["acknowledged_at"] is not None

    # When Kazakhstan replaces it by a certificate with a new number
    replaced = await kz.client.post(
        f"/v1/documents/{issued['id']}/replace",
        json=certificate(number="KZ-PHY-2026-004418", share_with=[]),
        headers=permits["KZ"],
    )
    assert replaced.status_code == 201, replaced.text
    new = replaced.json()
    assert replaced.headers["location"] == f"/v1/documents/{new['id']}"
    assert (new["replaces"], new["status"]) == (issued["id"], "issued")
    assert [share["country"] for share in new["shared_with"]] == ["TM"]  # sent where the old one went
    old = (await kz.client.get(f"/v1/documents/{issued['id']}", headers=permits["KZ"])).json()
    assert (old["status"], old["replaced_by"]) == ("replaced", new["id"])
    await corridor.deliver_all()

    # Then Turkmenistan holds the old copy as replaced, and the new one
    tm_old = (await tm.client.get(f"/v1/documents/{issued['id']}", headers=customs["TM"])).json()
    assert (tm_old["status"], tm_old["replaced_by"]) == ("replaced", new["id"])
    assert "KZ-PHY-2026-004418" in tm_old["withdraw_reason"]
    tm_new = (await tm.client.get(f"/v1/documents/{new['id']}", headers=customs["TM"])).json()
    assert (tm_new["status"], tm_new["replaces"], tm_new["received_from"]) == ("issued", issued["id"], "KZ")
    replaced_list = await tm.client.get("/v1/documents", params={"status": "replaced"}, headers=customs["TM"])
    assert [item["id"] for item in replaced_list.json()["items"]] == [issued["id"]]

    # The replaced certificate can be neither withdrawn nor acknowledged any more
    withdraw = await kz.client.post(
        f"/v1/documents/{issued['id']}/withdraw", json={"reason": "x"}, headers=permits["KZ"]
    )
    assert_problem(withdraw, 409)
    assert_problem(
        await tm.client.post(f"/v1/documents/{new['id']}/withdraw", json={"reason": "x"}, headers=permits["TM"]), 409
    )


async def test_a_withdrawn_certificate_is_withdrawn_everywhere_it_was_sent(
    corridor: InProcessCorridor, permits: Headers, customs: Headers
) -> None:
    beef = [{"hs_code": "020130", "description": "Boneless beef, fresh", "quantity": "2000", "unit": "KGM"}]
    issued = await issue(
        corridor, permits["KZ"], type="veterinary", number="KZ-VET-77", goods=beef, share_with=["UZ", "TM"]
    )
    await corridor.deliver_all()
    withdrawn = await corridor["KZ"].client.post(
        f"/v1/documents/{issued['id']}/withdraw", json={"reason": "wrong consignment"}, headers=permits["KZ"]
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert (withdrawn.json()["status"], withdrawn.json()["withdraw_reason"]) == ("withdrawn", "wrong consignment")
    await corridor.deliver_all()
    for node in ("UZ", "TM"):
        copy = (await corridor[node].client.get(f"/v1/documents/{issued['id']}", headers=customs[node])).json()
        assert (copy["status"], copy["withdraw_reason"], copy["replaced_by"]) == (
            "withdrawn",
            "wrong consignment",
            None,
        )
        assert copy["withdrawn_at"] is not None
        acknowledge = await corridor[node].client.post(
            f"/v1/documents/{issued['id']}/acknowledge", headers=customs[node]
        )
        assert_problem(acknowledge, 409)


async def test_pdf_round_trip_and_the_hash_reaches_the_copies(
    corridor: InProcessCorridor, permits: Headers, customs: Headers
) -> None:
    kz, tm = corridor["KZ"], corridor["TM"]
    issued = await issue(corridor, permits["KZ"])
    assert issued["pdf_sha256"] is None
    await corridor.deliver_all()

    pdf = minimal_pdf(padding=2 * 1024 * 1024)  # over the 1 MiB JSON limit, under the PDF limit
    digest = hashlib.sha256(pdf).hexdigest()
    headers = {**permits["KZ"], "Content-Type": "application/pdf"}
    uploaded = await kz.client.put(f"/v1/documents/{issued['id']}/pdf", content=pdf, headers=headers)
    assert uploaded.status_code == 200, uploaded.text
    assert (uploaded.json()["pdf_sha256"], uploaded.json()["has_pdf"]) == (digest, True)
    again = await kz.client.put(f"/v1/documents/{issued['id']}/pdf", content=pdf, headers=headers)
    assert again.status_code == 200, again.text

    served = await kz.client.get(f"/v1/documents/{issued['id']}/pdf", headers=customs["KZ"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/pdf"
    assert served.content == pdf and served.headers["etag"] == f'"{digest}"'
    # A download, never a page in our origin (issue 13, finding 7)
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-disposition"] == 'attachment; filename="KZ-PHY-2026-004417.pdf"'
    assert served.headers["content-security-policy"] == "default-src 'none'"

    # The hash set by the upload reaches Turkmenistan's copy; the PDF itself stays in Kazakhstan
    await corridor.deliver_all()
    copy = (await tm.client.get(f"/v1/documents/{issued['id']}", headers=customs["TM"])).json()
    assert (copy["pdf_sha256"], copy["has_pdf"]) == (digest, False)
    problem = assert_problem(await tm.client.get(f"/v1/documents/{issued['id']}/pdf", headers=customs["TM"]), 404)
    assert "KZ" in problem["detail"] and digest in problem["detail"]


async def test_a_declared_hash_accepts_only_its_pdf(corridor: InProcessCorridor, permits: Headers) -> None:
    digest = hashlib.sha256(PDF_BYTES).hexdigest()
    issued = await issue(corridor, permits["KZ"], pdf_sha256=digest, share_with=[])
    headers = {**permits["KZ"], "Content-Type": "application/pdf"}
    uploaded = await corridor["KZ"].client.put(f"/v1/documents/{issued['id']}/pdf", content=PDF_BYTES, headers=headers)
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["has_pdf"] is True


async def test_share_sends_a_certificate_once_to_each_other_member(
    corridor: InProcessCorridor, permits: Headers
) -> None:
    """The release gate's hook: `share` sends to the countries of a movement that have not had the certificate."""
    issued = await issue(corridor, permits["KZ"])  # already sent to TM
    kz = corridor["KZ"].node
    async with unit_of_work(kz) as session:
        found = await service.find(session, country="KZ", type="phytosanitary", number="kz-phy-2026-004417")
        assert found is not None and found.id == issued["id"]
        assert await service.find(session, country="KZ", type="veterinary", number="KZ-PHY-2026-004417") is None
        await service.share(session, kz, document=found, countries=["KZ", "UZ", "TM", "UZ", "AZ"])
    async with kz.sessionmaker() as session:
        sent = (await session.execute(select(OutboxMessage.peer, OutboxMessage.type).order_by(OutboxMessage.seq))).all()
    # one to TM (at issue), one to UZ; none to KZ itself, again to TM, or to AZ (not in the trust list)
    assert sorted(tuple(row) for row in sent) == [("TM", "document.issued"), ("UZ", "document.issued")]
    await corridor.deliver_all()
    async with unit_of_work(corridor["UZ"].node) as session:
        copy = await service.find(session, country="KZ", type="phytosanitary", number="KZ-PHY-2026-004417")
        assert copy is not None and copy.received_from == "KZ"
        assert [share.country for share in (await service.shares_of(session, [copy.id]))[copy.id]] == ["UZ"]


async def test_only_the_issuer_speaks_for_a_certificate(corridor: InProcessCorridor, permits: Headers) -> None:
    """Messages about certificates that the sender may not send get signed `rejected` receipts."""
    uz, tm = corridor["UZ"].member, corridor["TM"]
    body = {
        "id": new_id(),
        "country": "UZ",
        "type": "origin",
        "number": "UZ-ORIGIN-1",
        "goods": [{"hs_code": "520100", "description": "raw cotton", "quantity": "1", "unit": "TNE"}],
        "consignor": {"id": "1", "name": "a", "country": "UZ"},
        "consignee": {"id": "2", "name": "b", "country": "TM"},
        "issued_at": "2026-01-01T00:00:00Z",
    }
    first = await send(uz, tm, type="document.issued", body=body, seq=1)
    assert first.json()["status"] == "accepted", first.text
    same_number = await send(uz, tm, type="document.issued", body={**body, "id": new_id()}, seq=2)
    assert (same_number.json()["status"], same_number.json()["code"]) == ("rejected", "26")
    forwarded = {**body, "id": new_id(), "country": "KZ", "number": "KZ-ORIGIN-9"}
    answer = await send(uz, tm, type="document.issued", body=forwarded, seq=3)
    assert (answer.json()["status"], answer.json()["code"]) == ("rejected", "15")

    # Kazakhstan's certificate went to Turkmenistan only: Uzbekistan cannot acknowledge or withdraw it
    issued = await issue(corridor, permits["KZ"])
    kz = corridor["KZ"]
    ack = {"document_id": issued["id"], "at": "2026-01-01T00:00:00Z"}
    answer = await send(uz, kz, type="document.acknowledged", body=ack, seq=1)
    assert (answer.json()["status"], answer.json()["code"]) == ("rejected", "15")
    await corridor.deliver_all()
    withdraw = {"document_id": issued["id"], "reason": "forged"}
    answer = await send(uz, tm, type="document.withdrawn", body=withdraw, seq=4)
    assert (answer.json()["status"], answer.json()["code"]) == ("rejected", "15")
