"""Composition: the one place the features are wired to the protocol and to each other, once per process.

- every feature's corridor message types (`MESSAGES` in its `inbound.py`; the protocol's own in
  `corridor_messages.py`) are registered, then the message registry is sealed (`protocol.envelope.open_envelope`
  refuses to run before);
- the features' subscribers are put on the event bus (`transit_window.bus`), then it is sealed (publishing before is
  refused): tracking hears of declarations' movements and steps, webhooks of tracking's events;
- declarations' ports are provided (`declarations.ports`): the release checks of documents and permits, tracking's
  codes, and the kept `tracking.alert` handed back to tracking.

Lives above the features (nothing below imports it). Imported by the app factory, the worker process (`tasks.py`),
the spec export and the conformance kit.
"""

from transit_window import bus
from transit_window.db.session import register_sealer
from transit_window.declarations import inbound as transit_messages
from transit_window.declarations.events import MovementHeld, StepRecorded
from transit_window.declarations.ports import PORTS
from transit_window.documents import inbound as document_messages
from transit_window.documents.release_check import CertificatesCheck
from transit_window.permits import inbound as permit_messages
from transit_window.permits.release_check import PermitsCheck
from transit_window.protocol import corridor_messages as corridor_messages
from transit_window.protocol import proposals as proposals  # registers corridor.trust-proposal/-signature/-objection
from transit_window.protocol import registry
from transit_window.protocol.registry import REGISTRY as REGISTRY
from transit_window.tracking import codes as tracking_codes
from transit_window.tracking import inbound as tracking_messages
from transit_window.tracking import subscribers as tracking
from transit_window.tracking.events import EventRecorded
from transit_window.webhooks import delivery as webhook_delivery
from transit_window.webhooks import service as webhooks


def _wire() -> None:
    bus.BUS.subscribe(MovementHeld, tracking.on_movement_held)
    bus.BUS.subscribe(StepRecorded, tracking.on_step_recorded)
    bus.BUS.subscribe(EventRecorded, webhooks.on_event_recorded)
    register_sealer(webhook_delivery.seal_deliveries, first=True)  # the deliveries an event queued, at its commit
    bus.BUS.seal()
    PORTS.papers = [CertificatesCheck(), PermitsCheck()]  # certificates first: the order of the 409's `missing`
    PORTS.tracking_codes = tracking_codes  # the module is the port: `active_codes(session, *, mrns)`
    PORTS.parked["tracking.alert"] = tracking.on_parked_alert
    PORTS.wired = True


registry.register(
    corridor_messages.MESSAGES,
    transit_messages.MESSAGES,
    document_messages.MESSAGES,
    permit_messages.MESSAGES,
    tracking_messages.MESSAGES,
)
registry.seal()
_wire()

__all__ = [
    "REGISTRY",
    "corridor_messages",
    "document_messages",
    "permit_messages",
    "tracking_messages",
    "transit_messages",
]
