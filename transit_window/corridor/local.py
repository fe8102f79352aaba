"""`LocalCorridor`: prepare and run several nodes on loopback (keys, genesis, databases, demo clients).

Synchronous on purpose: it drives processes and is used from the CLI, tests and benchmarks alike.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transit_window.clients.service import add_role_clients
from transit_window.corridor.processes import NodeProcess
from transit_window.corridor.topology import NodeSpec, ensure_key, genesis, node_env
from transit_window.db import migrate
from transit_window.db.engine import create_engine, create_sessionmaker
from transit_window.protocol.trust import TrustList


@dataclass
class LocalCorridor:
    specs: list[NodeSpec]
    folder: Path
    members: list[str] | None = None  # genesis members; default: every node
    threshold: int | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    # The party of each node's demo forwarder client; None: a party of its own per node (`KZ-DEMO-FORWARDER`).
    forwarder_party: str | None = None
    manifest_extra: dict[str, Any] = field(default_factory=dict)  # more top-level entries of corridor.json
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)
    client_ids: dict[str, dict[str, str]] = field(default_factory=dict)  # node → role → the demo client's id
    processes: dict[str, NodeProcess] = field(default_factory=dict)

    @property
    def trust_file(self) -> Path:
        return self.folder.resolve() / "trust" / "genesis.json"

    @property
    def manifest(self) -> Path:
        return self.folder.resolve() / "corridor.json"

    def spec(self, node: str) -> NodeSpec:
        return next(spec for spec in self.specs if spec.id == node)

    @property
    def nodes(self) -> list[str]:
        return [spec.id for spec in self.specs]

    def url(self, node: str) -> str:
        return self.spec(node).url

    def prepare(self) -> None:
        """Keys, the genesis trust list, migrated databases and one demo client per role (first run only)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for spec in self.specs:
            ensure_key(spec)
        if not self.trust_file.exists():
            members = [spec for spec in self.specs if self.members is None or spec.id in self.members]
            threshold = self.threshold or max(1, (2 * len(members)) // 3)
            trust = genesis(members, threshold=threshold)
            self.trust_file.parent.mkdir(parents=True, exist_ok=True)
            self.trust_file.write_bytes(trust.to_json())
        known = self._read_manifest()
        for spec in self.specs:
            migrate.upgrade(spec.database_url)
            if spec.id in known:
                self.tokens[spec.id], self.client_ids[spec.id] = known[spec.id]
            else:
                self.tokens[spec.id], self.client_ids[spec.id] = asyncio.run(
                    _demo_clients(spec, forwarder_party=self.forwarder_party or f"{spec.id}-DEMO-FORWARDER")
                )
        self._write_manifest()

    @property
    def genesis_sha256(self) -> str:
        return TrustList.from_json(self.trust_file.read_bytes()).sha256

    def process(self, node: str) -> NodeProcess:
        if node not in self.processes:
            spec = self.spec(node)
            env = node_env(spec, trust_file=self.trust_file, genesis_sha256=self.genesis_sha256, extra=self.extra_env)
            self.processes[node] = NodeProcess(spec=spec, env=env)
        return self.processes[node]

    def start(self, nodes: list[str] | None = None, *, wait: bool = True) -> None:
        chosen = nodes or [spec.id for spec in self.specs]
        for node in chosen:
            self.process(node).start()
        if wait:
            for node in chosen:
                self.process(node).wait_ready()

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()

    def token(self, node: str, role: str = "admin") -> str:
        return self.tokens[node][role]

    def client_id(self, node: str, role: str) -> str:
        """The id of the node's demo client of `role`: what an admin names when registering an e-seal to it."""
        return self.client_ids[node][role]

    def _read_manifest(self) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
        """node → (tokens, client ids) by role. A manifest from before client ids were kept gets new clients."""
        if not self.manifest.exists():
            return {}
        data = json.loads(self.manifest.read_text())
        return {
            node["id"]: (node["tokens"], node["client_ids"])
            for node in data.get("nodes", [])
            if node.get("tokens") and node.get("client_ids")
        }

    def _write_manifest(self) -> None:
        data: dict[str, Any] = {
            **self.manifest_extra,
            "trust_file": str(self.trust_file),
            "genesis_sha256": self.genesis_sha256,
            "nodes": [
                {
                    "id": spec.id,
                    "url": spec.url,
                    "database_url": spec.database_url,
                    "log": str(spec.log_file),
                    "tokens": self.tokens.get(spec.id, {}),
                    "client_ids": self.client_ids.get(spec.id, {}),
                    "forwarder_party": self.forwarder_party or f"{spec.id}-DEMO-FORWARDER",
                }
                for spec in self.specs
            ],
        }
        self.manifest.write_text(json.dumps(data, indent=2))
        self.manifest.chmod(0o600)


async def _demo_clients(spec: NodeSpec, *, forwarder_party: str) -> tuple[dict[str, str], dict[str, str]]:
    """One client per role: their tokens and their ids, by role. The forwarder acts for `forwarder_party`."""
    engine = create_engine(spec.database_url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session:
            made = await add_role_clients(session, name=f"demo {{role}} ({spec.id})", forwarder_party=forwarder_party)
            tokens: dict[str, str] = {role: token for role, (_, token) in made.items()}
            ids: dict[str, str] = {role: client.id for role, (client, _) in made.items()}
            await session.commit()
            return tokens, ids
    finally:
        await engine.dispose()
