"""A revoked client is refused at once by every process of a node, though each remembers authenticated clients
(clients/cache.py): on PostgreSQL the revocation is a NOTIFY at commit that every serving process hears. The cache
here lasts ten minutes, so only the notification can make the refusal prompt."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.corridor.conftest import StartCorridor


def test_a_client_revoked_by_the_cli_is_refused_at_once_by_both_api_processes(start_corridor: StartCorridor) -> None:
    corridor = start_corridor(["KZ", "UZ"], extra_env={"TW_AUTH_CACHE_SECONDS": "600"}, run=["KZ"])
    second = corridor.add_api("KZ", "api-2")
    second.wait_ready(timeout=60)
    urls = [corridor.local.spec("KZ").url, second.spec.url]
    token = corridor.local.token("KZ", "customs")
    headers = {"Authorization": f"Bearer {token}"}
    for url in urls:  # each process now remembers the client
        for _ in range(2):
            assert corridor.http.get(f"{url}/v1/declarations", headers=headers).status_code == 200

    client_id = corridor.local.client_id("KZ", "customs")
    revoked = subprocess.run(
        [sys.executable, "-m", "transit_window", "clients", "revoke", client_id],
        env=corridor.process("KZ").env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr

    deadline = time.monotonic() + 10
    answers = {}
    while time.monotonic() < deadline:
        answers = {url: corridor.http.get(f"{url}/v1/declarations", headers=headers).status_code for url in urls}
        if set(answers.values()) == {401}:
            break
        time.sleep(0.1)
    assert set(answers.values()) == {401}, answers
    other = {"Authorization": f"Bearer {corridor.local.token('KZ', 'forwarder')}"}
    assert all(corridor.http.get(f"{url}/v1/consignments", headers=other).status_code == 200 for url in urls)
