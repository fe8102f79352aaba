"""A guarantee belongs to its holder, as in NCTS: a declaration may draw on it only when the declarant is the holder,
or quotes the access code of an authorisation the holder gave it, and the authorisation still holds at release.
The holder's id is checked at registration like every party id of a declaration (issue 13, finding 1)."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.declarations.conftest import declaration
from tests.support.inprocess import InProcessCorridor
from tests.tracking.conftest import client_for
from transit_window.declarations.models import Movement

PROBLEM = "application/problem+json"
HOLDER = "990140000384"  # a Kazakh BIN (check digit 4) that is not the declarant of `declaration()`
DECLARANT = "230340000126"
THEIR_GRN = "26KZ0000000005553"


async def register(kz: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    guarantee = {"grn": THEIR_GRN, "holder_id": HOLDER, "reference_amount": "25000.00", "currency": "USD", **body}
    return await kz.post("/v1/guarantees", json=guarantee, headers=headers)


def field_errors(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.headers["content-type"] == PROBLEM, response.text
    return [(error["pointer"], error["code"]) for error in response.json()["errors"]]


def naming(code: str | None = None) -> dict[str, Any]:
    reference: dict[str, Any] = {"grn": THEIR_GRN, "amount": "5000.00", "currency": "USD"}
    if code is not None:
        reference["access_code"] = code
    return declaration(guarantee=reference)


async def test_a_declarant_cannot_draw_on_another_holders_guarantee(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]]
) -> None:
    """Guarantee 26KZ0000000005553 is held by 990140000384; a declaration by 230340000126 naming it is refused (422,
    NCTS code 15 on the guarantee, naming the holder), and nothing is reserved."""
    kz = corridor["KZ"].client
    assert (await register(kz, customs["KZ"])).status_code == 201
    refused = await kz.post("/v1/declarations", json=naming(), headers=customs["KZ"])
    assert refused.status_code == 422, refused.text
    assert field_errors(refused) == [("/body/guarantee/grn", "15")]
    assert HOLDER in refused.json()["detail"] and "not authorised" in refused.json()["detail"]
    guessed = await kz.post("/v1/declarations", json=naming("gac_guessed"), headers=customs["KZ"])
    assert guessed.status_code == 422 and field_errors(guessed) == [("/body/guarantee/grn", "15")]
    held = (await kz.get(f"/v1/guarantees/{THEIR_GRN}", headers=customs["KZ"])).json()
    assert (held["holder_id"], held["holder_country"], held["reserved"]) == (HOLDER, "KZ", "0.00")
    async with corridor["KZ"].node.sessionmaker() as session:
        assert (await session.scalars(select(Movement.mrn))).all() == []


async def test_the_holder_authorises_a_declarant_with_an_access_code_until_it_revokes_it(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], papers: list[str]
) -> None:
    """The holder (a forwarder client of party 990140000384) authorises 230340000126: the access code is shown once,
    not cacheable, stored only as SHA-256 and never listed; a declaration needs it (13 without, 15 when wrong) and
    does not keep it; once revoked the declaration lodged with it is not released (422, 15), and authorising again
    lets it go."""
    from transit_window.declarations.models import GuaranteeAuthorisation  # here: the findings ran before it was

    del papers
    kz = corridor["KZ"].client
    assert (await register(kz, customs["KZ"])).status_code == 201
    holder = await client_for(corridor, "KZ", role="forwarder", party_id=HOLDER)
    path = f"/v1/guarantees/{THEIR_GRN}/authorisations"

    made = await kz.post(path, json={"declarant_id": DECLARANT}, headers=holder)
    assert made.status_code == 201, made.text
    assert made.headers["cache-control"] == "no-store"
    authorisation = made.json()
    code = authorisation["access_code"]
    assert code.startswith("gac_") and len(code) >= 20
    assert (authorisation["declarant_id"], authorisation["declarant_country"]) == (DECLARANT, "KZ")
    async with corridor["KZ"].node.sessionmaker() as session:
        stored = (await session.scalars(select(GuaranteeAuthorisation))).one()
    assert stored.code_hash == hashlib.sha256(code.encode()).hexdigest() and code not in stored.code_hash
    listed = await kz.get(path, headers=holder)
    assert [item["id"] for item in listed.json()["items"]] == [authorisation["id"]] and code not in listed.text

    missing = await kz.post("/v1/declarations", json=naming(), headers=customs["KZ"])
    assert missing.status_code == 422 and field_errors(missing) == [("/body/guarantee/access_code", "13")]
    wrong = await kz.post("/v1/declarations", json=naming(code[:-1] + "x"), headers=customs["KZ"])
    assert wrong.status_code == 422 and field_errors(wrong) == [("/body/guarantee/access_code", "15")]
    created = await kz.post("/v1/declarations", json=naming(code), headers=customs["KZ"])
    assert created.status_code == 201, created.text
    mrn = created.json()["mrn"]
    lodged = await kz.get(f"/v1/declarations/{mrn}", headers=customs["KZ"])
    assert code not in lodged.text and "access_code" not in lodged.json()["declaration"]["guarantee"]

    assert (await kz.delete(f"{path}/{authorisation['id']}", headers=holder)).status_code == 204
    assert (await kz.get(path, headers=holder)).json()["items"] == []
    assert (await kz.delete(f"{path}/{authorisation['id']}", headers=holder)).status_code == 404
    refused = await kz.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])
    assert refused.status_code == 422, refused.text
    assert field_errors(refused) == [("/path/mrn", "15")] and "no longer authorises" in refused.json()["detail"]
    old_code = await kz.post("/v1/declarations", json=naming(code), headers=customs["KZ"])
    assert old_code.status_code == 422 and field_errors(old_code) == [("/body/guarantee/grn", "15")]
    assert (await kz.get(f"/v1/guarantees/{THEIR_GRN}", headers=customs["KZ"])).json()["reserved"] == "0.00"

    again = await kz.post(path, json={"declarant_id": DECLARANT, "declarant_country": "KZ"}, headers=holder)
    assert again.status_code == 201 and again.json()["access_code"] != code
    released = await kz.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])
    assert released.status_code == 200, released.text
    assert code not in released.text
    assert (await kz.get(f"/v1/guarantees/{THEIR_GRN}", headers=customs["KZ"])).json()["reserved"] == "5000.00"


async def test_only_the_holder_or_the_registering_customs_client_manages_who_may_use_a_guarantee(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]]
) -> None:
    """Another party's forwarder does not see the guarantee (404, as for an unknown GRN); another customs client of
    the node is refused with the reason (403); the customs client that registered it acts for the holder; nobody
    authorises the holder itself, nor a declarant id that would not pass a declaration."""
    kz = corridor["KZ"].client
    assert (await register(kz, customs["KZ"])).status_code == 201
    path = f"/v1/guarantees/{THEIR_GRN}/authorisations"
    body = {"declarant_id": DECLARANT}
    stranger = await client_for(corridor, "KZ", role="forwarder", party_id=DECLARANT)
    second_customs = await client_for(corridor, "KZ", role="customs", party_id=None)

    for method, url in (("POST", path), ("GET", path), ("DELETE", f"{path}/0190a000-0000-7000-8000-0000000000e1")):
        hidden = await kz.request(method, url, json=body if method == "POST" else None, headers=stranger)
        assert hidden.status_code == 404 and hidden.headers["content-type"] == PROBLEM, (method, hidden.text)
        unknown = await kz.request(
            method,
            url.replace(THEIR_GRN, "26KZ0000000009876"),
            json=body if method == "POST" else None,
            headers=stranger,
        )
        assert unknown.status_code == 404
        assert hidden.json()["detail"] == unknown.json()["detail"].replace("26KZ0000000009876", THEIR_GRN)
        forbidden = await kz.request(method, url, json=body if method == "POST" else None, headers=second_customs)
        assert forbidden.status_code == 403 and forbidden.headers["content-type"] == PROBLEM, forbidden.text
        assert "only the holder or the customs client that registered" in forbidden.json()["detail"]

    by_office = await kz.post(path, json=body, headers=customs["KZ"])
    assert by_office.status_code == 201 and by_office.headers["cache-control"] == "no-store"
    itself = await kz.post(path, json={"declarant_id": HOLDER}, headers=customs["KZ"])
    assert itself.status_code == 422 and field_errors(itself) == [("/body/declarant_id", "14")]
    for bad in ("<script>alert(1)</script>", DECLARANT + "\u202e", "230340000127"):
        refused = await kz.post(path, json={"declarant_id": bad}, headers=customs["KZ"])
        assert refused.status_code == 422, (bad, refused.text)
        assert field_errors(refused)[0][0] == "/body/declarant_id"


@pytest.mark.parametrize(
    ("holder", "pointer", "code"),
    [
        ({"holder_id": "<script>alert(1)</script>"}, "/body/holder_id", "12"),
        # hidden characters: refused by the one free-text validator (transit_window/text.py), code 12 all the same
        ({"holder_id": "230340000126\u202e"}, "/body/holder_id", "12"),
        ({"holder_id": "\u202e230340000126"}, "/body/holder_id", "12"),
        ({"holder_id": "230340000127"}, "/body/holder_id", "12"),  # check digit
        ({"holder_id": "230340000126", "holder_country": "XX"}, "/body/holder_country", "12"),
        ({"holder_id": "12345", "holder_country": "AZ"}, "/body/holder_id", "12"),  # a VÖEN is ten digits
    ],
)
async def test_a_guarantee_holder_id_is_checked_like_every_party_id(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], holder: dict[str, str], pointer: str, code: str
) -> None:
    kz = corridor["KZ"].client
    refused = await register(kz, customs["KZ"], **holder)
    assert refused.status_code == 422, refused.text
    assert field_errors(refused) == [(pointer, code)], refused.text
    assert (await kz.get(f"/v1/guarantees/{THEIR_GRN}", headers=customs["KZ"])).status_code == 404

    foreign = await register(kz, customs["KZ"], holder_id="1400057701", holder_country="AZ")
    assert foreign.status_code == 201, foreign.text
    assert (foreign.json()["holder_id"], foreign.json()["holder_country"]) == ("1400057701", "AZ")
