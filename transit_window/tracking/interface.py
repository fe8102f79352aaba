"""What tracking offers webhooks, the one module of it (with `events.EventRecorded`) webhooks may import.

Webhooks delivers tracking's events: it learns of each new one from `EventRecorded` on the bus, matches forwarders'
subscriptions through the consignment's parties (`ConsignmentParty`, read only), checks that a forwarder subscribing
to one consignment may follow it (`readable_movement`), and renders a delivery's body as the timeline shows the
event (`render`, over `TrackingEvent` rows). `lint-imports` holds webhooks to this module and `events`.
"""

from __future__ import annotations

from transit_window.tracking.access import readable_movement
from transit_window.tracking.events import EventRecorded
from transit_window.tracking.models import ConsignmentParty, TrackingEvent
from transit_window.tracking.timeline import render
from transit_window.tracking.vocabulary import STEPS

__all__ = ["STEPS", "ConsignmentParty", "EventRecorded", "TrackingEvent", "readable_movement", "render"]
