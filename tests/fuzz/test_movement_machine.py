"""The movement state machine under random step sequences (Hypothesis stateful testing).

tests/declarations/test_state_machine.py walks chosen paths; here Hypothesis picks them: releases, cancellations,
crossings at each border post, arrival and control results, in any order and any number of times, through the API of
the nodes where officers record them, with deliveries between the nodes interleaved at random (all at once, or one
node's outbox at a time, so steps reach a node out of order).

Each action is judged against what the node showed just before it: the node accepts exactly the steps its state
allows and refuses the others with a 409 problem+json that names the movement (404 at a node that has not heard of
the movement yet, 202 when a border post keeps a crossing for a record still on its way). After every action, on
every node: the status is one of the six and is what its journey says, no step is recorded twice, the status never
moves backwards or out of a final state, and the guarantee is held exactly while the goods are on the road. When all
messages are delivered, every node that knows the movement shows the same status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.declarations.conftest import customs, declaration, guarantee, papers
from tests.fuzz.conftest import examples
from tests.support.inprocess import InProcessCorridor
from transit_window import clock
from transit_window.declarations.journey import RANK, STATUS_OF_STEP, advance
from transit_window.declarations.models import Movement

__all__ = ["customs", "guarantee", "papers"]  # fixtures
T = TypeVar("T")
PROBLEM_JSON = "application/problem+json"
STATUSES = {*RANK, "cancelled"}
FINAL = {"closed", "cancelled"}
HELD = {"released", "in_transit", "arrived"}  # the guarantee covers the goods while they are on the road
CROSSED = {"exit", "entry", "arrived", "control-results"}  # the goods seen past the office of departure
AMOUNT = "5000.00"
# The border posts of the Almaty → Ashgabat itinerary: (node, office, direction).
CROSSINGS = [
    ("KZ", "KZZHZ001", "exit"),
    ("UZ", "UZGIS001", "entry"),
    ("UZ", "UZALT001", "exit"),
    ("TM", "TMFAR001", "entry"),
]
DESTINATION = "TMASB001"


@dataclass
class View:
    """A movement as one node shows it: None when the node has not heard of it."""

    status: str | None
    steps: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Desk:
    corridor: InProcessCorridor
    customs: dict[str, dict[str, str]]
    loop: asyncio.AbstractEventLoop
    serial: int = 0


class MovementMachine(RuleBasedStateMachine):
    """One movement per run, a fresh guarantee for it, and the officers and couriers of three countries."""

    def __init__(self, desk: Desk) -> None:
        super().__init__()
        self.desk = desk
        self.mrn = ""
        self.grn = ""
        self.seen: dict[str, str] = {}  # the last status each node showed

    # --- plumbing: the machine runs in a worker thread, the nodes on the test's event loop -------------------------

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.desk.loop).result(timeout=120)

    def request(self, node: str, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        client = self.desk.corridor[node].client
        return self.run(client.request(method, path, json=body, headers=self.desk.customs[node]))

    def view(self, node: str) -> View:
        response = self.request(node, "GET", f"/v1/movements/{self.mrn}")
        if response.status_code == 404:
            return View(None)
        assert response.status_code == 200, response.text
        movement = response.json()
        return View(movement["status"], [(step["kind"], step["office"]) for step in movement["journey"]])

    def judge(self, response: httpx.Response, expected: int, before: View) -> None:
        """`expected` is what the node's state before the action allows; a refusal must say what is wrong."""
        assert response.status_code == expected, (before, response.status_code, response.text)
        if expected >= 400:
            assert response.headers["content-type"] == PROBLEM_JSON, response.headers
            problem = response.json()
            assert problem["status"] == expected and problem["title"] and problem["detail"], problem
            if expected == 409:
                assert self.mrn in problem["detail"], problem["detail"]

    # --- the movement --------------------------------------------------------------------------------------------

    @initialize()
    def declare(self) -> None:
        self.desk.serial += 1
        self.grn = f"26KZ{self.desk.serial:012d}7"
        registered = self.request(
            "KZ",
            "POST",
            "/v1/guarantees",
            {"grn": self.grn, "holder_id": "230340000126", "reference_amount": AMOUNT, "currency": "USD"},
        )
        assert registered.status_code == 201, registered.text
        body = declaration(guarantee={"grn": self.grn, "amount": AMOUNT, "currency": "USD"})
        created = self.request("KZ", "POST", "/v1/declarations", body)
        assert created.status_code == 201, created.text
        self.mrn = created.json()["mrn"]
        self.seen = {"KZ": "accepted"}

    @rule()
    def release(self) -> None:
        before = self.view("KZ")
        response = self.request("KZ", "POST", f"/v1/declarations/{self.mrn}/release")
        self.judge(response, 200 if before.status == "accepted" else 409, before)

    @rule(reason=st.sampled_from(["the buyer withdrew", "wrong truck declared", "Ошибка в декларации"]))
    def cancel(self, reason: str) -> None:
        before = self.view("KZ")
        response = self.request("KZ", "POST", f"/v1/declarations/{self.mrn}/cancel", {"reason": reason})
        self.judge(response, 200 if before.status in ("accepted", "released") else 409, before)

    @rule(post=st.sampled_from(CROSSINGS), seals_intact=st.booleans())
    def cross(self, post: tuple[str, str, str], seals_intact: bool) -> None:
        node, office, direction = post
        before = self.view(node)
        response = self.request(
            node,
            "POST",
            f"/v1/movements/{self.mrn}/crossings",
            {
                "office": office,
                "direction": direction,
                "at": clock.isoformat(clock.utcnow()),
                "seals_intact": seals_intact,
            },
        )
        if before.status is None:
            expected = 202  # kept until the record arrives; the border post has asked for it
        elif before.status in ("accepted", *FINAL) or (direction, office) in before.steps:
            expected = 409
        else:
            expected = 201
        self.judge(response, expected, before)

    @rule()
    def arrive(self) -> None:
        before = self.view("TM")
        response = self.request(
            "TM",
            "POST",
            f"/v1/movements/{self.mrn}/arrival",
            {"office": DESTINATION, "at": clock.isoformat(clock.utcnow())},
        )
        if before.status is None:
            expected = 404
        elif before.status in ("accepted", "arrived", *FINAL):
            expected = 409
        else:
            expected = 201
        self.judge(response, expected, before)

    @rule(code=st.sampled_from(["A1", "A2", "B1"]))
    def control_results(self, code: str) -> None:
        before = self.view("TM")
        response = self.request(
            "TM",
            "POST",
            f"/v1/movements/{self.mrn}/control-results",
            {"code": code, "at": clock.isoformat(clock.utcnow())},
        )
        expected = 404 if before.status is None else 201 if before.status == "arrived" else 409
        self.judge(response, expected, before)

    @rule(node=st.sampled_from(["KZ", "UZ", "TM"]))
    def deliver_from(self, node: str) -> None:
        """One node's outbox only: the others' messages stay in flight, so steps arrive out of order."""
        self.run(self.desk.corridor[node].deliver())

    @precondition(lambda self: bool(self.mrn))
    @rule()
    def deliver_everything(self) -> None:
        self.run(self.desk.corridor.deliver_all())
        views = {node: view for node in ("KZ", "UZ", "TM") if (view := self.view(node)).status is not None}
        statuses = {node: view.status for node, view in views.items()}
        assert len(set(statuses.values())) == 1, f"after every delivery the nodes disagree: {statuses}"
        journeys = {node: frozenset(view.steps) for node, view in views.items()}
        assert len(set(journeys.values())) == 1, f"after every delivery the journeys differ: {journeys}"
        if "cancelled" in statuses.values() and len({kind for kind, _ in views["KZ"].steps} & CROSSED) > 0:
            event("a cancellation crossed a crossing or arrival on the wire; every node ended cancelled")

    # --- what must hold after every action ---------------------------------------------------------------------

    @invariant()
    def every_node_is_in_a_state_its_journey_explains(self) -> None:
        if not self.mrn:
            return
        for node in ("KZ", "UZ", "TM"):
            view = self.view(node)
            if view.status is None:
                assert node != "KZ"
                continue
            assert view.status in STATUSES, view
            assert len(view.steps) == len(set(view.steps)), f"a step recorded twice at {node}: {view.steps}"
            kinds = {kind for kind, _ in view.steps}
            if "cancelled" in kinds:
                assert view.status == "cancelled", (node, view)
            else:
                furthest = max((STATUS_OF_STEP[kind] for kind in kinds), key=RANK.__getitem__, default="accepted")
                assert view.status == furthest, (node, view)
            previous = self.seen.get(node)
            if previous in FINAL:
                assert view.status == previous, f"{node} left the final state {previous} for {view.status}"
            elif previous is not None and view.status != "cancelled":
                assert RANK[view.status] >= RANK[previous], f"{node} went back from {previous} to {view.status}"
            self.seen[node] = view.status

    @invariant()
    def the_guarantee_is_held_while_the_goods_are_on_the_road(self) -> None:
        if not self.mrn:
            return
        response = self.request("KZ", "GET", f"/v1/guarantees/{self.grn}")
        assert response.status_code == 200, response.text
        held = response.json()["reserved"]
        assert held == (AMOUNT if self.seen["KZ"] in HELD else "0.00"), (self.seen["KZ"], held)


async def test_random_step_sequences_never_reach_an_invalid_state(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """`guarantee` brings the papers release asks for; each run registers a guarantee of its own."""
    del guarantee
    desk = Desk(corridor=corridor, customs=customs, loop=asyncio.get_running_loop())
    config = settings(
        max_examples=examples(8),
        stateful_step_count=12,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    await asyncio.to_thread(run_state_machine_as_test, lambda: MovementMachine(desk), settings=config)


@given(steps=st.lists(st.sampled_from(sorted(STATUS_OF_STEP)), max_size=12), data=st.data())
def test_the_status_a_node_reaches_does_not_depend_on_the_order_steps_arrive_in(
    steps: list[str], data: st.DataObject
) -> None:
    """`advance` alone: the status is the furthest step (cancelled wins), it never moves backwards, and any order of
    the same steps ends in the same status, which is what lets nodes apply messages as they come."""

    def walk(order: list[str]) -> str:
        movement = Movement(status="accepted")
        for kind in order:
            previous = movement.status
            advance(movement, kind)
            if previous == "cancelled":
                assert movement.status == "cancelled"
            elif movement.status != "cancelled":
                assert RANK[movement.status] >= RANK[previous]
        return movement.status

    expected = (
        "cancelled"
        if "cancelled" in steps
        else max((STATUS_OF_STEP[kind] for kind in steps), key=RANK.__getitem__, default="accepted")
    )
    assert walk(steps) == expected
    assert walk(data.draw(st.permutations(steps), label="another order")) == expected


async def test_a_cancellation_that_crosses_an_arrival_is_the_last_word_on_every_node(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """Found by the machine above. Ashgabat records the arrival of a released movement (no crossing is required
    first) while Almaty, not yet told, cancels it. Both facts reach every node: the journey holds the arrival and the
    cancellation, and the cancellation decides the status everywhere (the guarantee stays released, Ashgabat holds
    the goods). Before the rule each side refused the other's message (code 92) and the corridor stayed divided."""
    kz, tm = corridor["KZ"], corridor["TM"]
    created = await kz.client.post("/v1/declarations", json=declaration(), headers=customs["KZ"])
    assert created.status_code == 201, created.text
    mrn = created.json()["mrn"]
    released = await kz.client.post(f"/v1/declarations/{mrn}/release", headers=customs["KZ"])
    assert released.status_code == 200, released.text
    await corridor.deliver_all()
    arrived = await tm.client.post(
        f"/v1/movements/{mrn}/arrival",
        json={"office": DESTINATION, "at": clock.isoformat(clock.utcnow())},
        headers=customs["TM"],
    )
    assert arrived.status_code == 201, arrived.text
    cancelled = await kz.client.post(
        f"/v1/declarations/{mrn}/cancel", json={"reason": "the buyer withdrew"}, headers=customs["KZ"]
    )
    assert cancelled.status_code == 200, cancelled.text
    await corridor.deliver_all()
    for node in ("KZ", "UZ", "TM"):
        shown = await corridor[node].client.get(f"/v1/movements/{mrn}", headers=customs[node])
        assert shown.json()["status"] == "cancelled", (node, shown.json())
        assert sorted(step["kind"] for step in shown.json()["journey"]) == ["arrived", "cancelled", "released"]
    held = await kz.client.get(f"/v1/guarantees/{guarantee}", headers=customs["KZ"])
    assert held.json()["reserved"] == "0.00"
    refused = await tm.client.post(
        f"/v1/movements/{mrn}/control-results",
        json={"code": "A1", "at": clock.isoformat(clock.utcnow())},
        headers=customs["TM"],
    )
    assert refused.status_code == 409, refused.text
