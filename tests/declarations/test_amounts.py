"""Money in the API (issue 14): every amount an answer carries is a decimal string with exactly its currency's
ISO 4217 minor-unit decimals ("12000.00" USD, "5000" JPY, "1000.125" KWD), whether it was sent as a JSON number or
a string; an amount with more decimals than its currency has is a 422, code 12, pointing at it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.declarations.conftest import GRN, declaration
from tests.support.inprocess import InProcessCorridor

HOLDER = "230340000126"


def guarantee_of(grn: str, amount: Any, currency: str) -> dict[str, Any]:
    return {"grn": grn, "holder_id": HOLDER, "reference_amount": amount, "currency": currency}


def refused_at(response: httpx.Response, pointer: str) -> str:
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [(e["pointer"], e["code"]) for e in errors] == [(pointer, "12")], errors
    return str(errors[0]["detail"])


async def test_guarantee_amounts_carry_their_currencys_decimals_as_strings(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]]
) -> None:
    kz = corridor["KZ"].client
    for grn, amount, currency, shown, zero in (
        ("26KZ0000000007001", 12000, "USD", "12000.00", "0.00"),  # a JSON number
        ("26KZ0000000007002", "2500000.5", "KZT", "2500000.50", "0.00"),
        ("26KZ0000000007003", 5000000, "JPY", "5000000", "0"),
        ("26KZ0000000007004", "1000.125", "KWD", "1000.125", "0.000"),
        ("26KZ0000000007005", 7.5, "EUR", "7.50", "0.00"),
    ):
        created = await kz.post("/v1/guarantees", json=guarantee_of(grn, amount, currency), headers=customs["KZ"])
        assert created.status_code == 201, created.text
        read = await kz.get(f"/v1/guarantees/{grn}", headers=customs["KZ"])
        for answer in (created.json(), read.json()):
            assert (answer["reference_amount"], answer["reserved"], answer["available"]) == (shown, zero, shown), (
                currency,
                answer,
            )


async def test_more_decimals_than_the_currency_has_is_refused_with_code_12_at_the_amount(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]]
) -> None:
    kz = corridor["KZ"].client
    for amount, currency, says in (
        ("100.125", "USD", "USD has 2"),
        (100.5, "JPY", "JPY has 0"),
        ("12.345", "UZS", "UZS has 2"),
    ):
        refused = await kz.post(
            "/v1/guarantees", json=guarantee_of("26KZ0000000007009", amount, currency), headers=customs["KZ"]
        )
        assert says in refused_at(refused, "/body/reference_amount"), refused.text
    unknown = await kz.post(
        "/v1/guarantees", json=guarantee_of("26KZ0000000007009", "100.00", "SEK"), headers=customs["KZ"]
    )
    assert "SEK" in refused_at(unknown, "/body/currency")
    assert (await kz.get("/v1/guarantees/26KZ0000000007009", headers=customs["KZ"])).status_code == 404

    for changes, pointer in (
        ({"guarantee": {"grn": GRN, "amount": "5000.005", "currency": "USD"}}, "/body/guarantee/amount"),
        ({"goods": [{**declaration()["goods"][0], "value": 3500000.5, "currency": "JPY"}]}, "/body/goods/0/value"),
        ({"goods": [{**declaration()["goods"][0], "currency": "SEK"}]}, "/body/goods/0/currency"),
    ):
        refused = await kz.post("/v1/declarations", json=declaration(**changes), headers=customs["KZ"])
        refused_at(refused, pointer)


async def test_declared_amounts_are_shown_with_their_currencys_decimals_here_and_along_the_route(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """Sent as JSON numbers (5000 USD guarantee, goods of 23660 USD and 3500000 JPY); the declaration, its route
    copy, the guarantee it reserves and the refusal of a release it cannot cover all say them with the decimals."""
    kz = corridor["KZ"].client
    goods = declaration()["goods"][0]
    body = declaration(
        guarantee={"grn": guarantee, "amount": 5000, "currency": "USD"},
        goods=[{**goods, "value": 23660}, {**goods, "value": 3500000, "currency": "JPY"}],
    )
    mrn = (await kz.post("/v1/declarations", json=body, headers=customs["KZ"])).json()["mrn"]
    released = await kz.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])
    assert released.status_code == 200, released.text
    await corridor.deliver_all()
    for node in ("KZ", "UZ"):
        movement = (await corridor[node].client.get(f"/v1/movements/{mrn}", headers=customs[node])).json()
        declared = movement["declaration"]
        assert declared["guarantee"]["amount"] == "5000.00", (node, declared["guarantee"])
        assert [item["value"] for item in declared["goods"]] == ["23660.00", "3500000"], node
    held = (await kz.get(f"/v1/guarantees/{guarantee}", headers=customs["KZ"])).json()
    assert (held["reference_amount"], held["reserved"], held["available"]) == ("25000.00", "5000.00", "20000.00")

    too_much = declaration(guarantee={"grn": guarantee, "amount": 20000.5, "currency": "USD"})
    mrn = (await kz.post("/v1/declarations", json=too_much, headers=customs["KZ"])).json()["mrn"]
    refused = await kz.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])
    assert refused.status_code == 409 and refused.json()["available"] == "20000.00", refused.text
    assert "cannot cover 20000.50 USD: 20000.00 is still available" in refused.json()["detail"]

    # Ten cents and twenty cents fill a guarantee of thirty exactly (SQLite keeps NUMERIC as binary floating point,
    # where 0.10 + 0.20 is 0.30000000000000004: the second release was refused there).
    small = "26KZ0000000007010"
    registered = await kz.post("/v1/guarantees", json=guarantee_of(small, "0.30", "USD"), headers=customs["KZ"])
    assert registered.status_code == 201, registered.text
    for cents in ("0.10", "0.20"):
        body = declaration(guarantee={"grn": small, "amount": cents, "currency": "USD"})
        mrn = (await kz.post("/v1/declarations", json=body, headers=customs["KZ"])).json()["mrn"]
        released = await kz.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])
        assert released.status_code == 200, released.text
    held = (await kz.get(f"/v1/guarantees/{small}", headers=customs["KZ"])).json()
    assert (held["reserved"], held["available"]) == ("0.30", "0.00")
