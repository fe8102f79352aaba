"""Node keys and trust lists made at test time (nothing secret is committed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from transit_window import clock
from transit_window.protocol.keys import SigningKey, load_private_key, write_private_key
from transit_window.protocol.trust import TrustKey, TrustList, TrustListBody, TrustMember


@dataclass(frozen=True)
class TestMember:
    node: str
    key_file: Path
    key: SigningKey
    endpoint: str


def make_member(node: str, folder: Path, *, endpoint: str | None = None, name: str = "key") -> TestMember:
    key_file = folder / node / f"{name}.pem"
    if not key_file.exists():
        write_private_key(key_file)
    return TestMember(
        node=node,
        key_file=key_file,
        key=load_private_key(key_file),
        endpoint=endpoint or f"http://{node.lower()}.corridor.test",
    )


def trust_body(
    members: list[TestMember],
    *,
    version: int = 1,
    threshold: int | None = None,
    issued_at: datetime | None = None,
    valid_for: timedelta = timedelta(days=30),
) -> TrustListBody:
    issued = issued_at or clock.utcnow()
    return TrustListBody(
        version=version,
        issued_at=issued,
        expires_at=issued + valid_for,
        threshold=threshold or len(members),
        members=[
            TrustMember(
                node=member.node,
                name=member.node,
                endpoint=member.endpoint,
                keys=[TrustKey(kid=member.key.kid, jwk=member.key.public_jwk, not_before=issued - timedelta(days=1))],
            )
            for member in members
        ],
    )


def signed(body: TrustListBody, signers: list[TestMember]) -> TrustList:
    trust = TrustList.from_body(body)
    for member in signers:
        trust.sign(member.key)
    return trust
