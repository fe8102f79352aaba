"""The catalogue of corridor message types: one pydantic body model and one handler per `type`.

Feature packages register their types at import (`transit_window.protocol.catalogue` imports them all), so the
inbox, the JSON Schema export and PROTOCOL.md see one list.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from transit_window.node import Node
    from transit_window.protocol.envelope import VerifiedEnvelope


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


def message_type(name: str, *, body: type[BaseModel], summary: str) -> Callable[[Handler], Handler]:
    """Register the handler of message type `name` whose body is validated by `body`."""

    def decorate(handler: Handler) -> Handler:
        if name in REGISTRY:
            raise RuntimeError(f"message type {name} registered twice")
        REGISTRY[name] = MessageType(name=name, body_model=body, handler=handler, summary=summary)
        return handler

    return decorate
