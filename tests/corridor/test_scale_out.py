"""The scale-out shape on PostgreSQL (issue 15): every node of a three-country corridor (KG, UZ, KZ) runs two API
processes with `TW_RUN_WORKER=false` and two `transit-window worker` processes, all four on the node's one database.

Dried apricots go from Bishkek to Shymkent (KG → UZ → KZ) on Uzbekistan's transit permit, driven through the API
processes only, each node's requests taking turns between its two. Once the truck has left Kyrgyzstan, the KG node
loses power (all four processes). Uzbekistan records the crossings, uses its permit at both posts and revokes it;
Kazakhstan records the entry, the arrival and the control results. Their workers retry KG and give up: every message
for KG is dead-lettered (`TW_DEAD_AFTER_SECONDS`). KG comes back, the next message from each sender (a ping) shows it
a gap in their sequences, and a KG worker pulls the missing `transit.*` and `permit.*` messages and applies them: KG
writes the movement off (telling the route), and shows the permit used and revoked — each message applied exactly
once although both workers of a node run every loop, and none refused as `unknown-type` (the guard that makes an
incomplete registry fail loudly instead, `open_envelope` in a process that never sealed it, is checked on its own in
tests/protocol/test_worker_registry.py).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import socket
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.calendar import limit_date, quota_year, today
from transit_window import clock
from transit_window.corridor.demo import APRICOTS_TO_SHYMKENT

if TYPE_CHECKING:
    from tests.corridor.conftest import ProcessCorridor, StartCorridor
    from transit_window.corridor.processes import NodeProcess

pytestmark = pytest.mark.corridor

NODES = ["KG", "UZ", "KZ"]
DOWN = "KG"  # the departure country: the node that misses the rest of the journey
SENDERS = ["UZ", "KZ"]
PLATE = APRICOTS_TO_SHYMKENT["vehicle"]["plate"]
SCALE_OUT = {
    "TW_RUN_WORKER": "false",  # API processes run no loops: only the worker processes deliver and pull
    # Dustlik to Gisht Kuprik in a second: the impossible-travel bound is raised so the trip raises no permit alert.
    "TW_PERMIT_MAX_SPEED_KMH": "1e12",
}
NODE_ENV = {
    "KG": {"TW_GAP_PULL_SECONDS": "1"},  # back up, it looks for gaps every second
    # The senders dead-letter what KG has not taken 3 s after it was queued (in every other test: 72 h).
    **{sender: {"TW_DEAD_AFTER_SECONDS": "3"} for sender in SENDERS},
}

# What KG misses while it is down, by sender (UZ: two crossings, the permit's ENTRY and EXIT, its revocation).
MISSED = {
    "UZ": Counter({"transit.crossed": 2, "permit.used": 2, "permit.revoked": 1}),
    "KZ": Counter({"transit.crossed": 1, "transit.arrived": 1, "transit.control-results": 1}),
}
JOURNEY = [
    ("released", "KGFRU001", "KG"),
    ("exit", "KGDOS001", "KG"),
    ("entry", "UZDUS001", "UZ"),
    ("exit", "UZGIS001", "UZ"),
    ("entry", "KZZHZ001", "KZ"),
    ("arrived", "KZCIT001", "KZ"),
    ("control-results", "KZCIT001", "KZ"),
    ("closed", "KGFRU001", "KG"),
]


@dataclasses.dataclass
class ScaledNode:
    """One country's node: two API processes (the first is its trust-list endpoint) and two workers."""

    id: str
    apis: list[NodeProcess]
    workers: list[NodeProcess]
    _turns: Iterator[NodeProcess] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self._turns = itertools.cycle(self.apis)

    def next_api(self) -> NodeProcess:
        """Round robin, as a load balancer in front of the two would."""
        return next(self._turns)

    @property
    def processes(self) -> list[NodeProcess]:
        return [*self.workers, *self.apis]

    def worker_ids(self) -> set[str]:
        return {f"{self.id}:{socket.gethostname()}:{w.process.pid}" for w in self.workers if w.process is not None}


def scale_out(corridor: ProcessCorridor) -> dict[str, ScaledNode]:
    """Start every node as two API processes and two workers; wait until the API processes are ready."""
    for node in NODES:
        corridor.process(node).start()  # the trust-list endpoint first (the fixture started nothing)
    nodes = {
        node: ScaledNode(
            node,
            apis=[corridor.process(node), corridor.add_api(node, "api-2")],
            workers=[corridor.add_worker(node, "worker-1"), corridor.add_worker(node, "worker-2")],
        )
        for node in NODES
    }
    wait_ready(corridor, [api for node in nodes.values() for api in node.apis])
    return nodes


def wait_ready(corridor: ProcessCorridor, apis: list[NodeProcess]) -> None:
    """Every API process ready: database, trust list, and a worker's heartbeat on its database."""
    for api in apis:
        try:
            api.wait_ready(timeout=90)
        except (RuntimeError, TimeoutError) as exc:
            raise AssertionError(f"{api.spec.url} did not become ready: {exc}\n{corridor.logs()}") from exc


def call(
    corridor: ProcessCorridor, node: ScaledNode, role: str, method: str, path: str, *, expect: int = 200, **kw: Any
) -> Any:
    """One request to the node's next API process as its demo client of `role`."""
    url = node.next_api().spec.url
    headers = {"Authorization": f"Bearer {corridor.local.token(node.id, role)}"}
    response = corridor.http.request(method, f"{url}{path}", headers=headers, **kw)
    assert response.status_code == expect, f"{node.id} {method} {url}{path}: {response.status_code} {response.text}"
    return response.json()


def pending(corridor: ProcessCorridor, node: str, *, to: list[str]) -> int:
    return int(corridor.scalar(node, "SELECT count(*) FROM outbox WHERE state = 'pending' AND peer = ANY(:to)", to=to))


def last_seq(corridor: ProcessCorridor, sender: str) -> int:
    return int(corridor.scalar(sender, "SELECT coalesce(max(seq), 0) FROM outbox WHERE peer = :down", down=DOWN))


def settled(corridor: ProcessCorridor, nodes: list[str]) -> bool:
    """Nothing pending between `nodes`."""
    return all(pending(corridor, node, to=[peer for peer in nodes if peer != node]) == 0 for node in nodes)


def refused_by(corridor: ProcessCorridor, api: NodeProcess) -> float:
    """Messages this API process's inbox refused (`tw_inbox_messages_total{outcome="refused"}`)."""
    response = corridor.http.get(f"{api.spec.url}/metrics")
    assert response.status_code == 200, response.text
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "tw_inbox_messages_total" and sample.labels.get("outcome") == "refused"
    )


def log_size(process: NodeProcess) -> int:
    return process.spec.log_file.stat().st_size if process.spec.log_file.exists() else 0


def log_lines(process: NodeProcess, *, since: int = 0) -> list[dict[str, Any]]:
    """The process's JSON log lines from byte `since` on (a restarted process appends to its log)."""
    with process.spec.log_file.open("rb") as log:
        log.seek(since)
        text = log.read().decode(errors="replace")
    lines = []
    for line in text.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            lines.append({"msg": line})
    return lines


def test_two_apis_and_two_workers_per_node_a_receiver_that_was_down_pulls_what_its_senders_gave_up_on(
    start_corridor: StartCorridor,
) -> None:
    corridor = start_corridor(NODES, extra_env=SCALE_OUT, node_env=NODE_ENV, run=[])
    nodes = scale_out(corridor)
    kg, uz, kz = (nodes[node] for node in NODES)

    # -- the papers and the release, with every node up ---------------------------------------------------------------
    body = {**APRICOTS_TO_SHYMKENT, "limit_date": limit_date(14, "KG")}
    carrier = {key: body["carrier"][key] for key in ("id", "name")}
    quota = {"holder": "KG", "year": quota_year("KG"), "type": "transit", "quantity": 10}
    call(corridor, uz, "permits", "POST", "/v1/permits/quotas", json=quota)
    call(
        corridor,
        kg,
        "customs",
        "POST",
        "/v1/guarantees",
        expect=201,
        json={
            "grn": body["guarantee"]["grn"],
            "holder_id": carrier["id"],
            "holder_country": "KG",
            "reference_amount": "50000.00",
            "currency": "USD",
        },
    )
    goods = body["goods"][0]
    certificate = {
        "type": "phytosanitary",
        "number": body["documents"][0]["number"],
        "goods": [
            {"hs_code": goods["hs_code"], "description": goods["description"], "quantity": "10000", "unit": "KGM"}
        ],
        "consignor": body["consignor"],
        "consignee": body["consignee"],
        "destination_country": "KZ",
        "issued_at": clock.isoformat(clock.utcnow() - timedelta(hours=2)),
    }
    call(corridor, kg, "permits", "POST", "/v1/documents", expect=201, json=certificate)
    corridor.wait_until("KG holds the quota UZ granted it", lambda: settled(corridor, NODES))
    application = {
        "carrier": carrier,
        "plate": PLATE,
        "route": NODES,
        "valid_from": today("KG").isoformat(),
        "trips": 2,
    }
    applied = call(corridor, kg, "permits", "POST", "/v1/permits/applications", expect=201, json=application)
    path = f"/v1/permits/applications/{applied['id']}"
    corridor.wait_until(
        "UZ answered KG's application",
        lambda: call(corridor, kg, "permits", "GET", path)["status"] != "pending",
    )
    requests = {item["country"]: item for item in call(corridor, kg, "permits", "GET", path)["requests"]}
    assert (requests["UZ"]["status"], requests["KZ"]["status"]) == ("issued", "not-required"), requests
    permit = requests["UZ"]["permit_id"]

    mrn = call(corridor, kg, "customs", "POST", "/v1/declarations", expect=201, json=body)["mrn"]
    assert call(corridor, kg, "customs", "POST", f"/v1/declarations/{mrn}/release")["status"] == "released"
    step(corridor, kg, mrn, "crossings", office="KGDOS001", direction="exit")
    corridor.wait_until("KG's release and exit reached UZ and KZ", lambda: settled(corridor, NODES))
    for node in (uz, kz):
        assert [s["kind"] for s in call(corridor, node, "customs", "GET", f"/v1/movements/{mrn}")["journey"]] == [
            "released",
            "exit",
        ]

    # -- KG loses power; the rest of the journey happens without it --------------------------------------------------
    for process in kg.processes:
        process.kill()
    before = {sender: last_seq(corridor, sender) for sender in SENDERS}  # what each had for KG so far
    step(corridor, uz, mrn, "crossings", office="UZDUS001", direction="entry")
    use(corridor, uz, permit, "ENTRY", "UZDUS001")
    step(corridor, uz, mrn, "crossings", office="UZGIS001", direction="exit")
    use(corridor, uz, permit, "EXIT", "UZGIS001")
    revoked = call(
        corridor, uz, "permits", "POST", f"/v1/permits/{permit}/revoke", json={"reason": "licence suspended"}
    )
    assert revoked["status"] == "revoked"
    corridor.wait_until("UZ's steps reached KZ", lambda: settled(corridor, SENDERS))
    step(corridor, kz, mrn, "crossings", office="KZZHZ001", direction="entry")
    step(corridor, kz, mrn, "arrival", office="KZCIT001")
    step(corridor, kz, mrn, "control-results", code="A1")
    corridor.wait_until(
        "UZ's and KZ's workers gave up on KG (nothing for it left pending)",
        lambda: all(pending(corridor, sender, to=[DOWN]) == 0 for sender in SENDERS),
    )
    given_up: dict[str, dict[str, str]] = {}  # sender → message id → type, of what KG missed
    first_missed: dict[str, int] = {}  # sender → the lowest seq KG missed
    for sender in SENDERS:
        rows = corridor.query(
            sender,
            "SELECT id, seq, type, state FROM outbox WHERE peer = :down AND seq > :seq",
            down=DOWN,
            seq=before[sender],
        )
        assert {row.state for row in rows} == {"dead"}, rows
        given_up[sender] = {row.id: row.type for row in rows if row.type.split(".")[0] in ("transit", "permit")}
        assert Counter(given_up[sender].values()) == MISSED[sender], (sender, rows)
        first_missed[sender] = min(row.seq for row in rows)

    # -- KG comes back; a later message from each sender shows it the gap; a worker pulls and applies it ------------
    restarted_at = {process.spec.log_file: log_size(process) for process in kg.processes}
    for process in kg.processes:
        process.start()  # workers first: an API process is ready once a worker's heartbeat is on the database
    wait_ready(corridor, kg.apis)
    for sender in (uz, kz):
        call(corridor, sender, "admin", "POST", "/v1/admin/pings", json={"to": [DOWN], "note": "back?"})

    def kg_caught_up() -> bool:
        movement = call(corridor, kg, "customs", "GET", f"/v1/movements/{mrn}")
        copy = call(corridor, kg, "permits", "GET", f"/v1/permits/{permit}")
        return movement["status"] == "closed" and copy["status"] == "revoked" and copy["exits"] == 1

    corridor.wait_until("KG shows the movement written off and the permit used and revoked", kg_caught_up)
    corridor.wait_until(
        "KG's write-off reached UZ and KZ",
        lambda: all(
            call(corridor, node, "customs", "GET", f"/v1/movements/{mrn}")["status"] == "closed" for node in (uz, kz)
        ),
    )

    # What every node's API shows: the same journey, each step signed by its country; KG's copy of the permit.
    for node in (kg, kg, uz, kz):  # both KG API processes
        movement = call(corridor, node, "customs", "GET", f"/v1/movements/{mrn}")
        assert [(s["kind"], s["office"], s["signed_by"]) for s in movement["journey"]] == JOURNEY, node.id
    copy = call(corridor, kg, "permits", "GET", f"/v1/permits/{permit}")
    assert (copy["issuer"], copy["status"], copy["entries"], copy["exits"]) == ("UZ", "revoked", 1, 1)
    assert copy["revoke_reason"] == "licence suspended"
    assert [(a["activity"], a["office"], a["recorded_by"]) for a in copy["activities"]] == [
        ("ENTRY", "UZDUS001", "UZ"),
        ("EXIT", "UZGIS001", "UZ"),
    ]
    guarantee = call(corridor, kg, "customs", "GET", f"/v1/guarantees/{body['guarantee']['grn']}")
    assert guarantee["reserved"] == "0.00"  # written off at KG, after what it pulled

    # The senders never delivered what they gave up on: KG has each of those messages, applied once and accepted,
    # because a KG worker pulled it (the API processes run no loops; their logs show no pull).
    for sender in SENDERS:
        still = corridor.query(sender, "SELECT id FROM outbox WHERE peer = :down AND state = 'dead'", down=DOWN)
        assert set(given_up[sender]) <= {row.id for row in still}
        held = corridor.query(
            DOWN,
            "SELECT id, type, status, code FROM inbox WHERE iss = :sender AND id = ANY(:ids)",
            sender=sender,
            ids=list(given_up[sender]),
        )
        assert {row.id: row.type for row in held} == given_up[sender]
        assert {(row.status, row.code) for row in held} == {("accepted", None)}, held

    # Every message each sender ever queued for KG reaches KG's inbox (a checkpoint may be queued at any time).
    def kg_holds_all() -> bool:
        for sender in SENDERS:
            queued = {row.id for row in corridor.query(sender, "SELECT id FROM outbox WHERE peer = :to", to=DOWN)}
            held = {row.id for row in corridor.query(DOWN, "SELECT id FROM inbox WHERE iss = :s", s=sender)}
            if not queued <= held:
                return False
        return True

    corridor.wait_until("KG holds every message UZ and KZ queued for it", kg_holds_all)
    pulls = [
        (match.group(1), int(match.group(2)))
        for worker in kg.workers
        for line in log_lines(worker, since=restarted_at[worker.spec.log_file])
        if (match := re.fullmatch(r"pulled \d+ message\(s\) from (\w\w) after seq (\d+)", line["msg"]))
    ]
    for sender in SENDERS:  # a pull from below the first message KG missed: the gap was filled by a pull
        assert any(peer == sender and after < first_missed[sender] for peer, after in pulls), (sender, pulls)
    assert not any(line["msg"].startswith("pulled ") for api in kg.apis for line in log_lines(api))

    # Nothing refused as unknown-type (nor refused at all), by any of the twelve processes.
    for node in nodes.values():
        for process in node.processes:
            refused = [
                line
                for line in log_lines(process)
                if line.get("reason") == "unknown-type" or line["msg"].startswith("refused message")
            ]
            assert not refused, (process.spec.log_file, refused)
        for api in node.apis:
            assert refused_by(corridor, api) == 0, api.spec.url
        assert {row.status for row in corridor.query(node.id, "SELECT DISTINCT status FROM inbox")} == {"accepted"}
        unknown = "SELECT count(*) FROM outbox WHERE last_error LIKE '%unknown message type%'"
        assert corridor.scalar(node.id, unknown) == 0, node.id  # no peer refused one of its messages as unknown

    # Two workers per node, both alive and beating; every message any node received was applied exactly once.
    for node in nodes.values():
        assert all(worker.alive for worker in node.workers), corridor.logs()
        beats = {row[0] for row in corridor.query(node.id, "SELECT worker_id FROM worker_heartbeats")}
        assert node.worker_ids() <= beats, (node.id, beats)
        applied_twice = corridor.query(
            node.id,
            "SELECT peer, msg_id, count(*) AS n FROM log_entries WHERE direction = 'received' AND kind = 'envelope' "
            "GROUP BY peer, msg_id HAVING count(*) > 1",
        )
        assert not applied_twice, (node.id, applied_twice)


def step(corridor: ProcessCorridor, node: ScaledNode, mrn: str, path: str, **fields: Any) -> None:
    body = {**fields, "at": clock.isoformat(clock.utcnow())}
    answer = call(corridor, node, "customs", "POST", f"/v1/movements/{mrn}/{path}", expect=201, json=body)
    assert answer["mrn"] == mrn


def use(corridor: ProcessCorridor, node: ScaledNode, permit: str, activity: str, office: str) -> None:
    body = {"activity": activity, "office": office, "plate": PLATE}
    answer = call(corridor, node, "customs", "POST", f"/v1/permits/{permit}/use", json=body)
    assert answer["alerts"] == [], answer
