"""`POST /v1/permits/verify` and the offline `transit-window permits verify` never call a permit valid that is
revoked, expired or not valid yet (issue 14.3; `used-up` is in test_single_window.py): each answer names which,
online with the counts of the node's record, at the issuer, the holder and a route country keeping a copy.

The offline command runs in this process (typer's runner) on a cache filled from the nodes' own trust list and
signed revocation lists, so the project's clock can be moved past the permits' end for both paths at once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from typer.testing import CliRunner

from tests.permits.conftest import grant, obtain
from tests.support.calendar import today
from tests.support.inprocess import InProcessCorridor
from transit_window import clock
from transit_window.cli.permits_cmd import app
from transit_window.permits.offline import PermitCache

Headers = dict[str, dict[str, str]]


async def fill_cache(corridor: InProcessCorridor, folder: Path) -> None:
    """What `permits sync` stores: the trust list and every member's signed revocation list."""
    cache = PermitCache(folder)
    now = clock.utcnow()
    trust = corridor["UZ"].node.trust
    cache.accept_trust(trust, pinned_sha256=trust.sha256, now=now)
    for node in corridor.nodes:
        listed = await corridor[node].client.get("/v1/permits/revocations")
        assert listed.status_code == 200, listed.text
        assert cache.store_revocations(node, listed.json()["token"], trust=trust, now=now).ok


def offline(folder: Path, token: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["verify", token, "--cache", str(folder), "--json"])
    verdict: dict[str, Any] = orjson.loads(result.stdout)
    assert result.exit_code == (0 if verdict["valid"] else 1), result.stdout
    return verdict


async def online(corridor: InProcessCorridor, border: Headers, node: str, token: str) -> dict[str, Any]:
    response = await corridor[node].client.post("/v1/permits/verify", json={"token": token}, headers=border[node])
    assert response.status_code == 200, response.text
    verdict: dict[str, Any] = response.json()
    return verdict


async def test_revoked_expired_and_not_yet_valid_permits_are_never_valid_online_or_offline(
    corridor: InProcessCorridor, authority: Headers, border: Headers, tmp_path: Path
) -> None:
    await grant(corridor, authority, issuer="UZ", quantity=5)
    tokens: dict[str, str] = {}
    ids: dict[str, str] = {}
    for name, changes in (
        ("current", {}),
        ("revoked", {}),
        ("later", {"valid_from": (today() + timedelta(days=3)).isoformat()}),
    ):
        application = await obtain(corridor, authority, **changes)
        ids[name] = next(r["permit_id"] for r in application["requests"] if r["country"] == "UZ")
        kept = await corridor["KZ"].client.get(f"/v1/permits/{ids[name]}", headers=authority["KZ"])
        tokens[name] = kept.json()["token"]
    revoked = await corridor["UZ"].client.post(
        f"/v1/permits/{ids['revoked']}/revoke", json={"reason": "carrier licence suspended"}, headers=authority["UZ"]
    )
    assert revoked.status_code == 200, revoked.text
    await corridor.deliver_all()
    await fill_cache(corridor, tmp_path)

    for node in ("UZ", "KZ", "TM"):  # the issuer, the holder, a route country with a copy
        answers = {name: await online(corridor, border, node, token) for name, token in tokens.items()}
        assert {name: (a["result"], a["valid"]) for name, a in answers.items()} == {
            "current": ("valid", True),
            "revoked": ("revoked", False),
            "later": ("not-yet-valid", False),
        }, (node, answers)
        assert all((a["trips"], a["entries"], a["exits"]) == (1, 0, 0) for a in answers.values()), (node, answers)
        assert "carrier licence suspended" in answers["revoked"]["reasons"][0]
        assert answers["later"]["reasons"][0].startswith("valid only from ")
    verdicts = {name: offline(tmp_path, token) for name, token in tokens.items()}
    assert {name: (v["result"], v["valid"]) for name, v in verdicts.items()} == {
        "current": ("valid", True),
        "revoked": ("revoked", False),
        "later": ("not-yet-valid", False),
    }, verdicts

    # Three weeks on every permit is over (valid 20 days): expired, and the revoked one still says revoked.
    clock.set_offset(timedelta(days=22))
    try:
        for node in ("UZ", "KZ", "TM"):
            answers = {name: await online(corridor, border, node, token) for name, token in tokens.items()}
            assert {name: (a["result"], a["valid"]) for name, a in answers.items()} == {
                "current": ("expired", False),
                "revoked": ("revoked", False),
                "later": ("expired", False),
            }, (node, answers)
            assert answers["current"]["reasons"][0].startswith("expired at ")
            assert (answers["current"]["trips"], answers["current"]["exits"]) == (1, 0)
        verdicts = {name: offline(tmp_path, token) for name, token in tokens.items()}
        assert {name: (v["result"], v["valid"]) for name, v in verdicts.items()} == {
            "current": ("expired", False),
            "revoked": ("revoked", False),
            "later": ("expired", False),
        }, verdicts
    finally:
        clock.set_offset(timedelta(0))
