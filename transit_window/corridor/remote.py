"""`RemoteCorridor`: nodes someone else started (the compose corridor in containers), known from a corridor file.

The file is what deploy/bootstrap.sh writes into the compose volume and deploy/containers.sh copies out
(`.corridor/containers/corridor.json`), in the shape of the local demo's `corridor.json`: for each node its id, its URL
as this machine reaches it, one bearer token per role and the ids of those clients. Nothing here starts, stops or
migrates a node; it only reads the file and waits until every node answers `/readyz`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


class CorridorFileError(ValueError):
    """The corridor file is missing, unreadable or lacks what the story needs."""


@dataclass(frozen=True, slots=True)
class RemoteNode:
    id: str
    url: str
    tokens: dict[str, str]
    client_ids: dict[str, str]


@dataclass(frozen=True, slots=True)
class RemoteCorridor:
    members: list[RemoteNode]

    @classmethod
    def load(cls, path: Path) -> RemoteCorridor:
        try:
            data: Any = json.loads(path.read_text())
            members = [
                RemoteNode(
                    id=str(node["id"]),
                    url=str(node["url"]).rstrip("/"),
                    tokens={str(role): str(token) for role, token in node["tokens"].items()},
                    client_ids={str(role): str(id_) for role, id_ in node.get("client_ids", {}).items()},
                )
                for node in data["nodes"]
            ]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorridorFileError(f"{path}: not a corridor file ({type(exc).__name__}: {exc})") from exc
        if not members:
            raise CorridorFileError(f"{path}: lists no node")
        return cls(members=members)

    def member(self, node: str) -> RemoteNode:
        found = next((member for member in self.members if member.id == node), None)
        if found is None:
            raise KeyError(f"the corridor file lists no node {node}")
        return found

    @property
    def nodes(self) -> list[str]:
        return [member.id for member in self.members]

    def url(self, node: str) -> str:
        return self.member(node).url

    def token(self, node: str, role: str = "admin") -> str:
        tokens = self.member(node).tokens
        if role not in tokens:
            raise KeyError(f"the corridor file has no {role} token for {node}")
        return tokens[role]

    def client_id(self, node: str, role: str) -> str:
        return self.member(node).client_ids[role]

    def wait_ready(self, *, timeout: float = 120.0) -> None:
        """Until every node's `/readyz` answers 200 (database, trust list and delivery worker ok)."""
        deadline = time.monotonic() + timeout
        waiting = {member.id: "no answer yet" for member in self.members}
        with httpx.Client(timeout=3.0) as http:
            while waiting:
                for node in list(waiting):
                    try:
                        response = http.get(f"{self.url(node)}/readyz")
                    except httpx.HTTPError as exc:
                        waiting[node] = type(exc).__name__
                        continue
                    if response.status_code == 200:
                        del waiting[node]
                    else:
                        waiting[node] = f"{response.status_code} {response.text[:200]}"
                if waiting:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"not ready after {timeout:.0f} s: {waiting}")
                    time.sleep(0.5)
