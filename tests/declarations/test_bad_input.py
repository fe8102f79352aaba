"""Bad input at the declaration API: every wrong thing a customs system can send is a 4xx problem+json that points
at the field (a JSON pointer and an NCTS-style or schema code) and stores nothing.

A clerk's customs system lodges a declaration at Kazakhstan's node. Each story below changes one thing in an
otherwise valid declaration (the positive control shows the unchanged body is accepted), sends it, and then reads
all three nodes' databases: no movement, no kept step, no outbound message, no idempotency record was created.

The corridor here is shared by the module: these requests change nothing, so one set of nodes serves them all, and
every test compares the row counts before and after its own request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import NODES
from tests.declarations.conftest import GRN, declaration
from tests.support.inprocess import InProcessCorridor, fresh_corridor
from tests.support.keys import TestMember as Member
from transit_window import clock
from transit_window.api.problems import ncts_code
from transit_window.clients.service import Role, add_client
from transit_window.codes import generate_mrn, validate_mrn
from transit_window.db.session import unit_of_work
from transit_window.declarations.models import IdempotencyRecord, Movement, PendingStep
from transit_window.protocol.models import OutboxMessage

PROBLEM_JSON = "application/problem+json"
Body = dict[str, Any]


# -- a corridor shared by the module --------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def quiet_corridor(
    node_databases: dict[str, str], members: dict[str, Member], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[InProcessCorridor]:
    """KZ, UZ and TM on clean databases, for requests that must not change anything."""
    async with fresh_corridor(
        {node: node_databases[node] for node in NODES}, members, folder=Path(tmp_path_factory.mktemp("bad-input"))
    ) as corridor:
        yield corridor


async def _token(corridor: InProcessCorridor, node: str, role: Role, party_id: str | None = None) -> dict[str, str]:
    async with unit_of_work(corridor[node].node) as session:
        _, token = await add_client(session, name=f"{role} {node} {party_id or ''}", role=role, party_id=party_id)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
async def clerks(quiet_corridor: InProcessCorridor) -> dict[str, dict[str, str]]:
    """Headers of the API clients the stories use; the guarantee GRN is registered in Kazakhstan."""
    headers = {
        "KZ": await _token(quiet_corridor, "KZ", "customs"),
        "UZ": await _token(quiet_corridor, "UZ", "customs"),
        "UZ Tashkent office": await _token(quiet_corridor, "UZ", "customs", party_id="UZTAS001"),
        "KZ Shymkent office": await _token(quiet_corridor, "KZ", "customs", party_id="KZCIT001"),
        "KZ forwarder": await _token(quiet_corridor, "KZ", "forwarder", party_id="230340000126"),
        "TM": await _token(quiet_corridor, "TM", "customs"),
    }
    registered = await quiet_corridor["KZ"].client.post(
        "/v1/guarantees",
        json={"grn": GRN, "holder_id": "230340000126", "reference_amount": "25000.00", "currency": "USD"},
        headers=headers["KZ"],
    )
    assert registered.status_code == 201, registered.text
    return headers


# -- helpers --------------------------------------------------------------------------------------------------


async def stored(corridor: InProcessCorridor) -> dict[str, list[int]]:
    """(movements, kept steps, outbox messages, idempotency records) on each node."""
    counts = {}
    for node, entry in corridor.nodes.items():
        async with entry.node.sessionmaker() as session:
            counts[node] = [
                int(await session.scalar(select(func.count()).select_from(model)) or 0)
                for model in (Movement, PendingStep, OutboxMessage, IdempotencyRecord)
            ]
    return counts


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
        assert all(error["detail"] for error in problem["errors"]), problem
    return problem


async def send_and_check_nothing_stored(
    corridor: InProcessCorridor, request: Callable[[], Any], status: int, pointer: str | None, code: str | None
) -> Body:
    before = await stored(corridor)
    problem = assert_problem(await request(), status, pointer, code)
    assert await stored(corridor) == before
    return problem


def days_ahead(days: int) -> str:
    return (clock.utcnow().date() + timedelta(days=days)).isoformat()


def goods(**changes: Any) -> list[Body]:
    """The one goods item of the valid declaration, changed."""
    item: Body = declaration()["goods"][0]
    item.update(changes)
    return [item]


def small_item() -> Body:
    return {
        "hs_code": "080810",
        "description": "apples",
        "packages": 1,
        "gross_mass_kg": 1,
        "net_mass_kg": 1,
        "value": 1,
        "currency": "USD",
    }


def party(role: str, **changes: Any) -> Body:
    value: Body = declaration()[role]
    value.update(changes)
    return {role: value}


def without(field: str) -> Body:
    body = declaration()
    del body[field]
    return body


KZ_UZ_TM = ["KZALA001", "KZZHZ001", "UZGIS001", "UZALT001", "TMFAR001", "TMASB001"]

# (id, body, status, pointer, code): one change to the valid declaration each.
BODY_CASES: list[tuple[str, Body, int, str, str]] = [
    # itinerary and offices
    ("unknown-office", declaration(itinerary=["KZALA001", "KZXYZ001", *KZ_UZ_TM[2:]]), 422, "/body/itinerary/1", "12"),
    (
        "itinerary-starts-in-another-country",
        declaration(itinerary=["UZTAS001", "UZALT001", "TMFAR001", "TMASB001"]),
        422,
        "/body/itinerary/0",
        "14",
    ),
    (
        "border-post-facing-a-country-off-the-route",
        declaration(itinerary=["KZALA001", "KZHOR001", *KZ_UZ_TM[1:]]),
        422,
        "/body/itinerary/1",
        "14",
    ),
    (
        "itinerary-enters-a-country-twice",
        declaration(itinerary=["KZALA001", "KZSRY001", "UZGIS001", "KZZHZ001", "KZCIT001"]),
        422,
        "/body/itinerary",
        "14",
    ),
    (
        "crossing-between-inland-offices",
        declaration(itinerary=["KZALA001", "UZTAS001"]),
        422,
        "/body/itinerary/1",
        "14",
    ),
    (
        "destination-is-a-border-post",
        declaration(itinerary=["KZALA001", "KZZHZ001", "UZGIS001"]),
        422,
        "/body/itinerary/2",
        "14",
    ),
    ("office-listed-twice", declaration(itinerary=[*KZ_UZ_TM, "KZALA001"]), 422, "/body/itinerary", "14"),
    ("itinerary-of-one-office", declaration(itinerary=["KZALA001"]), 422, "/body/itinerary", "too_short"),
    (
        "office-code-malformed",
        declaration(itinerary=["kzala001", *KZ_UZ_TM[1:]]),
        422,
        "/body/itinerary/0",
        "string_pattern_mismatch",
    ),
    # containers and vehicle
    ("container-check-digit", declaration(containers=["CSQU3054384"]), 422, "/body/containers/0", "12"),
    ("container-not-iso-6346", declaration(containers=["CSQ3054383"]), 422, "/body/containers/0", "12"),
    ("container-listed-twice", declaration(containers=["CSQU3054383"] * 2), 422, "/body/containers", "14"),
    (
        "plate-with-forbidden-characters",
        declaration(vehicle={"plate": "123$ABC02", "country": "KZ"}),
        422,
        "/body/vehicle/plate",
        "12",
    ),
    (
        "trailer-plate-too-long",
        declaration(vehicle={"plate": "123ABC02", "country": "KZ", "trailer_plate": "ABCDEFGHJKLMNP"}),
        422,
        "/body/vehicle/trailer_plate",
        "12",
    ),
    (
        "vehicle-country-unknown",
        declaration(vehicle={"plate": "123ABC02", "country": "QQ"}),
        422,
        "/body/vehicle/country",
        "12",
    ),
    # goods
    ("hs-code-of-four-digits", declaration(goods=goods(hs_code="0808")), 422, "/body/goods/0/hs_code", "12"),
    ("hs-code-unknown", declaration(goods=goods(hs_code="080899")), 422, "/body/goods/0/hs_code", "12"),
    ("hs-code-reserved-chapter", declaration(goods=goods(hs_code="770000")), 422, "/body/goods/0/hs_code", "12"),
    ("currency-unknown", declaration(goods=goods(currency="ZZZ")), 422, "/body/goods/0/currency", "12"),
    (
        "currency-in-lower-case",
        declaration(goods=goods(currency="usd")),
        422,
        "/body/goods/0/currency",
        "string_pattern_mismatch",
    ),
    (
        "gross-mass-negative",
        declaration(goods=goods(gross_mass_kg="-19600.000")),
        422,
        "/body/goods/0/gross_mass_kg",
        "greater_than",
    ),
    ("net-mass-zero", declaration(goods=goods(net_mass_kg="0")), 422, "/body/goods/0/net_mass_kg", "greater_than"),
    (
        "net-mass-above-gross",
        declaration(goods=goods(net_mass_kg="19600.500")),
        422,
        "/body/goods/0/net_mass_kg",
        "14",
    ),
    (
        "mass-with-four-decimals",
        declaration(goods=goods(gross_mass_kg="19600.0001")),
        422,
        "/body/goods/0/gross_mass_kg",
        "decimal_max_places",
    ),
    ("no-goods", declaration(goods=[]), 422, "/body/goods", "too_short"),
    ("a-thousand-goods-items", declaration(goods=[small_item()] * 1000), 422, "/body/goods", "too_long"),
    (
        "value-with-three-decimals-in-dollars",
        declaration(goods=goods(value="23660.005")),
        422,
        "/body/goods/0/value",
        "12",
    ),
    (
        "value-with-decimals-in-yen",
        declaration(goods=goods(value="3500000.5", currency="JPY")),
        422,
        "/body/goods/0/value",
        "12",
    ),
    ("packages-zero", declaration(goods=goods(packages=0)), 422, "/body/goods/0/packages", "greater_than_equal"),
    ("packages-not-a-number", declaration(goods=goods(packages="many")), 422, "/body/goods/0/packages", "int_parsing"),
    (
        "description-of-100000-characters",
        declaration(goods=goods(description="a" * 100_000)),
        422,
        "/body/goods/0/description",
        "string_too_long",
    ),
    # parties and documents
    (
        "kazakh-bin-check-digit",
        declaration(**party("declarant", id="230340000127")),
        422,
        "/body/declarant/id",
        "12",
    ),
    (
        "uzbek-stir-of-five-digits",
        declaration(**party("consignee", id="12345", country="UZ")),
        422,
        "/body/consignee/id",
        "12",
    ),
    ("party-country-unknown", declaration(**party("consignee", country="QQ")), 422, "/body/consignee/country", "12"),
    (
        "nul-byte-in-a-name",
        declaration(**party("consignor", name="Almaty\x00Fruit Export LLP")),
        422,
        "/body/consignor/name",
        "value_error",
    ),
    (
        "document-country-unknown",
        declaration(documents=[{"type": "phytosanitary", "number": "KZ-PHY-1", "country": "QQ"}]),
        422,
        "/body/documents/0/country",
        "12",
    ),
    (
        "document-type-unknown",
        declaration(documents=[{"type": "passport", "number": "N1234567", "country": "KZ"}]),
        422,
        "/body/documents/0/type",
        "literal_error",
    ),
    # guarantee
    (
        "guarantee-unknown",
        declaration(guarantee={"grn": "26KZ0000000009999", "amount": "5000.00", "currency": "USD"}),
        422,
        "/body/guarantee/grn",
        "12",
    ),
    (
        "guarantee-in-another-currency",
        declaration(guarantee={"grn": GRN, "amount": "5000.00", "currency": "EUR"}),
        422,
        "/body/guarantee/currency",
        "14",
    ),
    (
        "grn-malformed",
        declaration(guarantee={"grn": "26KZ00000000012", "amount": "5000.00", "currency": "USD"}),
        422,
        "/body/guarantee/grn",
        "12",
    ),
    (
        "guarantee-amount-with-three-decimals",
        declaration(guarantee={"grn": GRN, "amount": "5000.005", "currency": "USD"}),
        422,
        "/body/guarantee/amount",
        "12",
    ),
    # dates
    ("limit-date-in-the-past", declaration(limit_date=days_ahead(-1)), 422, "/body/limit_date", "14"),
    ("limit-date-too-far-ahead", declaration(limit_date=days_ahead(120)), 422, "/body/limit_date", "14"),
    (
        "limit-date-not-a-date",
        declaration(limit_date="2026-02-30"),
        422,
        "/body/limit_date",
        "date_from_datetime_parsing",
    ),
    # shape
    ("unknown-field", declaration(colour="red"), 422, "/body/colour", "extra_forbidden"),
    (
        "unknown-field-in-goods",
        declaration(goods=goods(discount="10%")),
        422,
        "/body/goods/0/discount",
        "extra_forbidden",
    ),
    ("consignee-missing", without("consignee"), 422, "/body/consignee", "missing"),
]


async def test_the_unchanged_declaration_is_accepted(quiet_corridor: InProcessCorridor, clerks: dict[str, Any]) -> None:
    """The control: the body every other story changes is valid, so each refusal is about the one change."""
    before = await stored(quiet_corridor)
    response = await quiet_corridor["KZ"].client.post("/v1/declarations", json=declaration(), headers=clerks["KZ"])
    assert response.status_code == 201, response.text
    after = await stored(quiet_corridor)
    assert after["KZ"][0] == before["KZ"][0] + 1


@pytest.mark.parametrize(
    ("body", "status", "pointer", "code"), [case[1:] for case in BODY_CASES], ids=[case[0] for case in BODY_CASES]
)
async def test_a_declaration_with_one_bad_field_is_refused_at_that_field(
    quiet_corridor: InProcessCorridor, clerks: dict[str, Any], body: Body, status: int, pointer: str, code: str
) -> None:
    kz = quiet_corridor["KZ"]
    await send_and_check_nothing_stored(
        quiet_corridor,
        lambda: kz.client.post("/v1/declarations", json=body, headers=clerks["KZ"]),
        status,
        pointer,
        code,
    )


# -- the URL: a mistyped MRN ----------------------------------------------------------------------------------

VALID_MRN = generate_mrn(year=26, country="KZ", serial=1, office_part="ALA0")
MISTYPED_MRN = VALID_MRN[:17] + str((int(VALID_MRN[17]) + 1) % 10)
NOW = "2026-12-02T09:15:00+05:00"
MRN_REQUESTS = [
    ("get-declaration", "KZ", "GET", "/v1/declarations/{mrn}", None),
    ("release", "KZ", "POST", "/v1/declarations/{mrn}/release", None),
    ("cancel", "KZ", "POST", "/v1/declarations/{mrn}/cancel", {"reason": "the truck broke down"}),
    ("get-movement", "UZ", "GET", "/v1/movements/{mrn}", None),
    (
        "crossing-at-the-next-border",
        "UZ",
        "POST",
        "/v1/movements/{mrn}/crossings",
        {
            "office": "UZGIS001",
            "direction": "entry",
            "at": NOW,
        },
    ),
    ("arrival", "TM", "POST", "/v1/movements/{mrn}/arrival", {"office": "TMASB001", "at": NOW}),
    ("control-results", "TM", "POST", "/v1/movements/{mrn}/control-results", {"code": "A1", "at": NOW}),
]


@pytest.mark.parametrize(
    ("node", "method", "path", "body"), [case[1:] for case in MRN_REQUESTS], ids=[case[0] for case in MRN_REQUESTS]
)
async def test_an_mrn_with_a_wrong_check_digit_is_refused_with_code_93(
    quiet_corridor: InProcessCorridor, clerks: dict[str, Any], node: str, method: str, path: str, body: Body | None
) -> None:
    """A mistyped MRN is caught by its check digit before anything is looked up: a border post's crossing for it
    is refused, not kept waiting for a record that will never come."""
    assert validate_mrn(VALID_MRN) is None and validate_mrn(MISTYPED_MRN)
    problem = await send_and_check_nothing_stored(
        quiet_corridor,
        lambda: quiet_corridor[node].client.request(
            method, path.format(mrn=MISTYPED_MRN), json=body, headers=clerks[node]
        ),
        422,
        "/path/mrn",
        "93",
    )
    assert MISTYPED_MRN in problem["detail"] and "check digit" in problem["detail"]


# -- steps recorded along the route ---------------------------------------------------------------------------

STEP_CASES = [
    (
        "crossing-time-without-utc-offset",
        "UZ",
        "crossings",
        {"office": "UZGIS001", "direction": "entry", "at": "2026-12-02T09:15:00"},
        422,
        "/body/at",
        "timezone_aware",
    ),
    (
        "crossing-direction-unknown",
        "UZ",
        "crossings",
        {"office": "UZGIS001", "direction": "sideways", "at": NOW},
        422,
        "/body/direction",
        "literal_error",
    ),
    (
        "crossing-at-an-unknown-office",
        "UZ",
        "crossings",
        {"office": "UZXYZ001", "direction": "entry", "at": NOW},
        422,
        "/body/office",
        "12",
    ),
    (
        "crossing-at-an-office-of-another-country",
        "UZ",
        "crossings",
        {"office": "KZZHZ001", "direction": "entry", "at": NOW},
        403,
        "/body/office",
        "15",
    ),
    (
        "crossing-remarks-with-a-nul-byte",
        "UZ",
        "crossings",
        {"office": "UZGIS001", "direction": "entry", "at": NOW, "remarks": "seal\x00broken"},
        422,
        "/body/remarks",
        "value_error",
    ),
    (
        "arrival-time-without-utc-offset",
        "TM",
        "arrival",
        {"office": "TMASB001", "at": "2026-12-04T16:40:00"},
        422,
        "/body/at",
        "timezone_aware",
    ),
    (
        "control-results-code-unknown",
        "TM",
        "control-results",
        {"code": "C9", "at": NOW},
        422,
        "/body/code",
        "literal_error",
    ),
]


@pytest.mark.parametrize(
    ("node", "path", "body", "status", "pointer", "code"),
    [case[1:] for case in STEP_CASES],
    ids=[case[0] for case in STEP_CASES],
)
async def test_a_bad_step_is_refused_and_not_kept(
    quiet_corridor: InProcessCorridor,
    clerks: dict[str, Any],
    node: str,
    path: str,
    body: Body,
    status: int,
    pointer: str,
    code: str,
) -> None:
    """A step for a movement this node has not heard of yet is normally kept until the record comes; a step that
    is itself wrong is refused at once and neither kept nor announced (no record request is queued)."""
    await send_and_check_nothing_stored(
        quiet_corridor,
        lambda: quiet_corridor[node].client.post(f"/v1/movements/{VALID_MRN}/{path}", json=body, headers=clerks[node]),
        status,
        pointer,
        code,
    )


# -- the whole request: size, encoding, headers ---------------------------------------------------------------


async def _five_mib_chunks() -> AsyncIterator[bytes]:
    yield b'{"goods": [{"description": "'
    for _ in range(80):
        yield b"a" * 65536
    yield b'"}]}'


SIZE_CASES = [
    ("5-mib-body", {"json": lambda: declaration(goods=goods(description="a" * 5 * 1024 * 1024))}),
    ("5-mib-body-streamed-without-length", {"content": _five_mib_chunks}),
    ("10000-goods-items", {"json": lambda: declaration(goods=[small_item()] * 10_000)}),
]


@pytest.mark.parametrize("payload", [case[1] for case in SIZE_CASES], ids=[case[0] for case in SIZE_CASES])
async def test_a_body_over_the_size_limit_is_refused_with_413(
    quiet_corridor: InProcessCorridor, clerks: dict[str, Any], payload: dict[str, Any]
) -> None:
    """The node refuses bodies over 1 MiB before parsing them. Ten thousand goods items are 1.1 MB even in their
    shortest form, so they meet this limit before the 999-item rule (see `a-thousand-goods-items`)."""
    kz = quiet_corridor["KZ"]
    kwargs = {key: make() for key, make in payload.items()}
    headers = {**clerks["KZ"], "Content-Type": "application/json"}
    problem = await send_and_check_nothing_stored(
        quiet_corridor, lambda: kz.client.post("/v1/declarations", headers=headers, **kwargs), 413, None, None
    )
    assert "exceeds" in problem["detail"]


ENCODING_CASES = [
    ("not-json", b'{"declarant": ', 422, "/body", "json_invalid"),
    ("a-json-list", b"[]", 422, "/body", "model_attributes_type"),
    ("invalid-utf-8", b'{"declarant": "\xff"}', 422, "/body", "json_invalid"),
]


@pytest.mark.parametrize(
    ("raw", "status", "pointer", "code"),
    [case[1:] for case in ENCODING_CASES],
    ids=[case[0] for case in ENCODING_CASES],
)
async def test_a_body_that_is_not_a_json_declaration_is_refused(
    quiet_corridor: InProcessCorridor,
    clerks: dict[str, Any],
    raw: bytes,
    status: int,
    pointer: str | None,
    code: str | None,
) -> None:
    """Broken JSON says the line and column where parsing stopped; bytes that are not UTF-8 are invalid JSON too (a
    documented 422, not the bare 400 FastAPI gives them: found by tests/fuzz/test_contract.py)."""
    kz = quiet_corridor["KZ"]
    headers = {**clerks["KZ"], "Content-Type": "application/json"}
    problem = await send_and_check_nothing_stored(
        quiet_corridor, lambda: kz.client.post("/v1/declarations", content=raw, headers=headers), status, pointer, code
    )
    if raw == b'{"declarant": ':
        assert problem["detail"] == "/body: the body is not valid JSON: Expecting value at line 1, column 15", problem


async def test_a_body_not_sent_as_json_is_a_415_that_names_application_json(
    quiet_corridor: InProcessCorridor, clerks: dict[str, Any]
) -> None:
    """A form or plain text got 'Input should be a valid dictionary', with no hint that JSON was wanted."""
    kz = quiet_corridor["KZ"]
    before = await stored(quiet_corridor)
    for content_type, raw in (("text/plain", b"hello"), ("application/x-www-form-urlencoded", b"a=1&b=2")):
        response = await kz.client.post(
            "/v1/declarations", content=raw, headers={**clerks["KZ"], "Content-Type": content_type}
        )
        assert_problem(response, 415)
        assert "Content-Type: application/json" in response.json()["detail"], response.text
        assert content_type in response.json()["detail"]
    assert await stored(quiet_corridor) == before


async def test_every_structural_error_carries_an_ncts_code_and_a_pointer_into_the_body(
    quiet_corridor: InProcessCorridor, clerks: dict[str, Any]
) -> None:
    body = declaration()
    del body["declarant"]  # missing → 13
    body["priority"] = "urgent"  # not allowed → 15
    body["goods"][0]["packages"] = "many"  # wrong type → 12
    response = await quiet_corridor["KZ"].client.post("/v1/declarations", json=body, headers=clerks["KZ"])
    problem = assert_problem(response, 422)
    found = {(error["pointer"], error["code"], error["type"]) for error in problem["errors"]}
    assert found == {
        ("/body/declarant", "13", "missing"),
        ("/body/priority", "15", "extra_forbidden"),
        ("/body/goods/0/packages", "12", "int_parsing"),
    }, found


KEY_CASES = [
    ("key-of-101-characters", "k" * 101, "string_too_long"),
    ("empty-key", "", "12"),
    ("key-with-a-tab", "retry\tone", "12"),
]


@pytest.mark.parametrize(("key", "code"), [case[1:] for case in KEY_CASES], ids=[case[0] for case in KEY_CASES])
async def test_an_idempotency_key_of_the_wrong_shape_is_refused(
    quiet_corridor: InProcessCorridor, clerks: dict[str, Any], key: str, code: str
) -> None:
    kz = quiet_corridor["KZ"]
    headers = {**clerks["KZ"], "Idempotency-Key": key}
    await send_and_check_nothing_stored(
        quiet_corridor,
        lambda: kz.client.post("/v1/declarations", json=declaration(), headers=headers),
        422,
        "/header/Idempotency-Key",
        code,
    )


# -- who is asking ---------------------------------------------------------------------------------------------


async def test_without_a_token_the_declaration_is_refused_with_401(quiet_corridor: InProcessCorridor) -> None:
    kz = quiet_corridor["KZ"]
    before = await stored(quiet_corridor)
    response = await kz.client.post("/v1/declarations", json=declaration())
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert await stored(quiet_corridor) == before


async def test_an_unknown_token_is_refused_with_401(quiet_corridor: InProcessCorridor) -> None:
    kz = quiet_corridor["KZ"]
    before = await stored(quiet_corridor)
    headers = {"Authorization": "Bearer tw_not-a-token-this-node-gave-out"}
    assert_problem(await kz.client.post("/v1/declarations", json=declaration(), headers=headers), 401)
    assert await stored(quiet_corridor) == before


async def test_a_forwarder_cannot_lodge_a_declaration(
    quiet_corridor: InProcessCorridor, clerks: dict[str, Any]
) -> None:
    kz = quiet_corridor["KZ"]
    problem = await send_and_check_nothing_stored(
        quiet_corridor,
        lambda: kz.client.post("/v1/declarations", json=declaration(), headers=clerks["KZ forwarder"]),
        403,
        None,
        None,
    )
    assert "customs" in problem["detail"] and "forwarder" in problem["detail"]


CLIENT_CASES = [
    # A Tashkent office's system, on the Uzbek node, lodging a declaration that leaves from Almaty.
    ("uzbek-office-client-at-a-kazakh-office", "UZ", "UZ Tashkent office", 403, "15"),
    # Uzbek customs (not tied to one office), on the Uzbek node, with the same Kazakh itinerary.
    ("uzbek-customs-at-a-kazakh-office", "UZ", "UZ", 422, "14"),
    # Shymkent's system on the Kazakh node, declaring at Almaty.
    ("office-client-at-another-office-of-its-country", "KZ", "KZ Shymkent office", 403, "15"),
]


@pytest.mark.parametrize(
    ("node", "clerk", "status", "code"), [case[1:] for case in CLIENT_CASES], ids=[case[0] for case in CLIENT_CASES]
)
async def test_a_customs_client_declares_only_at_its_own_offices(
    quiet_corridor: InProcessCorridor, clerks: dict[str, Any], node: str, clerk: str, status: int, code: str
) -> None:
    entry = quiet_corridor[node]
    await send_and_check_nothing_stored(
        quiet_corridor,
        lambda: entry.client.post("/v1/declarations", json=declaration(), headers=clerks[clerk]),
        status,
        "/body/itinerary/0",
        code,
    )
