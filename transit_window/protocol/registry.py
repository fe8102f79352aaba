"""The catalogue of corridor message types: one pydantic body model and one handler per `type`.

Each feature collects its types where its handlers are (`MESSAGES = MessageTypes()` in its `inbound.py`, each
handler decorated `@MESSAGES.message_type(...)`); importing a module registers nothing. The composition
(`transit_window.catalogue`, imported by the app factory, the worker, the spec export and the conformance kit) calls
`register(...)` with every feature's collection and then seals the registry; the protocol imports no feature. An
envelope is never opened on a registry that was not sealed:
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


class MessageTypes:
    """A feature's message types, collected where its handlers are defined; registered by the composition."""

    def __init__(self) -> None:
        self.types: list[MessageType] = []

    def message_type(self, name: str, *, body: type[BaseModel], summary: str) -> Callable[[Handler], Handler]:
        """Collect the handler of message type `name` whose body is validated by `body`."""

        def decorate(handler: Handler) -> Handler:
            self.types.append(MessageType(name=name, body_model=body, handler=handler, summary=summary))
            return handler

        return decorate


def register(*collections: MessageTypes) -> None:
    """Put the features' message types in the registry, before it is sealed; a type registered twice is refused."""
    for collection in collections:
        for message in collection.types:
            if _sealed:
                raise RuntimeError(f"message type {message.name} registered after the registry was sealed")
            if message.name in REGISTRY:
                raise RuntimeError(f"message type {message.name} registered twice")
            REGISTRY[message.name] = message
