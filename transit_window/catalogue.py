"""Composition: every module that registers corridor message types, imported once, then the registry sealed.

Lives above the features (the protocol imports none of them). Imported by the app factory, the worker process, the
spec export and the conformance kit; `protocol.envelope.open_envelope` refuses to run before this has been imported.
"""

from transit_window.declarations import remote as transit_messages
from transit_window.documents import remote as document_messages
from transit_window.permits import remote as permit_messages
from transit_window.protocol import corridor_messages as corridor_messages
from transit_window.protocol import registry
from transit_window.protocol.registry import REGISTRY as REGISTRY
from transit_window.tracking import alerts as tracking_alerts

registry.seal()

__all__ = [
    "REGISTRY",
    "corridor_messages",
    "document_messages",
    "permit_messages",
    "tracking_alerts",
    "transit_messages",
]
