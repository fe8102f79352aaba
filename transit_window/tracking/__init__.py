"""Cargo tracking for freight forwarders: EPCIS-style events for every movement step on every node, the merged
timeline, access by party, public tracking codes, webhooks, e-seal positions and alerts, and the tracking page."""
