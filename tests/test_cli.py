"""The operator's command line, run as the operator runs it: `python -m transit_window ...` in its own process.

Keys, the trust-list ceremony (genesis, admission of a member, rotation, revocation), API clients, migrations and
the outbox, each against real files and a real SQLite database in a scratch folder.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import httpx
from standardwebhooks.webhooks import Webhook

from tests.support import keys as support_keys
from transit_window.clients.service import hash_token
from transit_window.protocol.keys import load_private_key, write_private_key
from transit_window.protocol.trust import TrustList, TrustListBody
from transit_window.webhooks.signing import new_secret


def environment(extra: dict[str, str] | None) -> dict[str, str]:
    """No TW_* settings inherited from the test run; wide enough that rich does not wrap lines."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("TW_")}
    return {**clean, "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb", **(extra or {})}


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `transit-window ARGS` in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "transit_window", *args],
        cwd=cwd,
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def cli_together(
    *commands: tuple[str, ...], cwd: Path, env: dict[str, str] | None = None
) -> list[subprocess.CompletedProcess[str]]:
    """Independent commands started at once, each in its own process (saves wall time, not CPU)."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "transit_window", *args],
            cwd=cwd,
            env=environment(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    results = []
    for args, process in zip(commands, processes, strict=True):
        stdout, stderr = process.communicate(timeout=60)
        results.append(subprocess.CompletedProcess(["transit-window", *args], process.returncode, stdout, stderr))
    return results


def output(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join((result.stdout + result.stderr).split())  # rich boxes wrap errors; compare words only


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stdout}{result.stderr}"
    return output(result)


def refused(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert result.returncode == code, f"expected exit {code}, got {result.returncode}: {result.stdout}{result.stderr}"
    return output(result)


def read_trust(path: Path) -> TrustListBody:
    return TrustList.from_json(path.read_bytes()).body


def test_keys_generate_writes_a_private_pem_prints_its_kid_and_never_overwrites_silently(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "kz.pem"

    said = ok(cli("keys", "generate", "--out", str(key_file), cwd=tmp_path))
    first = key_file.read_bytes()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.startswith(b"-----BEGIN PRIVATE KEY-----")
    kid = load_private_key(key_file).kid
    assert f"kid {kid}" in said

    again = refused(cli("keys", "generate", "--out", str(key_file), cwd=tmp_path))
    assert "already exists" in again and "--force" in again
    assert key_file.read_bytes() == first, "a refused generate must leave the existing key untouched"

    replaced = ok(cli("keys", "generate", "--out", str(key_file), "--force", cwd=tmp_path))
    new_kid = load_private_key(key_file).kid
    assert new_kid != kid and f"kid {new_kid}" in replaced
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_key_file_readable_by_others_is_refused_with_the_chmod_that_fixes_it(tmp_path: Path) -> None:
    key = write_private_key(tmp_path / "kz.pem")
    genesis = tmp_path / "genesis.json"
    member = support_keys.TestMember(node="KZ", key_file=tmp_path / "kz.pem", key=key, endpoint="https://kz.example")
    genesis.write_bytes(support_keys.signed(support_keys.trust_body([member]), []).to_json())
    (tmp_path / "kz.pem").chmod(0o644)

    said = refused(cli("trust", "sign", str(genesis), "--key", "kz.pem", cwd=tmp_path), code=2)

    assert "accessible by group or others" in said and "chmod 600 kz.pem" in said
    assert TrustList.from_json(genesis.read_bytes()).signatures == [], "nothing may be signed with an exposed key"


def test_trust_ceremony_genesis_then_azerbaijan_admitted_then_a_rotation_and_a_revocation(tmp_path: Path) -> None:
    keys = {node: write_private_key(tmp_path / f"{node.lower()}.pem") for node in ("KZ", "UZ", "TM", "AZ", "UZ2")}

    def trust(*args: str) -> subprocess.CompletedProcess[str]:
        return cli("trust", *args, cwd=tmp_path)

    # Genesis: three members, threshold 2.
    said = ok(
        trust(
            "init", "--out", "v1.json", "--threshold", "2",
            "--member", "KZ=Kazakhstan,https://kz.example,kz.pem",
            "--member", "UZ=Uzbekistan,https://uz.example,uz.pem",
            "--member", "TM=Turkmenistan,https://tm.example,tm.pem",
        )
    )  # fmt: skip
    v1 = TrustList.from_json((tmp_path / "v1.json").read_bytes())
    assert f"sha256 {v1.sha256}" in said
    assert (v1.version, v1.body.threshold, v1.nodes()) == (1, 2, ["KZ", "UZ", "TM"])
    assert [member.keys[0].kid for member in v1.body.members] == [keys[node].kid for node in ("KZ", "UZ", "TM")]

    ok(trust("sign", "v1.json", "--key", "kz.pem"))
    below = refused(trust("verify", "v1.json"))
    assert "signed by 1 member(s)" in below and "threshold is 2" in below

    ok(trust("sign", "v1.json", "--key", "uz.pem"))
    # Read-only on v1.json, so run together: verify, show, and draft version 2 admitting Azerbaijan.
    admit_az = (
        "trust", "admit", "--current", "v1.json", "--out", "v2.json", "--member", "AZ=Azerbaijan,https://az.example,az.pem"
    )  # fmt: skip
    verified, shown, admitted = cli_together(
        ("trust", "verify", "v1.json", "--genesis-sha256", v1.sha256),
        ("trust", "show", "v1.json"),
        admit_az,
        cwd=tmp_path,
    )
    accepted = ok(verified)
    assert "version 1" in accepted and "signed by KZ, UZ" in accepted

    assert all(word in ok(shown) for word in ("version 1", "threshold 2", v1.sha256))
    table = [line.strip().strip("│").split("│") for line in shown.stdout.splitlines()]
    signed_column = {cells[0].strip(): cells[-1].strip() for cells in table if re.fullmatch(r" [A-Z]{2} +", cells[0])}
    assert signed_column == {"KZ": "yes", "UZ": "yes", "TM": ""}

    # Version 2 admits Azerbaijan: needs 2 signatures of version 1's members and 2 of version 2's.
    said = ok(admitted)
    assert "admitting AZ" in said
    v2 = read_trust(tmp_path / "v2.json")
    assert (v2.version, [member.node for member in v2.members]) == (2, ["KZ", "UZ", "TM", "AZ"])
    ok(trust("sign", "v2.json", "--key", "kz.pem"))
    ok(trust("sign", "v2.json", "--key", "az.pem"))
    short = refused(trust("verify", "v2.json", "--previous", "v1.json"))
    assert "of the current version 1" in short and "(KZ)" in short, "AZ's own signature does not count for v1"
    ok(trust("sign", "v2.json", "--key", "uz.pem"))
    successor = ok(trust("verify", "v2.json", "--previous", "v1.json"))
    assert "version 2" in successor and "signed by AZ, KZ, UZ" in successor

    # From version 2, two alternative version 3s: UZ rotates its key (the old one retires after the overlap), or
    # TM's key is revoked from now on.
    rotated, revoked = cli_together(
        ("trust", "rotate", "--current", "v2.json", "--out", "v3-rotate.json", "--node", "UZ", "--new-key", "uz2.pem"),
        ("trust", "revoke", "--current", "v2.json", "--out", "v3-revoke.json", "--kid", keys["TM"].kid),
        cwd=tmp_path,
    )
    assert f"UZ rotates to {keys['UZ2'].kid}" in ok(rotated)
    v3 = read_trust(tmp_path / "v3-rotate.json")
    uz = next(member for member in v3.members if member.node == "UZ")
    assert v3.version == 3
    assert [key.kid for key in uz.keys] == [keys["UZ"].kid, keys["UZ2"].kid]
    assert uz.keys[0].not_after is not None and uz.keys[0].not_after > v3.issued_at
    assert uz.keys[1].not_after is None and uz.keys[1].revoked_at is None

    assert f"revoking {keys['TM'].kid}" in ok(revoked)
    v3 = read_trust(tmp_path / "v3-revoke.json")
    tm = next(member for member in v3.members if member.node == "TM")
    assert v3.version == 3 and tm.keys[0].revoked_at is not None
    assert all(key.revoked_at is None for member in v3.members if member.node != "TM" for key in member.keys)


def test_operator_migrates_an_empty_sqlite_node_and_manages_its_clients(tmp_path: Path) -> None:
    database = tmp_path / "node.db"
    env = {"TW_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return cli(*args, cwd=tmp_path, env=env)

    assert "database at head" in ok(run("db", "upgrade"))
    assert "models and migrations agree" in ok(run("db", "check"))

    created = run("clients", "add", "--name", "ASYCUDA Almaty", "--role", "customs")
    said = ok(created)
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("tw_") and len(token) > 40
    assert said.count(token) == 1, "the token is shown once"
    found = re.search(r"client (\S+) \(customs\) created", said)
    assert found, said
    client_id = found.group(1)

    with closing(sqlite3.connect(database)) as connection:
        stored = connection.execute(
            "SELECT token_hash, revoked_at FROM api_clients WHERE id = ?", (client_id,)
        ).fetchone()
    assert stored == (hash_token(token), None), "only the token's hash is stored"

    assert f"revoked {client_id} (ASYCUDA Almaty)" in ok(run("clients", "revoke", client_id))
    with closing(sqlite3.connect(database)) as connection:
        (revoked_at,) = connection.execute("SELECT revoked_at FROM api_clients WHERE id = ?", (client_id,)).fetchone()
    assert revoked_at is not None

    listed, unknown, outbox, retried, unnamed = cli_together(
        ("clients", "list"), ("clients", "revoke", "no-such-client"), ("outbox", "list", "--state", "pending"),
        ("outbox", "retry", "--dead"), ("outbox", "retry"),
        cwd=tmp_path, env=env,
    )  # fmt: skip
    listing = ok(listed)
    assert client_id in listing and "ASYCUDA Almaty" in listing and "customs" in listing
    assert token not in listing and token[3:15] not in listing, "the list never shows a token"
    assert str(revoked_at)[:10] in listing, "the list shows when the client was revoked"

    said = refused(unknown)
    assert "no client no-such-client" in said and "Traceback" not in said

    assert all(column in ok(outbox) for column in ("peer", "seq", "state", "receipt"))
    assert "0 message(s) queued again" in ok(retried)  # protocol.outbox.retry, as the admin API (nothing is dead)
    assert "give --id or --dead" in refused(unnamed, code=2)  # a usage error


def test_clients_add_roles_makes_one_client_per_role_and_prints_them_once_as_json(tmp_path: Path) -> None:
    """What deploy/bootstrap.sh runs for the compose corridor's demo clients: one client per role asked for, named
    after it, the forwarder acting for the party given; each token printed once and stored only as its hash."""
    database = tmp_path / "node.db"
    env = {"TW_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    assert "database at head" in ok(cli("db", "upgrade", cwd=tmp_path, env=env))
    made = cli(
        "clients", "add-roles", "--name", "demo {role} (KZ)", "--role", "customs", "--role", "forwarder",
        "--forwarder-party", "230340000126", cwd=tmp_path, env=env,
    )  # fmt: skip
    clients = json.loads(ok(made))
    assert sorted(clients) == ["customs", "forwarder"]
    with closing(sqlite3.connect(database)) as connection:
        rows = connection.execute("SELECT id, name, role, party_id, token_hash FROM api_clients").fetchall()
    assert sorted(rows) == sorted(
        (client["id"], f"demo {role} (KZ)", role, "230340000126" if role == "forwarder" else None,
         hash_token(client["token"]))
        for role, client in clients.items()
    )  # fmt: skip
    assert "role must be one of" in refused(cli("clients", "add-roles", "--role", "pilot", cwd=tmp_path, env=env), 2)


def test_demo_against_a_file_that_is_no_corridor_file_says_so(tmp_path: Path) -> None:
    """`demo --against FILE` starts nothing: a missing or wrong file is named, with exit code 2."""
    (tmp_path / "empty.json").write_text('{"nodes": []}')
    for name, said in (("missing.json", "not a corridor file"), ("empty.json", "lists no node")):
        result = cli("demo", "--against", str(tmp_path / name), cwd=tmp_path)
        assert said in refused(result, 2) and "Traceback" not in result.stdout + result.stderr


def test_an_operator_creates_an_e_seal_gateway_with_its_devices(tmp_path: Path) -> None:
    """`clients add --role device --device ID[=SEAL]` registers the gateway's e-seals with the client (issue 13: a
    device is heard only from its client); a device flag on another role is refused before anything is made."""
    database = tmp_path / "node.db"
    env = {"TW_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    assert "database at head" in ok(cli("db", "upgrade", cwd=tmp_path, env=env))
    created = cli(
        "clients", "add", "--name", "KZ e-seal gateway", "--role", "device",
        "--device", "ESEAL-KZ-0042=KZ-SEAL-000731", "--device", "KZ-SEAL-000732",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    said = ok(created)
    client_id = re.search(r"client (\S+) \(device\) created", said)
    assert client_id, said
    assert created.stdout.strip().splitlines()[-1].startswith("tw_")
    with closing(sqlite3.connect(database)) as connection:
        rows = connection.execute("SELECT device_id, client_id, seal_id FROM devices ORDER BY device_id").fetchall()
    assert rows == [
        ("ESEAL-KZ-0042", client_id.group(1), "KZ-SEAL-000731"),
        ("KZ-SEAL-000732", client_id.group(1), None),
    ]
    wrong = cli(
        "clients", "add", "--name", "x", "--role", "customs", "--device", "ESEAL-1", cwd=tmp_path, env=env
    )  # fmt: skip
    assert "DEVICE_ID[=SEAL_NUMBER]" in refused(wrong, 2)


def test_webhooks_listen_checks_each_signature_and_prints_each_event(tmp_path: Path) -> None:
    """A forwarder tries its subscription: `webhooks listen` with the subscription's secret (here from WEBHOOK_SECRET,
    kept off the command line) answers a delivery signed with it 204 and prints it as one line, anything else 401;
    without a secret it makes one and shows it once."""
    secret = new_secret()
    listening = subprocess.Popen(
        [sys.executable, "-m", "transit_window", "webhooks", "listen", "--port", "0"],
        cwd=tmp_path,
        env=environment({"WEBHOOK_SECRET": secret}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    made = subprocess.Popen(
        [sys.executable, "-m", "transit_window", "webhooks", "listen", "--port", "0"],
        cwd=tmp_path,
        env=environment(None),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert listening.stdout is not None and made.stdout is not None
        first = listening.stdout.readline()
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+/hooks)", first)
        assert found, first
        body = (
            b'{"type": "tracking.entry", "data": {"mrn": "26KZALA000000001J5", "bizLocation": {"office": "UZGIS001"}}}'
        )
        now = datetime.now(UTC)
        headers = {
            "webhook-id": "msg_2",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign("msg_2", now, body),
        }
        assert httpx.post(found.group(1), content=body, headers=headers).status_code == 204
        forged = {**headers, "webhook-signature": Webhook(new_secret()).sign("msg_2", now, body)}
        assert httpx.post(found.group(1), content=body, headers=forged).status_code == 401

        assert "listening on" in made.stdout.readline()
        shown = re.search(r"subscribe with this secret \(shown once\): (whsec_\S+)", made.stdout.readline())
        assert shown and len(Webhook(shown.group(1))._whsecret) == 32
    finally:
        for process in (listening, made):
            process.send_signal(signal.SIGTERM)
    rest = listening.communicate(timeout=30)[0]
    made.communicate(timeout=30)
    assert listening.returncode == 0, rest
    lines = rest.splitlines()
    assert lines[0].startswith("tracking.entry 26KZALA000000001J5 at UZGIS001 ") and "msg_2" in lines[0]
    assert lines[1].startswith("refused /hooks: ") and "401" in lines[1]
    assert lines[-1] == "1 verified, 1 refused"
    assert secret not in first + rest
