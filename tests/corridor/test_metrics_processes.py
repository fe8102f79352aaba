"""A node served by several API processes (TW_WORKERS=2) answers /metrics for the node, whichever process takes
the scrape: every process's samples, merged (prometheus_client's multiprocess mode, metrics.py)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.corridor.conftest import StartCorridor
from tests.deploy.test_observability import metric


def test_two_api_processes_count_every_request_in_one_metrics_answer(
    start_corridor: StartCorridor, tmp_path: Path
) -> None:
    samples = tmp_path / "metrics-samples"
    samples.mkdir()
    corridor = start_corridor(
        ["KZ", "UZ"],
        node_env={"KZ": {"TW_WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": str(samples)}},
        run=["KZ"],
    )
    url = corridor.local.spec("KZ").url
    headers = {"Authorization": f"Bearer {corridor.local.token('KZ', 'customs')}"}
    for _ in range(60):  # a connection each: the two processes take turns at accepting them
        with httpx.Client(timeout=10) as client:
            assert client.get(f"{url}/v1/declarations", headers=headers).status_code == 200
    writers = {path.stem.rsplit("_", 1)[-1] for path in samples.glob("counter_*.db")}
    assert len(writers) == 2, f"both processes should have served requests: {sorted(writers)}"
    for _ in range(6):  # whichever process answers, it counts all 60
        with httpx.Client(timeout=10) as client:
            text = client.get(f"{url}/metrics").text
        assert metric(text, "tw_http_requests_total", route="/v1/declarations", status="200") == 60
