"""In-transaction domain events: how one feature hears of another's facts without importing it.

A feature that records a fact (declarations: a node now holds a movement, a movement step was recorded) publishes an
event object with the session it wrote it in; every subscriber runs then and there, awaited in subscription order, in
the same transaction. So a step and its tracking event, its webhook deliveries and the tracking code it issues commit
together or not at all, exactly as when declarations called tracking directly, and a subscriber's error rolls the
step back. Nothing is queued: these are not messages between nodes (those go through the protocol's outbox).

The composition (`transit_window.catalogue`) subscribes each feature once per process, then seals the bus; publishing
on a bus never sealed is refused (`IncompleteWiring`), so a process that forgot the wiring fails loudly instead of
recording steps that no timeline or webhook ever sees. Hand-written: the need is forty lines (typed subscribers, one
session, no threads), which no event library fits better than a dict of lists.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

E = TypeVar("E")
Subscriber = Callable[["AsyncSession", E], Awaitable[None]]


class IncompleteWiring(RuntimeError):
    """An event published before the composition subscribed the features (`transit_window.catalogue` not imported)."""


class Bus:
    def __init__(self) -> None:
        self._subscribers: defaultdict[type[Any], list[Subscriber[Any]]] = defaultdict(list)
        self._sealed = False

    def subscribe(self, event_type: type[E], subscriber: Subscriber[E]) -> None:
        if self._sealed:
            raise RuntimeError(f"the event bus is sealed: subscribe to {event_type.__name__} at composition")
        self._subscribers[event_type].append(subscriber)

    def seal(self) -> None:
        self._sealed = True

    @property
    def sealed(self) -> bool:
        return self._sealed

    def subscribers(self, event_type: type[Any]) -> list[Subscriber[Any]]:
        return list(self._subscribers.get(event_type, ()))

    async def publish(self, session: AsyncSession, event: object) -> None:
        if not self._sealed:
            raise IncompleteWiring(
                f"{type(event).__name__} published before the features were wired: import transit_window.catalogue "
                "in this process (the app factory and the worker do)"
            )
        for subscriber in self._subscribers.get(type(event), ()):
            await subscriber(session, event)


BUS = Bus()


async def publish(session: AsyncSession, event: object) -> None:
    await BUS.publish(session, event)
