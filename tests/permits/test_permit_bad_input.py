"""Bad input at the permit API: each wrong request is a 4xx problem+json whose detail says what to change (with a
JSON pointer where a field is wrong), and changes nothing on any node: no quota, permit, activity, application,
request, alert or outbound message, no moved counter or status.

The corridor (KZ, UZ, TM) is shared by the module, since the requests change nothing. UZ has granted KZ a transit
quota of 10 and issued three permits to the Almaty apples truck: `p1` and `p2` active, `p3` revoked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from tests.conftest import NODES
from tests.permits.conftest import CARRIER, application, grant, obtain
from tests.support import databases
from tests.support.calendar import quota_year, today
from tests.support.inprocess import InProcessCorridor
from tests.support.keys import TestMember as Member
from tests.support.keys import signed, trust_body
from transit_window import clock
from transit_window.api.problems import ncts_code
from transit_window.clients.service import Role, add_client
from transit_window.db.session import unit_of_work
from transit_window.permits.models import (
    Permit,
    PermitActivity,
    PermitAlert,
    PermitApplication,
    PermitQuota,
    PermitRequest,
)
from transit_window.permits.signed import PermitClaims, sign_permit
from transit_window.permits.verify import verify_permit
from transit_window.protocol.jws import b64url, b64url_decode
from transit_window.protocol.models import OutboxMessage
from transit_window.protocol.trust import TrustList, TrustListBody

Body = dict[str, Any]
Headers = dict[str, str]
PROBLEM_JSON = "application/problem+json"
TABLES = (PermitQuota, Permit, PermitActivity, PermitApplication, PermitRequest, PermitAlert, OutboxMessage)
TODAY = today("KZ")  # the carrier's calendar: what the KZ node calls today
YEAR = quota_year("KZ")
PLATE = "123ABC02"


@dataclass
class Desk:
    """The module's corridor, each node's permit authority and border post, and the permits the stories act on."""

    corridor: InProcessCorridor
    members: dict[str, Member]
    authority: dict[str, Headers]
    border: dict[str, Headers]
    p1: str
    p2: str
    p3: str  # revoked by UZ
    tokens: dict[str, str]

    def client(self, node: str) -> httpx.AsyncClient:
        return self.corridor[node].client


async def _headers(corridor: InProcessCorridor, node: str, role: Role) -> Headers:
    async with unit_of_work(corridor[node].node) as session:
        _, secret = await add_client(session, name=f"{role} {node}", role=role)
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture(scope="module")
async def desk(
    node_databases: dict[str, str], members: dict[str, Member], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Desk]:
    await asyncio.gather(*(databases.truncate(url) for url in node_databases.values()))
    folder = Path(tmp_path_factory.mktemp("permits-bad-input"))
    trust = signed(trust_body([members[node] for node in NODES], threshold=2), [members[node] for node in NODES])
    (folder / "genesis.json").write_bytes(trust.to_json())
    corridor = InProcessCorridor()
    try:
        for node in NODES:
            await corridor.add_node(
                members[node],
                database_url=node_databases[node],
                trust_file=folder / "genesis.json",
                genesis_sha256=trust.sha256,
            )
        authority = {node: await _headers(corridor, node, "permits") for node in NODES}
        border = {node: await _headers(corridor, node, "customs") for node in NODES}
        await grant(corridor, authority, issuer="UZ", quantity=10)
        ids = []
        for _ in range(3):
            answer = await obtain(corridor, authority)
            ids.append(next(r["permit_id"] for r in answer["requests"] if r["country"] == "UZ"))
        tokens = {}
        for permit_id in ids:
            kept = await corridor["KZ"].client.get(f"/v1/permits/{permit_id}", headers=authority["KZ"])
            assert kept.status_code == 200, kept.text
            tokens[permit_id] = kept.json()["token"]
        revoked = await corridor["UZ"].client.post(
            f"/v1/permits/{ids[2]}/revoke", json={"reason": "carrier licence suspended"}, headers=authority["UZ"]
        )
        assert revoked.status_code == 200, revoked.text
        await corridor.deliver_all()
        yield Desk(
            corridor=corridor,
            members=members,
            authority=authority,
            border=border,
            p1=ids[0],
            p2=ids[1],
            p3=ids[2],
            tokens=tokens,
        )
    finally:
        await corridor.close()


async def stored(corridor: InProcessCorridor) -> dict[str, Any]:
    """Row counts of every table a permit request could write, and each quota's and permit's state, per node."""
    state: dict[str, Any] = {}
    for node, entry in corridor.nodes.items():
        async with entry.node.sessionmaker() as session:
            counts = [int(await session.scalar(select(func.count()).select_from(model)) or 0) for model in TABLES]
            quotas = (
                await session.execute(
                    select(
                        PermitQuota.issuer,
                        PermitQuota.holder,
                        PermitQuota.year,
                        PermitQuota.type,
                        PermitQuota.quantity,
                        PermitQuota.issued,
                        PermitQuota.version,
                        PermitQuota.updated_at,
                    ).order_by(PermitQuota.issuer, PermitQuota.holder, PermitQuota.year, PermitQuota.type)
                )
            ).all()
            permits = (
                await session.execute(
                    select(
                        Permit.id,
                        Permit.status,
                        Permit.entries,
                        Permit.exits,
                        Permit.revoked_at,
                        Permit.revoke_reason,
                        Permit.updated_at,
                    ).order_by(Permit.id)
                )
            ).all()
            state[node] = (counts, [tuple(row) for row in quotas], [tuple(row) for row in permits])
    return state


def assert_problem(response: httpx.Response, status: int, pointer: str | None, code: str | None, says: str) -> Body:
    """A problem+json with `status` whose detail contains `says`; with `pointer`, a field error there with `code`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: Body = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"], problem
    assert problem["instance"] == response.request.url.path, problem
    assert says in problem["detail"], problem
    if pointer is not None:
        errors = problem.get("errors") or []
        # a structural error carries the NCTS code of its kind and names the validator's own type beside it
        found = [(error["pointer"], error["code"]) for error in errors]
        found += [(error["pointer"], error["type"]) for error in errors if error.get("type")]
        assert (pointer, code) in found, found
        assert all(error["code"] == ncts_code(error["type"]) for error in errors if error.get("type")), errors
        assert all(error["detail"] for error in problem["errors"]), problem
    return problem


async def refused(
    desk: Desk,
    request: Callable[[], Awaitable[httpx.Response]],
    status: int,
    pointer: str | None = None,
    code: str | None = None,
    *,
    says: str = "",
) -> Body:
    before = await stored(desk.corridor)
    problem = assert_problem(await request(), status, pointer, code, says)
    assert await stored(desk.corridor) == before, "a refused request changed something"
    return problem


def _date(day: date) -> str:
    return day.isoformat()


# -- quotas (UZ's permit authority grants) ---------------------------------------------------------------------


def quota(**changes: Any) -> Body:
    return {"holder": "KZ", "year": YEAR, "type": "transit", "quantity": 10, **changes}


# (id, body, status, pointer, code, what the detail says)
QUOTA_CASES: list[tuple[str, Body, int, str, str, str]] = [
    ("unknown-type", quota(type="cabotage"), 422, "/body/type", "literal_error", "/body/type"),
    ("for-the-issuer-itself", quota(holder="UZ"), 422, "/body/holder", "14", "UZ cannot grant itself a quota"),
    ("for-a-non-member", quota(holder="CN"), 422, "/body/holder", "12", "CN is not a corridor member"),
    ("holder-lower-case", quota(holder="kz"), 422, "/body/holder", "string_pattern_mismatch", "/body/holder"),
    ("for-a-past-year", quota(year=YEAR - 1), 422, "/body/year", "14", f"quota year {YEAR - 1} of UZ is over"),
    ("two-years-ahead", quota(year=YEAR + 2), 422, "/body/year", "14", f"{YEAR + 2} is more than a year ahead"),
    ("negative-quantity", quota(quantity=-1), 422, "/body/quantity", "greater_than_equal", "/body/quantity"),
    ("quantity-as-text", quota(quantity="ten"), 422, "/body/quantity", "int_parsing", "/body/quantity"),
    ("unknown-field", quota(signature="x"), 422, "/body/signature", "extra_forbidden", "/body/signature"),
]


@pytest.mark.parametrize(
    ("body", "status", "pointer", "code", "says"),
    [case[1:] for case in QUOTA_CASES],
    ids=[case[0] for case in QUOTA_CASES],
)
async def test_a_bad_quota_is_refused(desk: Desk, body: Body, status: int, pointer: str, code: str, says: str) -> None:
    uz = desk.client("UZ")
    await refused(
        desk,
        lambda: uz.post("/v1/permits/quotas", json=body, headers=desk.authority["UZ"]),
        status,
        pointer,
        code,
        says=says,
    )


async def test_lowering_a_quota_below_what_is_issued_is_a_conflict(desk: Desk) -> None:
    uz = desk.client("UZ")
    problem = await refused(
        desk,
        lambda: uz.post("/v1/permits/quotas", json=quota(quantity=2), headers=desk.authority["UZ"]),
        409,
        says="3 transit permits",
    )
    assert "cannot go below" in problem["detail"] and problem["issued"] == 3


async def test_a_border_post_cannot_grant_a_quota(desk: Desk) -> None:
    uz = desk.client("UZ")
    await refused(desk, lambda: uz.post("/v1/permits/quotas", json=quota(), headers=desk.border["UZ"]), 403)


async def test_without_a_token_nothing_is_read_or_written(desk: Desk) -> None:
    uz, kz = desk.client("UZ"), desk.client("KZ")
    requests: list[Callable[[], Awaitable[httpx.Response]]] = [
        lambda: uz.post("/v1/permits/quotas", json=quota()),
        lambda: uz.get("/v1/permits/quotas"),
        lambda: kz.post("/v1/permits/applications", json=application()),
        lambda: uz.post(f"/v1/permits/{desk.p1}/use", json={"activity": "ENTRY", "office": "UZGIS001", "plate": PLATE}),
        lambda: uz.post(f"/v1/permits/{desk.p1}/revoke", json={"reason": "x"}),
        lambda: uz.post("/v1/permits/verify", json={"token": desk.tokens[desk.p1]}),
        lambda: uz.get(f"/v1/permits/{desk.p1}"),
    ]
    for request in requests:
        response = await request()
        assert response.headers.get("www-authenticate", "").startswith("Bearer"), response.headers
        await refused(desk, request, 401)


# -- applications (KZ's permit authority applies for its carrier) ----------------------------------------------


# (id, body, status, pointer, code, what the detail says)
# Bodies are made when the test runs, not when it is collected: a run that crosses midnight in Almaty (19:00 UTC)
# would otherwise send yesterday as `valid_from`.
APPLICATION_CASES: list[tuple[str, Callable[[], Body], int, str, str, str]] = [
    (
        "valid-until-before-valid-from",
        lambda: application(valid_from=_date(TODAY + timedelta(days=5)), valid_until=_date(TODAY + timedelta(days=1))),
        422,
        "/body/valid_until",
        "14",
        "before it starts",
    ),
    (
        "valid-from-in-the-past",
        lambda: application(valid_from=_date(TODAY - timedelta(days=1))),
        422,
        "/body/valid_from",
        "14",
        "is in the past",
    ),
    (
        "validity-past-the-grace-of-its-year",
        lambda: application(valid_until=_date(date(YEAR + 1, 2, 1))),
        422,
        "/body/valid_until",
        "14",
        f"a permit of quota year {YEAR} (the year it starts in) is valid at most until {YEAR + 1}-01-31 ({YEAR} "
        "transit permits of UZ are valid until the end of",
    ),
    (
        "valid-from-more-than-a-year-ahead",
        lambda: application(valid_from=_date(date(YEAR + 2, 1, 10)), valid_until=_date(date(YEAR + 2, 1, 11))),
        422,
        "/body/valid_from",
        "14",
        "more than a year ahead",
    ),
    (
        "valid-from-not-a-date",
        lambda: application(valid_from="next monday"),
        422,
        "/body/valid_from",
        "date_from_datetime_parsing",
        "/body/valid_from",
    ),
    ("plate-with-markup", lambda: application(plate="12<script>"), 422, "/body/plate", "12", "only letters A-Z"),
    ("plate-with-a-dollar", lambda: application(plate="AB$12"), 422, "/body/plate", "12", "'$'"),
    ("plate-too-long", lambda: application(plate="1" * 21), 422, "/body/plate", "string_too_long", "/body/plate"),
    (
        "plate-with-a-control-character",
        lambda: application(plate="123\x00ABC"),
        422,
        "/body/plate",
        "value_error",
        "U+0000",
    ),
    ("trailer-plate-bad", lambda: application(trailer_plate="TR@1"), 422, "/body/trailer_plate", "12", "'@'"),
    (
        "carrier-bin-checksum",
        lambda: application(carrier={**CARRIER, "id": "230340000127"}),
        422,
        "/body/carrier/id",
        "12",
        "check digit is 7, expected 6",
    ),
    (
        "carrier-without-name",
        lambda: application(carrier={"id": CARRIER["id"]}),
        422,
        "/body/carrier/name",
        "missing",
        "/body/carrier/name",
    ),
    (
        "route-with-an-unknown-country",
        lambda: application(route=["KZ", "XX", "TM"]),
        422,
        "/body/route/1",
        "12",
        "XX is not a corridor member",
    ),
    (
        "route-with-a-country-twice-in-a-row",
        lambda: application(route=["KZ", "UZ", "UZ", "TM"]),
        422,
        "/body/route/2",
        "14",
        "UZ twice in a row",
    ),
    ("route-of-one-country", lambda: application(route=["KZ"]), 422, "/body/route", "too_short", "/body/route"),
    (
        "route-lower-case",
        lambda: application(route=["KZ", "uz"]),
        422,
        "/body/route/1",
        "string_pattern_mismatch",
        "/body/route/1",
    ),
    ("zero-trips", lambda: application(trips=0), 422, "/body/trips", "greater_than_equal", "/body/trips"),
    ("too-many-trips", lambda: application(trips=101), 422, "/body/trips", "less_than_equal", "/body/trips"),
    (
        "unknown-field",
        lambda: application(priority="urgent"),
        422,
        "/body/priority",
        "extra_forbidden",
        "/body/priority",
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "pointer", "code", "says"),
    [case[1:] for case in APPLICATION_CASES],
    ids=[case[0] for case in APPLICATION_CASES],
)
async def test_a_bad_application_is_refused(
    desk: Desk, body: Callable[[], Body], status: int, pointer: str, code: str, says: str
) -> None:
    kz = desk.client("KZ")
    await refused(
        desk,
        lambda: kz.post("/v1/permits/applications", json=body(), headers=desk.authority["KZ"]),
        status,
        pointer,
        code,
        says=says,
    )


async def test_every_error_of_an_application_is_listed(desk: Desk) -> None:
    kz = desk.client("KZ")
    body = application(plate="AB$12", carrier={**CARRIER, "id": "230340000127"}, route=["KZ", "XX", "TM"])
    problem = await refused(
        desk,
        lambda: kz.post("/v1/permits/applications", json=body, headers=desk.authority["KZ"]),
        422,
        "/body/route/1",
        "12",
        says="the application has 3 errors",
    )
    assert [error["pointer"] for error in problem["errors"]] == ["/body/plate", "/body/carrier/id", "/body/route/1"]


async def test_a_body_that_is_not_json_is_refused(desk: Desk) -> None:
    kz = desk.client("KZ")
    headers = {**desk.authority["KZ"], "Content-Type": "application/json"}
    await refused(
        desk,
        lambda: kz.post("/v1/permits/applications", content=b"{carrier: nope", headers=headers),
        422,
        "/body",
        "json_invalid",
        says="the body is not valid JSON: Expecting property name enclosed in double quotes at line 1, column 2",
    )


async def test_a_20_mib_application_is_refused_with_413(desk: Desk) -> None:
    kz = desk.client("KZ")
    body = orjson.dumps(application(carrier={**CARRIER, "name": "x" * 20 * 1024 * 1024}))
    headers = {**desk.authority["KZ"], "Content-Type": "application/json"}
    await refused(desk, lambda: kz.post("/v1/permits/applications", content=body, headers=headers), 413)


async def test_a_border_post_cannot_apply(desk: Desk) -> None:
    kz = desk.client("KZ")
    await refused(desk, lambda: kz.post("/v1/permits/applications", json=application(), headers=desk.border["KZ"]), 403)


# -- use at the border ------------------------------------------------------------------------------------------


def forged(token: str, **claims: Any) -> str:
    """The permit with its payload altered and its signature kept, as a forger with a QR printer would make it."""
    header, payload, signature = token.split(".")
    data = orjson.loads(b64url_decode(payload))
    data.update(claims)
    return ".".join((header, b64url(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)), signature))


def in_minutes(minutes: float) -> str:
    return clock.isoformat(clock.utcnow() + timedelta(minutes=minutes))


# (id, node, permit, body changes, status, pointer, code, what the detail says). The permit is a Desk field
# (p1, p2, p3) or a literal id. Token values "forged" and "p2" stand for tokens made from the desk's permits, an
# `at` of "+60" for 60 minutes from now; `{p1}` and `{p2}` in what the detail says are those permits' ids.
USE_CASES: list[tuple[str, str, str, dict[str, Any], int, str | None, str | None, str]] = [
    (
        "entry-at-another-countrys-border",
        "KZ",
        "p1",
        {"office": "KZZHZ001"},
        403,
        "/body/activity",
        "15",
        "recorded at the border of UZ, its issuer",
    ),
    ("office-of-another-country", "UZ", "p1", {"office": "KZZHZ001"}, 403, "/body/office", "15", "an office of KZ"),
    ("entry-at-an-inland-office", "UZ", "p1", {"office": "UZTAS001"}, 422, "/body/office", "14", "an inland office"),
    ("unknown-office", "UZ", "p1", {"office": "UZZZZ999"}, 422, "/body/office", "12", "no customs office 'UZZZZ999'"),
    (
        "office-lower-case",
        "UZ",
        "p1",
        {"office": "uzgis001"},
        422,
        "/body/office",
        "string_pattern_mismatch",
        "/body/office",
    ),
    (
        "sighting-at-the-issuers-border",
        "UZ",
        "p1",
        {"activity": "SIGHTING"},
        422,
        "/body/activity",
        "14",
        "record ENTRY or EXIT",
    ),
    ("unknown-activity", "UZ", "p1", {"activity": "TRANSIT"}, 422, "/body/activity", "literal_error", "/body/activity"),
    (
        "another-truck",
        "UZ",
        "p1",
        {"plate": "01A123BC"},
        422,
        "/body/plate",
        "14",
        "is for truck 123ABC02 and trailer 45TRL02, not 01A123BC",
    ),
    ("plate-with-forbidden-characters", "UZ", "p1", {"plate": "AB$12"}, 422, "/body/plate", "12", "'$'"),
    ("time-in-the-future", "UZ", "p1", {"at": "+60"}, 422, "/body/at", "14", "is in the future"),
    ("time-without-offset", "UZ", "p1", {"at": "2026-06-01T10:00:00"}, 422, "/body/at", "timezone_aware", "/body/at"),
    (
        "forged-qr",
        "UZ",
        "p1",
        {"token": "forged"},
        422,
        "/body/token",
        "15",
        "not authentic: the signature does not verify",
    ),
    (
        "qr-of-another-permit",
        "UZ",
        "p1",
        {"token": "p2"},
        422,
        "/body/token",
        "14",
        "the scanned permit is {p2}, not {p1}",
    ),
    ("qr-that-is-not-a-jws", "UZ", "p1", {"token": "hello"}, 422, "/body/token", "15", "not a compact JWS"),
    (
        "qr-over-8192-characters",
        "UZ",
        "p1",
        {"token": "x" * 8193},
        422,
        "/body/token",
        "string_too_long",
        "/body/token",
    ),
    (
        "exit-without-entry",
        "UZ",
        "p1",
        {"activity": "EXIT", "office": "UZALT001"},
        409,
        None,
        None,
        "has no open ENTRY to exit from",
    ),
    ("entry-of-a-revoked-permit", "UZ", "p3", {}, 409, None, None, "revoked by UZ"),
    ("unknown-permit", "UZ", f"UZ-KZ-{YEAR}-2-999", {}, 404, None, None, f"no permit UZ-KZ-{YEAR}-2-999"),
    (
        "malformed-permit-id",
        "UZ",
        "UZ-KZ-26-2-1",
        {},
        422,
        "/path/permit_id",
        "string_pattern_mismatch",
        "/path/permit_id",
    ),
    (
        "permit-id-lower-case",
        "UZ",
        f"uz-kz-{YEAR}-2-1",
        {},
        422,
        "/path/permit_id",
        "string_pattern_mismatch",
        "/path/permit_id",
    ),
    ("unknown-field", "UZ", "p1", {"gate": "3"}, 422, "/body/gate", "extra_forbidden", "/body/gate"),
]


def _use_body(desk: Desk, changes: dict[str, Any]) -> Body:
    body: Body = {"activity": "ENTRY", "office": "UZGIS001", "plate": PLATE}
    for name, value in changes.items():
        if name == "at" and value.startswith("+"):
            value = in_minutes(float(value[1:]))
        elif name == "token" and value == "forged":
            value = forged(desk.tokens[desk.p1], plate="999ZZZ02")
        elif name == "token" and value == "p2":
            value = desk.tokens[desk.p2]
        body[name] = value
    return body


@pytest.mark.parametrize(
    ("node", "permit", "changes", "status", "pointer", "code", "says"),
    [case[1:] for case in USE_CASES],
    ids=[case[0] for case in USE_CASES],
)
async def test_a_bad_use_is_refused(
    desk: Desk,
    node: str,
    permit: str,
    changes: dict[str, Any],
    status: int,
    pointer: str | None,
    code: str | None,
    says: str,
) -> None:
    permit_id = getattr(desk, permit) if permit in ("p1", "p2", "p3") else permit
    body = _use_body(desk, changes)
    client = desk.client(node)
    await refused(
        desk,
        lambda: client.post(f"/v1/permits/{permit_id}/use", json=body, headers=desk.border[node]),
        status,
        pointer,
        code,
        says=says.format(p1=desk.p1, p2=desk.p2),
    )


@pytest.mark.parametrize(
    ("signer", "result", "says"),
    [
        ("XX", "unknown-issuer", "is in no member's key set"),
        ("KZ", "bad-signature", "belongs to KZ, but the permit claims issuer UZ"),
    ],
    ids=["key-of-no-member", "key-of-another-member"],
)
async def test_a_qr_signed_by_another_key_than_the_issuers_is_refused(
    desk: Desk, signer: str, result: str, says: str
) -> None:
    """The permit's exact claims, re-signed with a key that does not speak for UZ."""
    claims = PermitClaims.model_validate_json(b64url_decode(desk.tokens[desk.p1].split(".")[1]))
    token = sign_permit(claims, key=desk.members[signer].key)
    body = {"activity": "ENTRY", "office": "UZGIS001", "plate": PLATE, "token": token}
    uz = desk.client("UZ")
    problem = await refused(
        desk,
        lambda: uz.post(f"/v1/permits/{desk.p1}/use", json=body, headers=desk.border["UZ"]),
        422,
        "/body/token",
        "15",
        says=says,
    )
    assert problem["result"] == result


# -- a permit signed with a key its country revoked --------------------------------------------------------------


def with_uz_key_revoked(desk: Desk) -> TrustList:
    """Trust list version 2: UZ's key revoked an hour ago, signed by KZ and TM (the threshold)."""
    current = desk.corridor["TM"].node.trust
    revoked_at = clock.utcnow() - timedelta(hours=1)
    body = TrustListBody.model_validate(
        {
            **current.body.model_dump(),
            "version": current.version + 1,
            "issued_at": clock.utcnow(),
            "expires_at": clock.utcnow() + timedelta(days=30),
            "members": [
                member.model_copy(update={"keys": [member.keys[0].model_copy(update={"revoked_at": revoked_at})]})
                if member.node == "UZ"
                else member
                for member in current.body.members
            ],
        }
    )
    return signed(body, [desk.members["KZ"], desk.members["TM"]])


async def test_a_permit_signed_with_a_revoked_key_is_untrusted(desk: Desk) -> None:
    revoked = with_uz_key_revoked(desk)
    token = desk.tokens[desk.p1]
    assert verify_permit(token, trust=desk.corridor["TM"].node.trust, revocations={}).result == "valid"
    verdict = verify_permit(token, trust=revoked, revocations={})
    assert verdict.result == "untrusted-key" and not verdict.valid
    assert "UZ revoked its key" in verdict.reasons[0] and "nothing it signed counts" in verdict.reasons[0]


async def test_a_sighting_with_a_qr_signed_by_a_revoked_key_is_refused(desk: Desk) -> None:
    """TM's posts have adopted a trust list in which UZ revoked its key: UZ's permits no longer count there.
    (The list is set in memory only, so the rest of the module keeps the genesis list.)"""
    tm = desk.corridor["TM"]
    genesis = tm.node.trust
    tm.node.set_trust(with_uz_key_revoked(desk))
    try:
        body = {"activity": "SIGHTING", "office": "TMFAR001", "plate": PLATE, "token": desk.tokens[desk.p1]}
        problem = await refused(
            desk,
            lambda: tm.client.post(f"/v1/permits/{desk.p1}/use", json=body, headers=desk.border["TM"]),
            422,
            "/body/token",
            "15",
            says="UZ revoked its key",
        )
        assert problem["result"] == "untrusted-key"
        verdict = await tm.client.post("/v1/permits/verify", json={"token": body["token"]}, headers=desk.border["TM"])
        assert verdict.status_code == 200 and verdict.json()["result"] == "untrusted-key", verdict.text
    finally:
        tm.node.set_trust(genesis)


# -- revocation -------------------------------------------------------------------------------------------------


async def test_only_the_issuer_revokes(desk: Desk) -> None:
    kz = desk.client("KZ")
    await refused(
        desk,
        lambda: kz.post(f"/v1/permits/{desk.p1}/revoke", json={"reason": "fraud"}, headers=desk.authority["KZ"]),
        403,
        says=f"{desk.p1} was issued by UZ; only the issuer revokes it",
    )


async def test_revoking_twice_is_a_conflict(desk: Desk) -> None:
    uz = desk.client("UZ")
    problem = await refused(
        desk,
        lambda: uz.post(f"/v1/permits/{desk.p3}/revoke", json={"reason": "again"}, headers=desk.authority["UZ"]),
        409,
        says=f"{desk.p3} is revoked: it cannot be revoked",
    )
    assert problem["permit_status"] == "revoked"


async def test_revoking_an_unknown_or_malformed_permit_is_refused(desk: Desk) -> None:
    uz = desk.client("UZ")
    headers = desk.authority["UZ"]
    unknown = f"UZ-KZ-{YEAR}-2-999"
    await refused(
        desk,
        lambda: uz.post(f"/v1/permits/{unknown}/revoke", json={"reason": "x"}, headers=headers),
        404,
        says=f"no permit {unknown}",
    )
    await refused(
        desk,
        lambda: uz.post("/v1/permits/UZ-KZ-2026-9-1/revoke", json={"reason": "x"}, headers=headers),
        422,
        "/path/permit_id",
        "string_pattern_mismatch",
    )


async def test_revoking_without_a_reason_is_refused(desk: Desk) -> None:
    uz = desk.client("UZ")
    for body, code in (({"reason": ""}, "string_too_short"), ({}, "missing")):
        await refused(
            desk,
            partial(uz.post, f"/v1/permits/{desk.p1}/revoke", json=body, headers=desk.authority["UZ"]),
            422,
            "/body/reason",
            code,
        )


async def test_a_border_post_cannot_revoke(desk: Desk) -> None:
    uz = desk.client("UZ")
    await refused(
        desk,
        lambda: uz.post(f"/v1/permits/{desk.p1}/revoke", json={"reason": "fraud"}, headers=desk.border["UZ"]),
        403,
    )


# -- verification and reading -------------------------------------------------------------------------------------


async def test_verify_refuses_a_token_over_8192_characters(desk: Desk) -> None:
    tm = desk.client("TM")
    await refused(
        desk,
        lambda: tm.post("/v1/permits/verify", json={"token": "a." * 4097}, headers=desk.border["TM"]),
        422,
        "/body/token",
        "string_too_long",
    )


async def test_verify_refuses_a_plate_with_forbidden_characters(desk: Desk) -> None:
    tm = desk.client("TM")
    body = {"token": desk.tokens[desk.p1], "plate": "12<script>"}
    await refused(
        desk,
        lambda: tm.post("/v1/permits/verify", json=body, headers=desk.border["TM"]),
        422,
        "/body/plate",
        "12",
        says="only letters A-Z",
    )


async def test_garbage_to_verify_is_a_verdict_not_an_error(desk: Desk) -> None:
    """Anything a scanner read is checked: text that is not a JWS gets the designed verdict `malformed`."""
    tm = desk.client("TM")
    before = await stored(desk.corridor)
    answer = await tm.post("/v1/permits/verify", json={"token": "not a permit at all"}, headers=desk.border["TM"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == "malformed" and answer.json()["valid"] is False
    assert await stored(desk.corridor) == before


async def test_bad_queries_are_refused(desk: Desk) -> None:
    kz = desk.client("KZ")
    headers = desk.border["KZ"]
    for params, pointer, code in (
        ({"plate": "12<script>"}, "/query/plate", "12"),
        ({"status": "lost"}, "/query/status", "literal_error"),
        ({"limit": "0"}, "/query/limit", "greater_than_equal"),
        ({"cursor": "__4"}, "/query/cursor", "invalid"),
    ):
        await refused(desk, partial(kz.get, "/v1/permits", params=params, headers=headers), 422, pointer, code)
    await refused(
        desk,
        lambda: kz.get(f"/v1/permits/{desk.p1}/qr", params={"format": "gif"}, headers=headers),
        422,
        "/query/format",
        "literal_error",
    )
    await refused(desk, lambda: kz.get(f"/v1/permits/UZ-KZ-{YEAR}-2-999", headers=headers), 404)
    applications = "/v1/permits/applications/"
    authority = desk.authority["KZ"]
    unknown = "0190a000-0000-7000-8000-000000000000"
    await refused(
        desk, lambda: kz.get(applications + unknown, headers=authority), 404, says=f"no permit application {unknown}"
    )
    await refused(
        desk, lambda: kz.get(applications + "a" * 37, headers=authority), 422, "/path/application_id", "string_too_long"
    )
