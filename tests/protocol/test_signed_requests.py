"""Signed reads between nodes (`Authorization: DTC-Signature`): each refusal in PROTOCOL.md §5's table, in its
order, answered with its own `reason` and always 401 with the challenge, so a peer knows what to sign again.

Most stories call `verify_request` directly (no database, no HTTP); the last ones go through a node's endpoints to
show the answer an implementer sees on the wire.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from tests.support.keys import signed, trust_body
from transit_window import clock
from transit_window.errors import RequestNotAuthentic
from transit_window.protocol import MAX_JSON_INTEGER, jws
from transit_window.protocol.peer_auth import REQUEST_TYP, SCHEME, PeerAuth, verify_request
from transit_window.protocol.trust import TrustList

if TYPE_CHECKING:
    from tests.support.inprocess import InProcessCorridor
    from tests.support.keys import TestMember

PULL = "/v1/corridor/messages?to=KZ&after_seq=0&limit=500"
SKEW = timedelta(seconds=120)


@pytest.fixture
def trust(members: dict[str, TestMember]) -> TrustList:
    three = [members[node] for node in ("KZ", "UZ", "TM")]
    return signed(trust_body(three, threshold=2), three)


def claims(**changes: Any) -> dict[str, Any]:
    """KZ asking UZ for its messages, signed now; `changes` set a claim wrong on purpose (None removes it)."""
    base = {"iss": "KZ", "aud": "UZ", "iat": clock.isoformat(clock.utcnow()), "method": "GET", "path": PULL}
    return {key: value for key, value in {**base, **changes}.items() if value is not None}


def header(token: str) -> str:
    return f"{SCHEME} {token}"


def b64json(value: object) -> str:
    return jws.b64url(orjson.dumps(value))


def refusal(trust: TrustList, authorization: str | None, *, method: str = "GET", path: str = PULL) -> str:
    with pytest.raises(RequestNotAuthentic) as refused:
        verify_request(authorization, trust=trust, me="UZ", method=method, path=path, skew=SKEW)
    assert refused.value.challenge == SCHEME
    assert refused.value.detail
    return refused.value.reason


def test_a_request_signed_now_for_this_node_and_this_request_names_its_signer(
    members: dict[str, TestMember], trust: TrustList
) -> None:
    token = jws.sign_compact(orjson.dumps(claims()), key=members["KZ"].key, typ=REQUEST_TYP)
    assert verify_request(header(token), trust=trust, me="UZ", method="GET", path=PULL, skew=SKEW) == "KZ"
    lower_case_scheme = f"dtc-signature {token}"
    assert verify_request(lower_case_scheme, trust=trust, me="UZ", method="GET", path=PULL, skew=SKEW) == "KZ"


def test_each_refusal_has_its_own_reason_in_the_order_of_the_table(
    members: dict[str, TestMember], trust: TrustList
) -> None:
    kz = members["KZ"].key

    def sign(payload: object, *, key: Any = kz, typ: str = REQUEST_TYP) -> str:
        return header(jws.sign_compact(orjson.dumps(payload), key=key, typ=typ))

    good = sign(claims())
    protected, payload, signature = good.removeprefix(f"{SCHEME} ").split(".")
    cases: dict[str, Callable[[], str]] = {
        "unsigned": lambda: refusal(trust, None),
        "unsigned (a bearer token)": lambda: refusal(trust, "Bearer tw_something"),
        "malformed": lambda: refusal(trust, header("not-a-jws")),
        "malformed (an unsecured alg none JWS)": lambda: refusal(
            trust, header(f"{b64json({'alg': 'none', 'typ': REQUEST_TYP})}.{payload}.")
        ),
        "bad-header": lambda: refusal(trust, sign(claims(), typ="dtc-msg+jws")),
        "bad-header (alg none, a signature part)": lambda: refusal(
            trust, header(f"{b64json({'alg': 'none', 'kid': kz.kid, 'typ': REQUEST_TYP})}.{payload}.{signature}")
        ),
        "bad-header (crit)": lambda: refusal(
            trust,
            header(
                f"{b64json({'alg': 'EdDSA', 'kid': kz.kid, 'typ': REQUEST_TYP, 'crit': ['b64']})}.{payload}.{signature}"
            ),
        ),
        "unknown-key": lambda: refusal(trust, sign(claims(), key=members["XX"].key)),
        "bad-signature": lambda: refusal(trust, header(f"{protected}.{b64json(claims(path='/other'))}.{signature}")),
        "bad-claims (no path)": lambda: refusal(trust, sign(claims(path=None))),
        "bad-claims (iat as a number)": lambda: refusal(trust, sign(claims(iat=int(clock.utcnow().timestamp())))),
        "wrong-issuer": lambda: refusal(trust, sign(claims(iss="TM"))),
        "wrong-audience": lambda: refusal(trust, sign(claims(aud="TM"))),
        "future-iat": lambda: refusal(trust, sign(claims(iat=clock.isoformat(clock.utcnow() + 3 * SKEW)))),
        "stale-request": lambda: refusal(
            trust, sign(claims(iat=clock.isoformat(clock.utcnow() - timedelta(minutes=10))))
        ),
        "request-mismatch (another query)": lambda: refusal(
            trust, good, path=PULL.replace("after_seq=0", "after_seq=9")
        ),
        "request-mismatch (another method)": lambda: refusal(trust, good, method="POST"),
    }
    answered = {case: run() for case, run in cases.items()}
    assert answered == {case: case.split(" ")[0] for case in cases}


def test_a_stale_request_says_how_old_it_is_and_how_long_a_signature_lasts(
    members: dict[str, TestMember], trust: TrustList
) -> None:
    """The bug of issue 14: a request signed ten minutes ago was refused as `future-iat`, "Issued in the future"."""
    old = jws.sign_compact(
        orjson.dumps(claims(iat=clock.isoformat(clock.utcnow() - timedelta(minutes=10)))),
        key=members["KZ"].key,
        typ=REQUEST_TYP,
    )
    with pytest.raises(RequestNotAuthentic) as refused:
        verify_request(header(old), trust=trust, me="UZ", method="GET", path=PULL, skew=SKEW)
    assert refused.value.reason == "stale-request"
    assert "600 s old" in refused.value.detail and "valid for 120 s" in refused.value.detail


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
async def test_on_the_wire_a_refusal_is_a_401_problem_with_the_challenge_and_bad_queries_come_after_it(
    corridor: InProcessCorridor, members: dict[str, TestMember]
) -> None:
    kz = corridor["KZ"]
    as_uz = PeerAuth(key=members["UZ"].key, iss="UZ", aud="KZ")

    unsigned = await kz.client.get("/v1/corridor/messages", params={"to": "UZ", "after_seq": -1})
    assert unsigned.status_code == 401 and unsigned.headers["www-authenticate"] == SCHEME
    assert unsigned.headers["content-type"] == "application/problem+json"
    assert (unsigned.json()["type"], unsigned.json()["reason"]) == ("urn:dtc:problem:request-not-authentic", "unsigned")

    for after_seq in (-1, MAX_JSON_INTEGER + 1):
        invalid = await kz.client.get("/v1/corridor/messages", params={"to": "UZ", "after_seq": after_seq}, auth=as_uz)
        assert invalid.status_code == 422, invalid.text
    highest = await kz.client.get(
        "/v1/corridor/messages", params={"to": "UZ", "after_seq": MAX_JSON_INTEGER}, auth=as_uz
    )
    assert highest.status_code == 200 and highest.json() == {"messages": []}

    ten_minutes_ago = clock.isoformat(clock.utcnow() - timedelta(minutes=10))
    request = {
        "iss": "UZ",
        "aud": "KZ",
        "iat": ten_minutes_ago,
        "method": "GET",
        "path": "/v1/corridor/checkpoints?node=UZ",
    }
    old = jws.sign_compact(orjson.dumps(request), key=members["UZ"].key, typ=REQUEST_TYP)
    late = await kz.client.get(
        "/v1/corridor/checkpoints", params={"node": "UZ"}, headers={"Authorization": header(old)}
    )
    assert late.status_code == 401 and late.json()["reason"] == "stale-request", late.text
