"""Declarations accepted per second by one node on PostgreSQL, against a floor measured in the same run.

    .venv/bin/python bench/declarations.py [--seconds 20] [--clients 32] [--no-idempotency-key] [--httpx]

One real node process (`python -m transit_window serve`, KZ, its own fresh PostgreSQL database) and, in this
process, `--clients` concurrent keep-alive HTTP/1.1 clients that post as fast as answers come back. They are the
lean client of `bench/_support.py` (≈ 0.1 ms of CPU per request); `--httpx` uses httpx.AsyncClient instead, which
costs 2 to 7 ms of CPU per request here and so takes most of a core away from the server it measures.

1. floor: `POST /v1/_floor` on the same server (mounted by `TW_BENCH_FLOOR_ENDPOINT=true`): the same JSON body
   parsed into a minimal pydantic model and stored as one row (JSONB) with one INSERT through the same session
   dependency and unit of work. No authentication, no validation, no MRN: what one stored request costs here.
2. declarations: `POST /v1/declarations` as a customs system would send it (KZ → UZ → TM, apples; seals,
   containers, trailer, value and `Idempotency-Key` differ per request), counting 201 answers.

Each phase runs `--seconds` after a short unreported warm-up. Printed: accepted/s, p50/p99 latency, any answer that
was not a 201, the ratio to the floor, and CPU seconds per request of the node, of PostgreSQL's backends and of the
load generator (the machine's two cores are shared by all three, and by whatever else runs on it: the load
average and the other processes' share are printed too). Goal (issue 3): ≥ 500 declarations/s, ≥ 40 % of the
floor, p99 < 250 ms on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from stdnum import iso6346

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import (
    KeepAliveClient,
    cpu_seconds,
    database_sessions,
    drop_database,
    free_port_base,
    fresh_database,
    machine_busy_seconds,
    percentile,
    postgres_backends,
    process_tree_cpu_seconds,
)
from transit_window import clock
from transit_window.api import floor
from transit_window.corridor.local import LocalCorridor
from transit_window.corridor.topology import plan
from transit_window.db.engine import create_engine

DATABASE = "tw_bench_declarations"
GRN = "26KZ0000000001234"
WARM_UP_SECONDS = 3.0


def declaration(serial: int, *, limit_date: str) -> dict[str, Any]:
    """Fresh apples from Almaty to Ashgabat through Uzbekistan; what differs per truck differs per request."""
    container = f"CSQU{serial % 1_000_000:06d}"
    return {
        "declarant": {"id": "230340000126", "name": "Almaty Fruit Export LLP", "country": "KZ"},
        "consignor": {"id": "230340000126", "name": "Almaty Fruit Export LLP", "country": "KZ"},
        "consignee": {"id": "TMASB44107", "name": "Ashgabat Bazaar Trading", "country": "TM"},
        "carrier": {"id": "230340000126", "name": "Almaty Fruit Export LLP", "country": "KZ"},
        "vehicle": {
            "plate": f"{100 + serial % 900} abc-02",
            "country": "KZ",
            "trailer_plate": f"{serial % 90 + 10}TRL02",
        },
        "containers": [container + iso6346.calc_check_digit(container)],
        "seals": [f"KZ-SEAL-{serial:07d}", f"KZ-SEAL-{serial:07d}B"],
        "goods": [
            {
                "hs_code": "080810",
                "description": "Fresh apples, Aport variety, in cartons",
                "packages": 1400 + serial % 100,
                "package_type": "CT",
                "gross_mass_kg": "19600.000",
                "net_mass_kg": "18200.000",
                "value": f"{23000 + serial % 1000}.{serial % 100:02d}",
                "currency": "USD",
            }
        ],
        "itinerary": ["KZALA001", "KZZHZ001", "UZGIS001", "UZALT001", "TMFAR001", "TMASB001"],
        "guarantee": {"grn": GRN, "amount": "5000.00", "currency": "USD"},
        "documents": [{"type": "phytosanitary", "number": f"KZ-PHY-2026-{serial:06d}", "country": "KZ"}],
        "limit_date": limit_date,
    }


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    samples: dict[int, str] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return self.statuses[201]

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def p(self, fraction: float) -> float:
        return percentile(self.latencies, fraction) * 1000


@dataclass
class Load:
    """What every phase sends: `clients` concurrent clients posting `body(serial)` with `headers`."""

    base: str
    headers: dict[str, str]
    clients: int
    body: Callable[[int], dict[str, Any]]
    idempotency: bool
    use_httpx: bool
    serial: int = 0

    def request(self) -> tuple[bytes, dict[str, str]]:
        self.serial += 1
        headers = {**self.headers, "Content-Type": "application/json"}
        if self.idempotency:
            headers["Idempotency-Key"] = f"bench-{self.serial}"
        return orjson.dumps(self.body(self.serial)), headers


class CpuMeter:
    """CPU seconds spent during a phase by the node, PostgreSQL's backends for its database, this process and
    everything else on the machine."""

    def __init__(self, node_pid: int) -> None:
        self.node_pid = node_pid
        self.before: dict[str, Any] = {}

    def _sample(self) -> dict[str, Any]:
        busy, total = machine_busy_seconds()
        times = os.times()
        return {
            "node": process_tree_cpu_seconds(self.node_pid),
            "postgres": {pid: cpu_seconds(pid) for pid in postgres_backends(DATABASE)},
            "bench": times.user + times.system,
            "busy": busy,
            "total": total,
            "sessions": database_sessions(DATABASE),
        }

    def start(self) -> None:
        self.before = self._sample()

    def stop(self) -> dict[str, float]:
        after, before = self._sample(), self.before
        postgres = sum(seconds - before["postgres"].get(pid, 0.0) for pid, seconds in after["postgres"].items())
        spent = {
            "node": after["node"] - before["node"],
            "postgres": postgres,
            "bench": after["bench"] - before["bench"],
            "machine": after["busy"] - before["busy"],
            "capacity": after["total"] - before["total"],
            "connections": after["sessions"] - before["sessions"],
        }
        spent["others"] = max(0.0, spent["machine"] - spent["node"] - spent["postgres"] - spent["bench"])
        return spent


async def run_phase(phase: Phase, load: Load, *, path: str, seconds: float) -> None:
    async def record(started: float, status: int, text: str) -> None:
        phase.statuses[status] += 1
        if status == 201:
            phase.latencies.append(time.perf_counter() - started)
        else:
            phase.samples.setdefault(status, text[:300])

    async def lean_client() -> None:
        client = KeepAliveClient(load.base)
        try:
            while time.perf_counter() < deadline:
                content, headers = load.request()
                started = time.perf_counter()
                status, answer = await client.post(path, content, headers)
                await record(started, status, answer.decode(errors="replace"))
        finally:
            await client.close()

    async def httpx_client(http: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            content, headers = load.request()
            started = time.perf_counter()
            response = await http.post(f"{load.base}{path}", content=content, headers=headers)
            await record(started, response.status_code, response.text)

    started = time.perf_counter()
    deadline = started + seconds
    if load.use_httpx:
        limits = httpx.Limits(max_connections=load.clients, max_keepalive_connections=load.clients)
        async with httpx.AsyncClient(limits=limits, timeout=60.0) as http:
            await asyncio.gather(*(httpx_client(http) for _ in range(load.clients)))
    else:
        await asyncio.gather(*(lean_client() for _ in range(load.clients)))
    phase.seconds = time.perf_counter() - started


def measure(name: str, load: Load, *, path: str, seconds: float, meter: CpuMeter) -> Phase:
    asyncio.run(run_phase(Phase(name), load, path=path, seconds=WARM_UP_SECONDS))
    phase = Phase(name)
    meter.start()
    asyncio.run(run_phase(phase, load, path=path, seconds=seconds))
    phase.cpu = meter.stop()
    return phase


def report(phase: Phase) -> None:
    done = sum(phase.statuses.values())
    print(
        f"{phase.name}: {phase.rate:,.0f}/s accepted ({phase.accepted:,} in {phase.seconds:.1f} s), "
        f"p50 {phase.p(0.5):.0f} ms, p99 {phase.p(0.99):.0f} ms, max {phase.p(1.0):.0f} ms"
    )
    for status, count in sorted(phase.statuses.items()):
        if status != 201:
            print(f"  {count:,} answered {status}: {phase.samples.get(status, '')}")
    cpu = phase.cpu
    per_request = {key: cpu[key] / done * 1000 for key in ("node", "postgres", "bench")} if done else {}
    print(
        "  CPU per request: "
        + ", ".join(f"{key} {value:.2f} ms" for key, value in per_request.items())
        + f"; machine busy {cpu['machine'] / phase.seconds:.2f} of {cpu['capacity'] / phase.seconds:.0f} cores "
        f"(node {cpu['node'] / phase.seconds:.2f}, postgres {cpu['postgres'] / phase.seconds:.2f}, "
        f"load generator {cpu['bench'] / phase.seconds:.2f}, others {cpu['others'] / phase.seconds:.2f})"
    )
    if done and cpu["node"]:
        print(f"  at this CPU cost one node process would answer ≈ {done / cpu['node']:,.0f}/s with a core to itself")
    if cpu["connections"]:
        print(
            f"  the node opened {cpu['connections']:.0f} database connections during the phase (a pool that closes "
            "and reopens connections costs CPU on both sides; backends that exited are missing from postgres above)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured duration of each phase")
    parser.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients")
    parser.add_argument("--no-idempotency-key", action="store_true", help="post declarations without the header")
    parser.add_argument("--httpx", action="store_true", help="load with httpx.AsyncClient instead of the lean client")
    parser.add_argument("--workers", type=int, default=2, help="node processes (TW_WORKERS), one per core")
    args = parser.parse_args()

    load_before = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load_before}"
    )
    url = fresh_database(DATABASE)

    async def create_floor_table() -> None:
        engine = create_engine(url, pool_size=1)
        try:
            await floor.create_table(engine)
        finally:
            await engine.dispose()

    asyncio.run(create_floor_table())
    folder = Path(tempfile.mkdtemp(prefix="tw-bench-declarations-"))
    corridor = LocalCorridor(
        specs=plan(["KZ"], base_port=free_port_base(1), folder=folder, database_url_template=url),
        folder=folder,
        threshold=1,
        extra_env={"TW_LOG_LEVEL": "WARNING", "TW_BENCH_FLOOR_ENDPOINT": "true", "TW_WORKERS": str(args.workers)},
    )
    try:
        corridor.prepare()
        corridor.start()
        base = corridor.spec("KZ").url
        headers = {"Authorization": f"Bearer {corridor.token('KZ', 'customs')}"}
        registered = httpx.post(
            f"{base}/v1/guarantees",
            json={"grn": GRN, "holder_id": "230340000126", "reference_amount": "1000000.00", "currency": "USD"},
            headers=headers,
        )
        registered.raise_for_status()
        limit_date = (clock.utcnow().date() + timedelta(days=10)).isoformat()

        def body(serial: int) -> dict[str, Any]:
            return declaration(serial, limit_date=limit_date)

        load = Load(
            base=base,
            headers=headers,
            clients=args.clients,
            body=body,
            idempotency=not args.no_idempotency_key,
            use_httpx=args.httpx,
        )
        print(
            f"one KZ node on PostgreSQL, {args.clients} concurrent clients ({'httpx' if args.httpx else 'lean'}), "
            f"{args.seconds:.0f} s per phase after {WARM_UP_SECONDS:.0f} s of warm-up; request body "
            f"≈ {len(orjson.dumps(body(1))):,} bytes; Idempotency-Key {'on' if load.idempotency else 'off'}"
        )
        process = corridor.process("KZ").process
        assert process is not None
        meter = CpuMeter(process.pid)
        floor_phase = measure(
            "floor (POST /v1/_floor, one row)", load, path="/v1/_floor", seconds=args.seconds, meter=meter
        )
        report(floor_phase)
        declared = measure(
            "declarations (POST /v1/declarations)", load, path="/v1/declarations", seconds=args.seconds, meter=meter
        )
        report(declared)
        share = declared.rate / floor_phase.rate if floor_phase.rate else 0.0
        load_now = ", ".join(f"{value:.2f}" for value in os.getloadavg())
        print(
            f"summary: {declared.rate:,.0f} declarations/s (goal ≥ 500), {share:.0%} of the floor's "
            f"{floor_phase.rate:,.0f}/s (goal ≥ 40%), p99 {declared.p(0.99):.0f} ms (goal < 250 ms); "
            f"load average now {load_now}"
        )
        # On a shared machine the two phases may get different shares of the cores; the node's CPU per request
        # does not depend on that share, so it is the steadier ratio.
        floor_cost = floor_phase.cpu["node"] / max(1, sum(floor_phase.statuses.values()))
        declaration_cost = declared.cpu["node"] / max(1, sum(declared.statuses.values()))
        if declaration_cost:
            print(
                f"         by the node's CPU per request a declaration costs {declaration_cost / floor_cost:.1f} times "
                f"the floor's row: {floor_cost / declaration_cost:.0%} of the floor"
            )
    finally:
        corridor.stop()
        drop_database(DATABASE)


if __name__ == "__main__":
    main()
