"""A border post checks permits with no connection: `transit-window permits sync` while the nodes run, then every
node process is stopped and `transit-window permits verify` answers from the cache alone.

Real processes on PostgreSQL: KZ and UZ run, TM is a genesis member that never starts (a trip to TM is permit-free
for KZ carriers, so only UZ is asked; TM's revocation list cannot be fetched and sync says so).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest

from tests.permits.conftest import application
from tests.support.calendar import quota_year
from transit_window import clock
from transit_window.permits.signed import Carrier, PermitClaims, sign_permit
from transit_window.protocol.keys import load_private_key, write_private_key

if TYPE_CHECKING:
    from tests.corridor.conftest import ProcessCorridor, StartCorridor

pytestmark = pytest.mark.corridor


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`transit-window ARGS` in its own process, with no TW_* setting inherited from the test run."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TW_")}
    return subprocess.run(
        [sys.executable, "-m", "transit_window", *args],
        env={**env, "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def verify(cache: Path, token: str, *extra: str) -> tuple[int, dict[str, Any]]:
    result = cli("permits", "verify", token, "--cache", str(cache), "--json", *extra)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return result.returncode, json.loads(result.stdout)


def call(corridor: ProcessCorridor, node: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """As the node's demo permit authority."""
    headers = {"Authorization": f"Bearer {corridor.local.token(node, 'permits')}"}
    return corridor.http.request(method, f"{corridor.local.spec(node).url}{path}", headers=headers, **kwargs)


def obtain(corridor: ProcessCorridor) -> dict[str, Any]:
    """Apply at KZ and wait for UZ's answer: the issued permit, as KZ keeps it."""
    applied = call(corridor, "KZ", "POST", "/v1/permits/applications", json=application())
    assert applied.status_code == 201, applied.text
    location = applied.headers["location"]

    def answered() -> bool:
        return bool(call(corridor, "KZ", "GET", location).json()["status"] != "pending")

    corridor.wait_until("UZ answers KZ's permit application", answered)
    answer = call(corridor, "KZ", "GET", location).json()
    assert answer["status"] == "complete", answer
    permit_id = next(request["permit_id"] for request in answer["requests"] if request["country"] == "UZ")
    kept = call(corridor, "KZ", "GET", f"/v1/permits/{permit_id}")
    assert kept.status_code == 200, kept.text
    return dict(kept.json())


def altered(token: str, **changes: Any) -> str:
    """The same signature over a payload someone edited."""
    header, payload, signature = token.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    edited = base64.urlsafe_b64encode(orjson.dumps(claims, option=orjson.OPT_SORT_KEYS)).rstrip(b"=").decode()
    return f"{header}.{edited}.{signature}"


def test_a_border_post_verifies_permits_offline_after_the_nodes_are_gone(
    start_corridor: StartCorridor, tmp_path: Path
) -> None:
    corridor = start_corridor(["KZ", "UZ", "TM"], run=["KZ", "UZ"])
    year = quota_year()
    granted = call(
        corridor,
        "UZ",
        "POST",
        "/v1/permits/quotas",
        json={"holder": "KZ", "year": year, "type": "transit", "quantity": 5},
    )
    assert granted.status_code == 200, granted.text
    valid = obtain(corridor)
    revoked = obtain(corridor)
    assert (valid["issuer"], valid["type"], valid["status"]) == ("UZ", "transit", "active")
    revoke = call(corridor, "UZ", "POST", f"/v1/permits/{revoked['id']}/revoke", json={"reason": "forged CMR"})
    assert revoke.status_code == 200, revoke.text

    cache = tmp_path / "post-cache"
    synced = cli("permits", "sync", "--node", corridor.local.spec("KZ").url, "--cache", str(cache))
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "trusting on first use" in synced.stdout and corridor.local.genesis_sha256 in synced.stdout
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in synced.stdout.splitlines()]
    rows = {row[0]: row[1:] for row in cells if len(row) == 5}  # node: version, revoked, next update, status
    assert rows["UZ"][:2] == ["1", "1"] and rows["UZ"][3] == "updated", synced.stdout
    assert rows["KZ"][:2] == ["0", "0"] and rows["KZ"][3] == "updated", synced.stdout
    assert rows["TM"][0] == "-" and rows["TM"][3].startswith("unreachable"), synced.stdout
    assert sorted(path.name for path in (cache / "revocations").iterdir()) == ["KZ.jws", "UZ.jws"]

    pinned = cli(
        "permits", "sync", "--node", corridor.local.spec("UZ").url, "--cache", str(tmp_path / "pinned"),
        "--genesis-sha256", corridor.local.genesis_sha256,
    )  # fmt: skip
    assert pinned.returncode == 0 and "pinned" in pinned.stdout, pinned.stdout + pinned.stderr
    wrong_pin = cli(
        "permits", "sync", "--node", corridor.local.spec("UZ").url, "--cache", str(tmp_path / "wrong"),
        "--genesis-sha256", "0" * 64,
    )  # fmt: skip
    assert wrong_pin.returncode == 1 and "does not match the pinned" in wrong_pin.stdout
    assert not (tmp_path / "wrong" / "trust-list.json").exists()

    corridor.stop()
    assert not any(process.alive for process in corridor.local.processes.values())

    # -- offline from here on ---------------------------------------------------------------------------------
    code, verdict = verify(cache, valid["token"])
    assert (code, verdict["result"], verdict["valid"]) == (0, "valid", True), verdict
    assert verdict["permit"]["id"] == valid["id"] and verdict["permit"]["for"] == "KZ"
    assert verdict["revocation_list_version"] == 1 and verdict["trust_list_version"] == 1
    assert verdict["warnings"] == []

    report = cli("permits", "verify", "-", "--cache", str(cache), "--plate", "123 abc 02", stdin=valid["token"] + "\n")
    assert report.returncode == 0, report.stdout + report.stderr
    assert "VALID" in report.stdout and valid["id"] in report.stdout and "KZ → UZ → TM" in report.stdout

    code, verdict = verify(cache, revoked["token"])
    assert (code, verdict["result"]) == (1, "revoked"), verdict
    assert "forged CMR" in verdict["reasons"][0]

    code, verdict = verify(cache, valid["token"], "--plate", "777XYZ02")
    assert (code, verdict["result"]) == (1, "wrong-vehicle"), verdict

    now = clock.utcnow()
    expired_claims = PermitClaims(
        id=f"UZ-KZ-{year}-2-999",
        type="transit",
        year=year,
        iss="UZ",
        for_="KZ",
        carrier=Carrier(id="230340000126", name="Almaty Fruit Export LLP"),
        plate="123ABC02",
        trips=1,
        route=["KZ", "UZ", "TM"],
        nbf=now - timedelta(minutes=30),
        iat=now - timedelta(minutes=30),
        exp=now - timedelta(minutes=1),
    )
    uz_key = load_private_key(corridor.local.spec("UZ").key_file)
    permit_file = tmp_path / "expired.jws"
    permit_file.write_text(sign_permit(expired_claims, key=uz_key))
    code, verdict = verify(cache, str(permit_file))
    assert (code, verdict["result"]) == (1, "expired"), verdict

    code, verdict = verify(cache, altered(valid["token"], plate="999ZZZ02"))
    assert (code, verdict["result"], verdict["permit"]) == (1, "bad-signature", None), verdict

    stranger = write_private_key(tmp_path / "stranger.pem")
    forged = sign_permit(expired_claims.model_copy(update={"exp": now + timedelta(days=3)}), key=stranger)
    code, verdict = verify(cache, forged)
    assert (code, verdict["result"]) == (1, "unknown-issuer"), verdict

    missing = cli("permits", "verify", valid["token"], "--cache", str(tmp_path / "empty"))
    assert missing.returncode == 2 and "transit-window permits sync" in missing.stderr

    # -- the same permit at two posts ---------------------------------------------------------------------------
    code, verdict = verify(cache, valid["token"], "--office", "KZZHZ001")
    assert (code, verdict["alerts"]) == (0, [])
    code, verdict = verify(cache, valid["token"], "--office", "UZGIS001")  # the other side of the same crossing
    assert (code, verdict["alerts"]) == (0, [])
    far = cli("permits", "verify", valid["token"], "--cache", str(cache), "--office", "UZALT001")
    assert far.returncode == 1, far.stdout + far.stderr
    assert "ALERT" in far.stdout and "UZGIS001" in far.stdout and "KZZHZ001" in far.stdout
    sightings = [json.loads(line) for line in (cache / "sightings.jsonl").read_text().splitlines()]
    assert [(entry["permit"], entry["office"]) for entry in sightings] == [
        (valid["id"], "KZZHZ001"),
        (valid["id"], "UZGIS001"),
        (valid["id"], "UZALT001"),
    ]
