"""Offline permit checks per second, against this machine's bare Ed25519 verify rate measured in the same run.

    .venv/bin/python bench/permits.py [--seconds 12] [--revoked 1000] [--profile]

What a border post does for every QR code it scans (`transit-window permits verify`, `permits/verify.py`): find the
key by `kid` in a trust list of 6 members, verify the Ed25519 JWS, read the claims, look the permit up in the
issuer's signed revocation list (`--revoked` entries, opened and checked as the cache opens it), compare the dates.
No database, no network: the ceiling is the signature check itself, so the floors are

- libsodium (PyNaCl `VerifyKey.verify`, what `protocol/jws.py` uses) over the same signing input and signature;
- OpenSSL (`cryptography`'s `Ed25519PublicKey.verify`), for reference.

Rates are per CPU second of this thread (the machine's two cores are shared with whatever else runs: wall time
would count the moments another process holds the core), and the phases run interleaved in short rounds so that
what is left of the noise (caches, frequency) hits every phase alike; printed are the median and best rate of each
phase over the rounds and the ratio to libsodium. Goal (issue 5): verify_permit ≥ 70 % of the bare libsodium
verify rate. `--profile` prints where verify_permit spends its time (cProfile) afterwards.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transit_window import clock
from transit_window.permits.signed import (
    Carrier,
    PermitClaims,
    RevocationList,
    RevokedEntry,
    sign_permit,
    sign_revocations,
)
from transit_window.permits.verify import open_revocation_list, verify_permit
from transit_window.protocol import jws
from transit_window.protocol.keys import SigningKey, generate_private_pem, signing_key_from_pem
from transit_window.protocol.trust import TrustKey, TrustList, TrustListBody, TrustMember

MEMBERS = ("KZ", "KG", "UZ", "TJ", "TM", "AZ")
ROUND_SECONDS = 0.2


def corridor_keys() -> dict[str, SigningKey]:
    return {node: signing_key_from_pem(generate_private_pem()) for node in MEMBERS}


def trust_list(keys: dict[str, SigningKey]) -> TrustList:
    """Six members, threshold 4, signed by all, then read back from JSON as a border post's cache reads it."""
    now = clock.utcnow()
    body = TrustListBody(
        version=1,
        issued_at=now,
        expires_at=now + timedelta(days=365),
        threshold=4,
        members=[
            TrustMember(
                node=node,
                name=node,
                endpoint=f"https://{node.lower()}.corridor.example",
                keys=[TrustKey(kid=key.kid, jwk=key.public_jwk, not_before=now - timedelta(days=1))],
            )
            for node, key in keys.items()
        ],
    )
    trust = TrustList.from_body(body)
    for key in keys.values():
        trust.sign(key)
    return TrustList.from_json(trust.to_json())


def revocation_lists(keys: dict[str, SigningKey], trust: TrustList, *, revoked: int) -> dict[str, RevocationList]:
    """UZ revoked `revoked` permits, the other members a handful each; every list signed and opened again."""
    now = clock.utcnow()
    year = now.year
    lists = {}
    for node, key in keys.items():
        count = revoked if node == "UZ" else 5
        revocations = RevocationList(
            iss=node,
            version=count,
            issued_at=now,
            next_update=now + timedelta(hours=24),
            revoked=[
                RevokedEntry(id=f"{node}-KZ-{year}-2-{100_000 + n}", revoked_at=now, reason="carrier licence suspended")
                for n in range(count)
            ],
        )
        lists[node] = open_revocation_list(sign_revocations(revocations, key=key), trust=trust)
    return lists


def permit(key: SigningKey, *, serial: int) -> str:
    now = clock.utcnow()
    claims = PermitClaims(
        id=f"UZ-KZ-{now.year}-2-{serial}",
        type="transit",
        year=now.year,
        iss="UZ",
        for_="KZ",
        carrier=Carrier(id="230340000126", name="Almaty Fruit Export LLP"),
        plate="123ABC02",
        trailer="45TRL02",
        trips=1,
        route=["KZ", "UZ", "TM", "AZ"],
        nbf=now - timedelta(hours=1),
        iat=now - timedelta(minutes=5),
        exp=now + timedelta(days=20),
    )
    return sign_permit(claims, key=key)


def rate(operation: Callable[[], object], seconds: float) -> float:
    """Calls per CPU second of `operation`, run for about `seconds` of wall time (batches of 100 calls between
    clock reads). CPU time, not wall time: while another process has the core, neither clock of ours runs."""
    done = 0
    cpu = time.thread_time()
    deadline = time.perf_counter() + seconds
    while True:
        for _ in range(100):
            operation()
        done += 100
        if time.perf_counter() >= deadline:
            return done / (time.thread_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=12.0, help="Total measuring time, all phases together.")
    parser.add_argument("--revoked", type=int, default=1000, help="Entries in the issuer's revocation list.")
    parser.add_argument("--profile", action="store_true", help="Then profile verify_permit (cProfile).")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
        f"python {platform.python_version()}"
    )

    keys = corridor_keys()
    trust = trust_list(keys)
    lists = revocation_lists(keys, trust, revoked=args.revoked)
    token = permit(keys["UZ"], serial=17)
    revoked_token = permit(keys["UZ"], serial=100_000 + args.revoked // 2)
    verdict = verify_permit(token, trust=trust, revocations=lists)
    assert verdict.result == "valid" and verdict.revocation_list_version == args.revoked, verdict
    assert verify_permit(revoked_token, trust=trust, revocations=lists).result == "revoked"
    assert verify_permit(token, trust=trust, revocations=lists, plate="123 abc 02").result == "valid"

    header_b64, payload_b64, signature_b64 = token.split(".")
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    signature = jws.b64url_decode(signature_b64)
    entry = trust.key(keys["UZ"].kid)
    assert entry is not None
    sodium = entry.verifier.sodium
    openssl = Ed25519PublicKey.from_public_bytes(sodium.encode())
    sodium.verify(signing_input, signature)
    openssl.verify(signature, signing_input)

    phases: dict[str, Callable[[], object]] = {
        "verify_permit": lambda: verify_permit(token, trust=trust, revocations=lists),
        "verify_permit, revoked": lambda: verify_permit(revoked_token, trust=trust, revocations=lists),
        "verify_permit + plate": lambda: verify_permit(token, trust=trust, revocations=lists, plate="123ABC02"),
        "libsodium verify": lambda: sodium.verify(signing_input, signature),
        "OpenSSL verify": lambda: openssl.verify(signature, signing_input),
    }
    for operation in phases.values():
        rate(operation, 0.1)  # warm-up
    rounds = max(3, round(args.seconds / (ROUND_SECONDS * len(phases))))
    rates: dict[str, list[float]] = {name: [] for name in phases}
    for _ in range(rounds):
        for name, operation in phases.items():
            rates[name].append(rate(operation, ROUND_SECONDS))

    floor = statistics.median(rates["libsodium verify"])
    floor_best = max(rates["libsodium verify"])
    print(
        f"trust list of {len(MEMBERS)} members; revocation list of {args.revoked:,} entries; "
        f"{rounds} interleaved rounds of {ROUND_SECONDS:.2f} s per phase"
    )
    for name, measured in rates.items():
        median, best = statistics.median(measured), max(measured)
        print(
            f"  {name:24s} {median:9,.0f}/s median ({1e6 / median:6.1f} µs), best {best:9,.0f}/s; "
            f"{median / floor:5.0%} of libsodium (best vs best {best / floor_best:.0%})"
        )
    ratio = statistics.median(rates["verify_permit"]) / floor
    print(
        f"summary: {statistics.median(rates['verify_permit']):,.0f} offline permit checks/s, {ratio:.0%} of the "
        f"bare libsodium Ed25519 verify rate of this machine (goal ≥ 70%): {'met' if ratio >= 0.70 else 'NOT met'}"
    )

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(5000):
            verify_permit(token, trust=trust, revocations=lists)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
