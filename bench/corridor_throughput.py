"""Signed messages delivered per second between two real nodes on PostgreSQL, against the crypto floor.

    python bench/corridor_throughput.py [--messages 20000] [--rate 1000] [--seconds 10]

Measures, in one run:
1. the crypto floor: messages per second one core can carry through two signs and two verifies (message and
   receipt), both with the raw `cryptography` Ed25519 calls and through the JOSE layer the node uses;
2. burst: N pings queued on KZ for UZ, drained by KZ's worker with batches; delivered/s with receipts verified;
3. steady rate: pings queued at a fixed rate for some seconds; p50/p99 end-to-end latency (sealed → receipt held).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import nacl.signing
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import describe, drop_database, free_port_base, fresh_database, percentile
from transit_window import clock
from transit_window.corridor.local import LocalCorridor
from transit_window.corridor.topology import plan
from transit_window.ids import new_id
from transit_window.protocol import jws
from transit_window.protocol.envelope import seal, sign_receipt
from transit_window.protocol.keys import generate_private_pem, signing_key_from_pem, verifying_key


def _rate(seconds: float, step: Callable[[], object]) -> float:
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        count += 1
    return count / (time.perf_counter() - started)


def crypto_floor(seconds: float = 2.0) -> dict[str, float]:
    """Messages per second on one core through two signs and two verifies (message ≈ 1 KB, receipt ≈ 300 B):
    with bare libsodium (what the node uses), bare OpenSSL, and the node's own sealing/verification path."""
    message = orjson.dumps({"id": new_id(), "type": "corridor.ping", "body": {"note": "x" * 500}, "pad": "y" * 400})
    receipt = message[:300]
    seed = os.urandom(32)
    sodium = nacl.signing.SigningKey(seed)
    sodium_verify = sodium.verify_key
    openssl = Ed25519PrivateKey.from_private_bytes(seed)
    openssl_public = openssl.public_key()

    def bare_sodium() -> None:
        sodium_verify.verify(message, sodium.sign(message).signature)
        sodium_verify.verify(receipt, sodium.sign(receipt).signature)

    def bare_openssl() -> None:
        openssl_public.verify(openssl.sign(message), message)
        openssl_public.verify(openssl.sign(receipt), receipt)

    key = signing_key_from_pem(generate_private_pem())
    verifier = verifying_key(key.public_jwk)

    def node_path() -> None:
        token = seal(
            key=key,
            message_id=new_id(),
            type="corridor.ping",
            iss="KZ",
            aud="UZ",
            iat=clock.utcnow(),
            seq=1,
            subject=None,
            trust=1,
            body={"note": "x" * 500},
        )
        jws.verify_compact(token, key=verifier)
        receipt_token = sign_receipt(
            key=key,
            message_id="x",
            digest="0" * 64,
            status="accepted",
            code=None,
            detail=None,
            iss="UZ",
            aud="KZ",
            at=clock.utcnow(),
        )
        jws.verify_compact(receipt_token, key=verifier)

    return {
        "libsodium": _rate(seconds, bare_sodium),
        "openssl": _rate(seconds, bare_openssl),
        "node path": _rate(seconds, node_path),
    }


class Bench:
    def __init__(self, corridor: LocalCorridor) -> None:
        self.corridor = corridor
        self.http = httpx.Client(timeout=60)

    def admin(self, node: str, method: str, path: str, **kwargs: object) -> dict[str, object]:
        spec = self.corridor.spec(node)
        response = self.http.request(
            method, f"{spec.url}{path}", headers={"Authorization": f"Bearer {self.corridor.token(node)}"}, **kwargs
        )
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def enqueue(self, count: int) -> None:
        while count > 0:
            chunk = min(1000, count)
            self.admin("KZ", "POST", "/v1/admin/pings", json={"to": ["UZ"], "count": chunk, "note": "x" * 500})
            count -= chunk

    def outbox(self) -> dict[str, int]:
        status = self.admin("KZ", "GET", "/v1/admin/status")
        return dict(status["outbox"].get("UZ", {}))  # type: ignore[union-attr]

    def wait_drained(self, total: int, *, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = self.outbox()
            if counts.get("delivered", 0) >= total:
                return time.monotonic()
            time.sleep(0.05)
        raise TimeoutError(f"not drained: {self.outbox()}")

    def latencies(self, after: str) -> list[float]:
        """Sealed → receipt held, for delivered rows with ids after `after` (ids are time-ordered)."""
        import asyncio

        from sqlalchemy import select

        from transit_window.db.engine import create_engine
        from transit_window.protocol.models import OutboxMessage

        async def read() -> list[float]:
            engine = create_engine(self.corridor.spec("KZ").database_url, pool_size=1)
            try:
                async with engine.connect() as connection:
                    rows = await connection.execute(
                        select(OutboxMessage.created_at, OutboxMessage.delivered_at).where(
                            OutboxMessage.id > after, OutboxMessage.state == "delivered"
                        )
                    )
                    return [(row.delivered_at - row.created_at).total_seconds() for row in rows]
            finally:
                await engine.dispose()

        return asyncio.run(read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20000, help="burst size")
    parser.add_argument("--rate", type=int, default=1000, help="steady arrival rate, messages/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="steady phase duration")
    args = parser.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    floors = crypto_floor()
    raw = floors["libsodium"]
    print(
        "crypto floor, one core, 2 signs + 2 verifies per message: "
        + ", ".join(f"{name} {rate:,.0f} msg/s" for name, rate in floors.items())
    )

    names = {"KZ": "tw_bench_kz", "UZ": "tw_bench_uz"}
    urls = {node: fresh_database(name) for node, name in names.items()}
    folder = Path(tempfile.mkdtemp(prefix="tw-bench-"))
    template = urls["KZ"].replace("tw_bench_kz", "tw_bench_{node}")
    corridor = LocalCorridor(
        specs=plan(["KZ", "UZ"], base_port=free_port_base(2), folder=folder, database_url_template=template),
        folder=folder,
        threshold=2,
        extra_env={"TW_LOG_LEVEL": "WARNING", "TW_CHECKPOINT_EVERY_ENTRIES": "100000"},
    )
    try:
        corridor.prepare()
        corridor.start()
        bench = Bench(corridor)

        bench.enqueue(200)  # warm up connections and caches
        bench.wait_drained(200, timeout=60)

        print(f"burst: {args.messages:,} pings KZ → UZ (PostgreSQL, one database per node, batches per peer)")
        started = time.monotonic()
        marker = new_id()
        bench.enqueue(args.messages)
        queued = time.monotonic()
        finished = bench.wait_drained(200 + args.messages, timeout=600)
        burst_rate = args.messages / (finished - started)
        print(
            f"  queued in {queued - started:.1f} s; all delivered with verified receipts in {finished - started:.1f} s"
        )
        print(
            f"  delivered: {burst_rate:,.0f} msg/s   ({burst_rate / raw:.0%} of the crypto floor, "
            f"{burst_rate / floors['node path']:.0%} of the node's own signing path on one core)"
        )
        print(f"  latency under burst: {describe(bench.latencies(marker))}")

        total = 200 + args.messages
        print(f"steady: {args.rate:,} msg/s for {args.seconds:.0f} s")
        marker = new_id()
        tick = 0.1
        per_tick = max(1, int(args.rate * tick))
        started = time.monotonic()
        sent = 0
        while time.monotonic() - started < args.seconds:
            bench.enqueue(per_tick)
            sent += per_tick
            next_tick = started + (sent / per_tick) * tick
            time.sleep(max(0.0, next_tick - time.monotonic()))
        offered = sent / (time.monotonic() - started)
        bench.wait_drained(total + sent, timeout=600)
        steady = bench.latencies(marker)
        print(f"  offered {offered:,.0f} msg/s; latency: {describe(steady)}")
        print(
            f"summary: delivered {burst_rate:,.0f} msg/s (goal ≥ 1,000); {burst_rate / raw:.0%} of crypto floor "
            f"(goal ≥ 50%); p99 at {offered:,.0f} msg/s = {percentile(steady, 0.99) * 1000:.0f} ms (goal < 1,000 ms)"
        )
    finally:
        corridor.stop()
        for name in names.values():
            drop_database(name)


if __name__ == "__main__":
    main()
