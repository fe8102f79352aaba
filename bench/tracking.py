"""Tracking at scale, on PostgreSQL, against floors measured in the same run.

    python bench/tracking.py [--movements 100000] [--events 5000000] [--pings 200000] [--queries 400]

1. E-seal ping ingestion: `POST /v1/tracking/positions` in batches of 1,000 on a real node process, and as the
   floor the same rows inserted by a bare bulk insert (asyncpg executemany into the same table) in the same run.
   Goal (issue 4): ≥ 20,000 pings/s and ≥ 50 % of the floor.
2. Timeline queries: `GET /v1/consignments/{mrn}/timeline` for random MRNs over a database seeded with
   `--movements` movements and `--events` events (`transit-window tracking seed`, progress bar), then the same with
   ten times fewer rows. Goal: p95 < 25 ms, and the large database's p95 within twice the small one's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from rich.progress import Progress
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import drop_database, free_port_base, fresh_database, percentile
from transit_window.corridor.local import LocalCorridor
from transit_window.corridor.topology import plan
from transit_window.db.engine import create_engine
from transit_window.seed import seed


def seeded_node(name: str, *, movements: int, events: int) -> tuple[LocalCorridor, list[str]]:
    url = fresh_database(f"{name}_kz")
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    template = url.rsplit("/", 1)[0] + f"/{name}_{{node}}"  # plan() puts node "kz" in place of {node}
    corridor = LocalCorridor(
        specs=plan(["KZ"], base_port=free_port_base(1), folder=folder, database_url_template=template),
        folder=folder,
        threshold=1,
        extra_env={"TW_LOG_LEVEL": "WARNING"},
    )
    corridor.prepare()

    async def fill() -> list[str]:
        engine = create_engine(url, pool_size=2)
        try:
            with Progress() as progress:
                task = progress.add_task(f"seeding {movements:,} movements, {events:,} events", total=events)
                return await seed(
                    engine, movements=movements, events=events, progress=lambda n: progress.advance(task, n)
                )
        finally:
            async with engine.begin() as connection:
                await connection.execute(text("ANALYZE"))
            await engine.dispose()

    mrns = asyncio.run(fill())
    corridor.start()
    return corridor, mrns


def timeline_p95(corridor: LocalCorridor, mrns: list[str], *, queries: int) -> tuple[float, float]:
    spec = corridor.spec("KZ")
    headers = {"Authorization": f"Bearer {corridor.token('KZ', 'customs')}"}
    rng = random.Random(11)
    latencies = []
    with httpx.Client(base_url=spec.url, headers=headers, timeout=30) as http:
        for mrn in rng.sample(mrns, min(50, len(mrns))):  # warm-up
            http.get(f"/v1/consignments/{mrn}/timeline").raise_for_status()
        for _ in range(queries):
            mrn = rng.choice(mrns)
            started = time.perf_counter()
            response = http.get(f"/v1/consignments/{mrn}/timeline")
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()
    return percentile(latencies, 0.5), percentile(latencies, 0.95)


ALMATY = (43.24, 76.89)
ZHIBEK_ZHOLY = (41.38, 69.12)


def ping_batches(mrn: str, device: str, *, batches: int, size: int, start: datetime) -> list[list[dict[str, object]]]:
    """Pings along the Almaty → Zhibek Zholy line, one per 10 s, seal closed (no alert should fire)."""
    out = []
    total = batches * size
    for batch in range(batches):
        rows = []
        for index in range(batch * size, (batch + 1) * size):
            f = index / total
            rows.append(
                {
                    "device_id": device,
                    "mrn": mrn,
                    "time": (start + timedelta(seconds=10 * index)).isoformat(),
                    "lat": round(ALMATY[0] + (ZHIBEK_ZHOLY[0] - ALMATY[0]) * f, 5),
                    "lon": round(ALMATY[1] + (ZHIBEK_ZHOLY[1] - ALMATY[1]) * f, 5),
                    "speed": 62.0,
                    "seal_state": "closed",
                }
            )
        out.append(rows)
    return out


async def _post_all(url: str, token: str, work: list[list[dict[str, object]]], clients: int) -> float:
    queue: asyncio.Queue[list[dict[str, object]]] = asyncio.Queue()
    for batch in work:
        queue.put_nowait(batch)

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            while not queue.empty():
                batch = queue.get_nowait()
                response = await http.post(
                    "/v1/tracking/positions",
                    content=orjson.dumps({"pings": batch}),
                    headers={"content-type": "application/json"},
                )
                response.raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started


async def _bare_insert(database_url: str, work: list[list[dict[str, object]]]) -> float:
    """The floor: the same rows into the same table, one executemany INSERT per batch of 1,000, one transaction each."""
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    now = datetime.now(UTC)
    try:
        started = time.perf_counter()
        for batch in work:
            rows = [
                (
                    str(p["device_id"]) + "-floor",
                    p["mrn"],
                    datetime.fromisoformat(str(p["time"])),
                    None,
                    p["lat"],
                    p["lon"],
                    p["speed"],
                    p["seal_state"],
                    now,
                )
                for p in batch
            ]
            async with connection.transaction():
                await connection.executemany(
                    "INSERT INTO tracking_positions (device_id, mrn, time, seal_id, lat, lon, speed, seal_state, "
                    "received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    rows,
                )
        return time.perf_counter() - started
    finally:
        await connection.close()


def register_devices(corridor: LocalCorridor, devices: dict[str, str]) -> None:
    """Register each device (id → seal) to the node's device client, as the node's admin does."""
    spec = corridor.spec("KZ")
    headers = {"Authorization": f"Bearer {corridor.token('KZ', 'admin')}"}
    client_id = corridor.client_id("KZ", "device")
    with httpx.Client(timeout=30.0) as http:
        for device, seal in devices.items():
            response = http.put(
                f"{spec.url}/v1/devices/{device}", json={"client_id": client_id, "seal_id": seal}, headers=headers
            )
            response.raise_for_status()


def ingestion(pings: int, *, clients: int = 2) -> None:
    corridor, mrns = seeded_node("tw_bench_pings", movements=clients * 4, events=clients * 4)
    try:
        spec = corridor.spec("KZ")
        size = 1000
        per_mrn = max(1, pings // size // len(mrns))
        # one ping per 10 s per e-seal, ending an hour ago whatever the count: a ping in the future is refused (422)
        span = timedelta(seconds=10 * per_mrn * size)
        start = datetime.now(UTC) - span - timedelta(hours=1)
        work = [
            batch
            for i, mrn in enumerate(mrns)
            for batch in ping_batches(mrn, f"ESEAL-{i}", batches=per_mrn, size=size, start=start)
        ]
        total = len(work) * size
        warm = ping_batches(
            mrns[0], "WARMUP", batches=2, size=size, start=start - timedelta(seconds=10 * 2 * size + 60)
        )
        # Each e-seal registered to the device client, with the seal its movement's declaration lists (seed.py).
        devices = {f"ESEAL-{i}": f"SEAL-{mrn[-8:]}" for i, mrn in enumerate(mrns)} | {"WARMUP": f"SEAL-{mrns[0][-8:]}"}
        register_devices(corridor, devices)
        asyncio.run(_post_all(spec.url, corridor.token("KZ", "device"), warm, 1))
        elapsed = asyncio.run(_post_all(spec.url, corridor.token("KZ", "device"), work, clients))
        floor = asyncio.run(_bare_insert(spec.database_url, work))
        api_rate, floor_rate = total / elapsed, total / floor
        print(
            f"pings: {total:,} in batches of {size:,} by {clients} clients: {api_rate:,.0f} pings/s through the API; "
            f"bare bulk insert of the same rows {floor_rate:,.0f} rows/s; ratio {api_rate / floor_rate:.0%} "
            f"(goal ≥ 20,000/s and ≥ 50%)"
        )
    finally:
        corridor.stop()
        drop_database("tw_bench_pings_kz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--movements", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--pings", type=int, default=200_000)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    ingestion(args.pings)

    results = {}
    for label, factor in (("large", 1), ("small", 10)):
        name = f"tw_bench_tracking_{label}"
        corridor, mrns = seeded_node(name, movements=args.movements // factor, events=args.events // factor)
        try:
            results[label] = timeline_p95(corridor, mrns, queries=args.queries)
        finally:
            corridor.stop()
            drop_database(f"{name}_kz")
        p50, p95 = results[label]
        print(
            f"timeline, {args.movements // factor:,} movements / {args.events // factor:,} events: "
            f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"
        )
    ratio = results["large"][1] / results["small"][1]
    print(
        f"summary: timeline p95 {results['large'][1] * 1000:.1f} ms (goal < 25 ms); large/small p95 ratio "
        f"{ratio:.2f} (goal ≤ 2)"
    )


if __name__ == "__main__":
    main()
