"""`transit-window serve` as an operator runs it (a real uvicorn process on 127.0.0.1): a caller on the same host
cannot choose its address with `X-Forwarded-For` unless the operator lists it in TW_TRUSTED_PROXIES (issue 13.3).
Uvicorn alone would believe the header from 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from transit_window.corridor.local import LocalCorridor
from transit_window.corridor.topology import NodeSpec


def kz_alone(folder: Path, port: int, **extra_env: str) -> LocalCorridor:
    spec = NodeSpec(
        id="KZ",
        port=port,
        url=f"http://127.0.0.1:{port}",
        folder=folder / "KZ",
        database_url=f"sqlite+aiosqlite:///{folder / 'KZ' / 'node.db'}",
    )
    corridor = LocalCorridor(specs=[spec], folder=folder, extra_env={"TW_BAD_TOKEN_LIMIT": "3", **extra_env})
    corridor.prepare()
    return corridor


def status(url: str, token: str, forwarded_for: str) -> int:
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": forwarded_for}
    return httpx.get(f"{url}/v1/admin/status", headers=headers, timeout=10).status_code


def test_serve_believes_forwarded_for_only_from_a_listed_proxy(
    tmp_path: Path, ports: Callable[[int], list[int]]
) -> None:
    folder = (tmp_path / "corridor").resolve()
    [port] = ports(1)
    url = f"http://127.0.0.1:{port}"

    plain = kz_alone(folder, port)
    try:
        plain.start()
        assert [status(url, f"tw_guess{n}", f"10.7.0.{n}") for n in range(3)] == [401] * 3
        assert status(url, "tw_guess-next", "10.7.0.99") == 429, "a forged X-Forwarded-For dodged the throttle"
        assert status(url, plain.token("KZ"), "10.7.0.99") == 200, "a valid token is never throttled"
    finally:
        plain.stop()

    proxied = kz_alone(folder, port, TW_TRUSTED_PROXIES="127.0.0.1")
    try:
        proxied.start()
        assert [status(url, f"tw_guess{n}", "10.9.9.9") for n in range(3)] == [401] * 3
        assert status(url, "tw_guess-next", "10.9.9.9") == 429
        assert status(url, "tw_guess-other", "10.9.9.8") == 401, "the proxy's other clients are not throttled"
    finally:
        proxied.stop()
