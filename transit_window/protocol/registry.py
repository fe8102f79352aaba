"""The catalogue of corridor message types: one pydantic body model and one handler per `type`.

Feature packages register their types at import; the protocol imports none of them. The composition layer
(`transit_window.catalogue`, imported by the app factory, the worker, the spec export and the conformance kit)
imports them all and then seals the registry, and an envelope is never opened on a registry that was not sealed:
a process that forgot a feature would otherwise refuse that feature's messages as `unknown-type` (a worker-only
process once knew 4 of 23 types and its gap pulls never filled anything).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.protocol.envelope import VerifiedEnvelope
    from transit_window.protocol.node import Node


class Rejection(Exception):
    """An authentic message that cannot be applied. Answered with a signed `rejected` receipt carrying `code`.

    Codes follow NCTS functional errors: 12 code-list violation, 13 missing, 14 rule violation, 15 not allowed,
    26 duplicate, 90 unknown MRN, 92 out of sequence, 93 invalid MRN.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


Handler = Callable[["AsyncSession", "VerifiedEnvelope", "Node"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class MessageType:
    name: str
    body_model: type[BaseModel]
    handler: Handler
    summary: str


REGISTRY: dict[str, MessageType] = {}
_sealed = False


class IncompleteRegistry(RuntimeError):
    """Messages were about to be opened or sent by a process whose composition never sealed the registry."""


def seal() -> None:
    """Every feature has registered its types: from now on envelopes may be opened, and nothing more registers."""
    global _sealed
    _sealed = True


def require_complete() -> None:
    if not _sealed:
        raise IncompleteRegistry(
            f"the message registry holds {len(REGISTRY)} types and was never sealed: import transit_window.catalogue "
            "where the process is composed (app factory, worker, CLI command) before opening envelopes"
        )


def message_type(name: str, *, body: type[BaseModel], summary: str) -> Callable[[Handler], Handler]:
    """Register the handler of message type `name` whose body is validated by `body`."""

    def decorate(handler: Handler) -> Handler:
        if _sealed:
            raise RuntimeError(f"message type {name} registered after the registry was sealed")
        if name in REGISTRY:
            raise RuntimeError(f"message type {name} registered twice")
        REGISTRY[name] = MessageType(name=name, body_model=body, handler=handler, summary=summary)
        return handler

    return decorate
