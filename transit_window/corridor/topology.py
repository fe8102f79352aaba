"""Where each local node lives: its port, folder, key, database, and the `TW_*` settings that start it.

The same settings drive `transit-window corridor up`, the multi-process tests and the compose file, so what a
test starts is what an operator would run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from transit_window import clock
from transit_window.protocol.keys import load_private_key, write_private_key
from transit_window.protocol.trust import TrustKey, TrustList, TrustListBody, TrustMember

COUNTRY_NAMES = {
    "KZ": "Kazakhstan",
    "KG": "Kyrgyzstan",
    "UZ": "Uzbekistan",
    "TJ": "Tajikistan",
    "TM": "Turkmenistan",
    "AZ": "Azerbaijan",
}


@dataclass(frozen=True, slots=True)
class NodeSpec:
    id: str
    port: int
    url: str
    folder: Path
    database_url: str

    @property
    def key_file(self) -> Path:
        return self.folder / "node-key.pem"

    @property
    def log_file(self) -> Path:
        return self.folder / "node.log"


def plan(
    nodes: list[str],
    *,
    base_port: int,
    folder: Path,
    database_url_template: str | None = None,
    host: str = "127.0.0.1",
) -> list[NodeSpec]:
    """The i-th node (counting from 1) listens on base_port + i, so with 8100 KZ is 8101."""
    specs = []
    for index, node in enumerate(nodes, start=1):
        node_folder = folder.resolve() / node
        if database_url_template:
            database_url = database_url_template.replace("{node}", node.lower())
        else:
            database_url = f"sqlite+aiosqlite:///{node_folder / 'node.db'}"
        port = base_port + index
        specs.append(
            NodeSpec(id=node, port=port, url=f"http://{host}:{port}", folder=node_folder, database_url=database_url)
        )
    return specs


def ensure_key(spec: NodeSpec) -> None:
    spec.folder.mkdir(parents=True, exist_ok=True)
    if not spec.key_file.exists():
        write_private_key(spec.key_file)


def genesis(specs: list[NodeSpec], *, threshold: int, valid_for: timedelta = timedelta(days=365)) -> TrustList:
    """Version 1 listing `specs` as members, signed by every one of them (all keys are local here)."""
    now = clock.utcnow()
    members = []
    keys = []
    for spec in specs:
        key = load_private_key(spec.key_file)
        keys.append(key)
        members.append(
            TrustMember(
                node=spec.id,
                name=COUNTRY_NAMES.get(spec.id, spec.id),
                endpoint=spec.url,
                keys=[TrustKey(kid=key.kid, jwk=key.public_jwk, not_before=now - timedelta(hours=1))],
            )
        )
    body = TrustListBody(version=1, issued_at=now, expires_at=now + valid_for, threshold=threshold, members=members)
    trust = TrustList.from_body(body)
    for key in keys:
        trust.sign(key)
    return trust


def node_env(
    spec: NodeSpec, *, trust_file: Path, genesis_sha256: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "TW_NODE_ID": spec.id,
            "TW_DATABASE_URL": spec.database_url,
            "TW_KEY_FILE": str(spec.key_file),
            "TW_TRUST_FILE": str(trust_file),
            "TW_GENESIS_SHA256": genesis_sha256,
            "TW_PUBLIC_URL": spec.url,
            "TW_HOST": "127.0.0.1",
            "TW_PORT": str(spec.port),
        }
    )
    if extra:
        env.update(extra)
    return env
