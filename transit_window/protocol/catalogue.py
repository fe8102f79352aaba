"""Imports every module that registers message types, so the registry is complete wherever this is imported."""

from transit_window.declarations import remote as transit_messages
from transit_window.documents import remote as document_messages
from transit_window.permits import remote as permit_messages
from transit_window.protocol import corridor_messages as corridor_messages
from transit_window.protocol.registry import REGISTRY as REGISTRY
from transit_window.tracking import alerts as tracking_alerts

__all__ = [
    "REGISTRY",
    "corridor_messages",
    "document_messages",
    "permit_messages",
    "tracking_alerts",
    "transit_messages",
]
