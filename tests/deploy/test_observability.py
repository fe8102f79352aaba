"""What an operator watches: Prometheus metrics named after the Prometheus conventions, non-zero where the corridor
did work, request ids that tie a client's request to the node's JSON log lines, and example alert rules."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.declarations.conftest import declaration
from tests.support.papers import provide_papers
from transit_window.clients.service import add_client
from transit_window.db.session import unit_of_work
from transit_window.logs import JSONFormatter
from transit_window.metrics import Metrics

if TYPE_CHECKING:
    from tests.support.inprocess import InProcessCorridor

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_metric_names_follow_the_prometheus_conventions() -> None:
    """tw_ prefix, snake case, base units (seconds, not ms), counters declared with _total and nothing else ending in
    it, histograms naming their unit, times and durations in seconds. (prometheus_client would silently append
    _total to a counter declared without it, so the declarations in metrics.py are read too.)"""
    source = (Path(__file__).resolve().parents[2] / "transit_window" / "metrics.py").read_text()
    declared = re.findall(r"\b(Counter|Gauge|Histogram|Summary)\(\s*\"([^\"]+)\"", source)
    assert len(declared) == len(list(Metrics().registry.collect())), "every metric is declared in metrics.py"
    for kind, name in declared:
        assert re.fullmatch(r"tw_[a-z][a-z0-9_]*", name), name
        assert not re.search(r"_(ms|milliseconds|minutes|hours|kb|mb|percent)(_|$)", name), f"{name}: use base units"
        assert name.endswith("_total") == (kind == "Counter"), f"{name}: counters, and only counters, end in _total"
        if kind == "Histogram":
            assert name.endswith(("_seconds", "_bytes")), f"{name}: a histogram names its unit"
        if re.search(r"timestamp|latency|duration|expiry", name):
            assert name.endswith("_seconds"), f"{name}: times and durations are in seconds"


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels`."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items()):
                total += sample.value
    return total


async def test_metrics_show_the_deliveries_movements_and_inbox_of_a_released_movement(
    corridor: InProcessCorridor,
) -> None:
    """Kazakhstan releases apples for Ashgabat: its /metrics count the deliveries to UZ and TM and its departure
    movement as released; Uzbekistan's count the accepted message and the movement on its route."""
    kz = corridor["KZ"]
    async with unit_of_work(kz.node) as session:
        _, token = await add_client(session, name="customs KZ", role="customs")
    customs = {"Authorization": f"Bearer {token}"}
    guarantee = {"grn": "26KZ0000000001234", "holder_id": "230340000126", "reference_amount": "25000.00"}
    response = await kz.client.post("/v1/guarantees", json={**guarantee, "currency": "USD"}, headers=customs)
    assert response.status_code == 201, response.text
    await provide_papers(corridor, declaration())
    created = await kz.client.post("/v1/declarations", json=declaration(), headers=customs)
    assert created.status_code == 201, created.text
    released = await kz.client.post(f"/v1/declarations/{created.json()['mrn']}/release", headers=customs)
    assert released.status_code == 200, released.text
    await corridor.deliver_all()

    sent = (await kz.client.get("/metrics")).text
    assert metric(sent, "tw_deliveries_total", peer="UZ", outcome="delivered") >= 1
    assert metric(sent, "tw_deliveries_total", peer="TM", outcome="delivered") >= 1
    assert metric(sent, "tw_delivery_latency_seconds_count", peer="UZ") >= 1
    assert metric(sent, "tw_movements", role="departure", status="released") == 1
    assert metric(sent, "tw_http_requests_total", route="/v1/declarations/{mrn}/release", status="200") == 1

    received = (await corridor["UZ"].client.get("/metrics")).text
    assert metric(received, "tw_inbox_messages_total", outcome="accepted") >= 1
    assert metric(received, "tw_movements", role="route") == 1


async def test_a_request_id_is_echoed_and_carried_by_the_log_lines_of_that_request(
    corridor: InProcessCorridor, caplog: pytest.LogCaptureFixture
) -> None:
    """A caller's X-Request-ID comes back on the answer and is on every log line the node wrote for that request (the
    inbox's refusal and the access line); without one, or with one unfit for a log, the node makes its own."""
    caplog.set_level(logging.INFO)
    kz = corridor["KZ"]

    refused = await kz.client.post(
        "/v1/corridor/messages",
        content=b"not-a-jws",
        headers={"Content-Type": "application/jose", "X-Request-ID": "uz-delivery-42"},
    )
    assert refused.status_code == 400
    assert refused.headers["x-request-id"] == "uz-delivery-42"
    mine = [record for record in caplog.records if getattr(record, "request_id", None) == "uz-delivery-42"]
    assert {record.name for record in mine} >= {"transit_window.protocol.inbox", "transit_window.access"}, mine
    line = orjson.loads(JSONFormatter().format(next(r for r in mine if r.name == "transit_window.protocol.inbox")))
    assert (line["request_id"], line["reason"]) == ("uz-delivery-42", "malformed")

    generated = (await kz.client.get("/healthz")).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    hostile = await kz.client.get("/healthz", headers={"X-Request-ID": "a b\tc" + "x" * 200})
    assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["x-request-id"])
    too_large = await kz.client.post(
        "/v1/corridor/messages",
        content=b"x" * (kz.settings.max_message_bytes + 1),
        headers={"Content-Type": "application/jose", "X-Request-ID": "big-one"},
    )
    assert (too_large.status_code, too_large.headers["x-request-id"]) == (413, "big-one")


def test_alert_rules_parse_and_cover_the_three_operator_alerts() -> None:
    """deploy/prometheus-rules.yml is Prometheus rule YAML with the alerts the runbook names, on metrics that exist."""
    document = yaml.safe_load((DEPLOY / "prometheus-rules.yml").read_text())
    rules = {rule["alert"]: rule for group in document["groups"] for rule in group["rules"]}
    assert set(rules) == {"CorridorPeerUnreachable", "CorridorDeadLetters", "CorridorTrustListExpiring"}
    unreachable = rules["CorridorPeerUnreachable"]
    assert "tw_delivery_failures_total" in unreachable["expr"] and unreachable["for"] == "10m"
    assert 'tw_outbox_messages{state="dead"}' in rules["CorridorDeadLetters"]["expr"]
    assert "tw_trust_list_expiry_timestamp_seconds - time() < 86400" in rules["CorridorTrustListExpiring"]["expr"]
    known = {family.name for family in Metrics().registry.collect()}
    for rule in rules.values():
        assert rule["labels"]["severity"] in ("page", "ticket")
        assert rule["annotations"]["summary"] and rule["annotations"]["runbook"].startswith("deploy/README.md#")
        for name in re.findall(r"\btw_[a-z_]+", rule["expr"]):
            assert name.removesuffix("_total") in known, f"{rule['alert']} uses {name}, which no node exports"
