"""Prometheus metrics of one node, in a registry of its own (several nodes may share a test process).

`serve` with TW_WORKERS > 1 runs the API in several processes: it sets PROMETHEUS_MULTIPROC_DIR for them, each
process writes its samples there, and `/metrics`, whichever process answers it, reads them all (prometheus_client's
multiprocess mode), so the figures are the node's, not one process's share. Gauges are then "most recent": the
ones set at scrape time from the database (outbox depth, movements) are the same whoever set them last, and they
are set for every label they can have (0 when none), so no process's stale value outlives a scrape.
"""

from __future__ import annotations

import os
from functools import partial

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import Gauge as _Gauge
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROCESS_DIR))


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        Gauge = partial(_Gauge, multiprocess_mode="mostrecent") if multiprocess() else _Gauge
        self.http_requests = Counter(
            "tw_http_requests_total",
            "HTTP requests by route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "tw_http_request_duration_seconds",
            "HTTP request duration.",
            ["method", "route"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.outbox_depth = Gauge(
            "tw_outbox_messages", "Outbox messages by peer and state.", ["peer", "state"], registry=r
        )
        self.permit_alerts = Counter(
            "tw_permit_alerts_total", "Permit fraud signs raised here, by kind.", ["kind"], registry=r
        )
        self.permits_issued = Counter(
            "tw_permits_issued_total", "Permits issued here, by type and outcome.", ["type", "outcome"], registry=r
        )
        self.messages_enqueued = Counter("tw_messages_enqueued_total", "Messages sealed into the outbox.", registry=r)
        self.deliveries = Counter(
            "tw_deliveries_total",
            "Outbox delivery outcomes by peer (delivered, rejected, failed, dead).",
            ["peer", "outcome"],
            registry=r,
        )
        self.delivery_failures = Counter(
            "tw_delivery_failures_total",
            "Failed delivery attempts by peer and reason.",
            ["peer", "reason"],
            registry=r,
        )
        self.delivery_latency = Histogram(
            "tw_delivery_latency_seconds",
            "From sealing a message to holding its verified receipt.",
            ["peer"],
            registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
        )
        self.inbox = Counter(
            "tw_inbox_messages_total",
            "Inbox outcomes (accepted, rejected, replayed, refused) by reason.",
            ["outcome", "reason"],
            registry=r,
        )
        self.trust_version = Gauge("tw_trust_list_version", "Current trust-list version.", registry=r)
        self.trust_expires = Gauge(
            "tw_trust_list_expiry_timestamp_seconds", "When the current trust list expires.", registry=r
        )
        self.log_size = Gauge("tw_log_entries", "Entries in the tamper-evident log.", registry=r)
        self.gaps = Gauge("tw_inbound_seq_gaps", "Senders whose sequence has a gap being pulled.", registry=r)
        self.movements = Gauge(
            "tw_movements",
            "Transit movements this node holds, by role (departure, route) and status.",
            ["role", "status"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "tw_webhook_deliveries_total",
            "Webhook delivery attempts by outcome (delivered, failed, refused: the target's address is not allowed).",
            ["outcome"],
            registry=r,
        )

    def exposition(self) -> bytes:
        """The text `/metrics` answers: this process's registry, or every process's samples in multiprocess mode."""
        if not multiprocess():
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged)
