"""A mixed corridor workload over HTTP: what the customs, permit authorities, e-seal gateways and forwarders of six
countries do at once, with every request's outcome and latency recorded.

A *flow* is one truck: the exporting country certifies the goods, one application at the carrier's node brings every
permit of the route, customs declare and release (the guarantee reserved), each border post records exit and entry
and uses the permit there, the destination records arrival and control results, and departure writes the movement
off. Besides flows, *side operations* report e-seal positions and read timelines, consignments, permits and
guarantees. Webhook subscriptions (customs, every event) point at a local receiver.

Requests are paced by `Pacer`: slots at a fixed rate, open loop — when no flow is waiting for a slot a new flow
starts (up to `max_flows`), so the offered rate holds whatever the latency. Nothing here retries blindly. A step
whose answer was lost (a killed node, a dropped connection, a 503) is first checked (is the crossing in the journey?
is the permit's ENTRY recorded?) and only repeated when it did not happen; declarations carry an Idempotency-Key.
So a repeated request is never what makes a count wrong, and the invariants afterwards test the nodes, not us.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import orjson

from tests.harness.wire import Answer, NodeClient, WebhookReceiver, WireError
from transit_window import clock
from transit_window.codes import OfficeDirectory, required_certificates
from transit_window.codes.permit_rules import permit_rules
from transit_window.permits.years import local_today

AMOUNT = "5000.00"
SIDE_OK = (200, 503)  # a side operation is not repeated; a 503 is judged against the database fault windows
CURRENCY = "USD"


@dataclass(frozen=True, slots=True)
class Party:
    id: str
    name: str
    country: str

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "country": self.country}


# One trader per country, with ids that pass each country's check (KZ BIN, AZ VÖEN check digits; formats elsewhere).
TRADERS = {
    "KZ": Party("230340000126", "Almaty Fruit Export LLP", "KZ"),
    "KG": Party("02203199310045", "Osh Dried Fruit Cooperative", "KG"),
    "UZ": Party("301234567", "Tashkent Metals JSC", "UZ"),
    "TJ": Party("510012345", "Khujand Cotton LLC", "TJ"),
    "TM": Party("100200300400", "Ashgabat Aluminium", "TM"),
    "AZ": Party("1400057701", "Baku Fresh Market LLC", "AZ"),
}


@dataclass(frozen=True, slots=True)
class Route:
    """A trip from the carrier's country: the carrier declares, and its node applies for the permits."""

    name: str
    itinerary: tuple[str, ...]
    hs_code: str
    description: str
    weight: int = 1

    @property
    def departure(self) -> str:
        return self.itinerary[0][:2]

    @property
    def destination(self) -> str:
        return self.itinerary[-1][:2]

    @property
    def countries(self) -> list[str]:
        return list(dict.fromkeys(office[:2] for office in self.itinerary))

    @property
    def certificates(self) -> tuple[str, ...]:
        return tuple(required_certificates(self.hs_code))

    def permits_needed(self) -> list[tuple[str, str]]:
        """(country, permit type) of every permit the carrier's country must obtain for this route."""
        needs = permit_rules().needs(carrier_country=self.departure, route=self.countries)
        return [(need.country, need.type) for need in needs if need.required]

    def steps(self) -> list[Step]:
        """Exit and entry at each border, then arrival and control results at destination."""
        steps: list[Step] = []
        for here, there in zip(self.itinerary, self.itinerary[1:], strict=False):
            if here[:2] != there[:2]:
                steps.append(Step(here[:2], "crossings", "exit", here, {"office": here, "direction": "exit"}))
                steps.append(Step(there[:2], "crossings", "entry", there, {"office": there, "direction": "entry"}))
        last = self.itinerary[-1]
        steps.append(Step(last[:2], "arrival", "arrived", last, {"office": last}))
        steps.append(Step(last[:2], "control-results", "control-results", last, {"code": "A1"}))
        return steps


@dataclass(frozen=True, slots=True)
class Step:
    country: str
    path: str  # crossings | arrival | control-results
    kind: str  # the journey step it records
    office: str
    body: dict[str, Any]


ROUTES: tuple[Route, ...] = (
    Route(
        "apples KZ→UZ→TM→AZ",
        ("KZALA001", "KZZHZ001", "UZGIS001", "UZALT001", "TMFAR001", "TMKRW001", "AZALA001", "AZBAK001"),
        "080810",
        "Fresh apples, Aport variety, in cartons",
    ),
    Route(
        "apricots KG→UZ→KZ",
        ("KGOSS001", "KGDOS001", "UZDUS001", "UZGIS001", "KZZHZ001", "KZCIT001"),
        "081310",
        "Dried apricots in jute bags",
    ),
    Route("steel KZ→KG", ("KZALA001", "KZKOR001", "KGAKZ001", "KGFRU001"), "720839", "Hot-rolled steel coils"),
    Route("copper UZ→TJ", ("UZTAS001", "UZOYB001", "TJFOT001", "TJDYU001"), "740311", "Refined copper cathodes"),
    Route(
        "cotton TJ→UZ→KG",
        ("TJKHU001", "TJFOT001", "UZOYB001", "UZDUS001", "KGDOS001", "KGOSS001"),
        "520100",
        "Raw cotton in bales",
    ),
    Route(
        "aluminium TM→UZ→KZ",
        ("TMASB001", "TMFAR001", "UZALT001", "UZGIS001", "KZZHZ001", "KZALA001"),
        "760110",
        "Unwrought aluminium ingots",
    ),
    Route("wheat AZ→KZ", ("AZBAK001", "AZALA001", "KZAAU001", "KZALA001"), "100199", "Wheat in bulk"),
)


def quotas_needed(routes: Iterable[Route]) -> list[tuple[str, str, str]]:
    """(issuer, holder, type) of every quota the routes draw on, in a stable order."""
    found = {(country, route.departure, kind) for route in routes for country, kind in route.permits_needed()}
    return sorted(found)


# -- recording -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    op: str
    node: str
    started: float  # time.monotonic()
    latency: float
    status: int | None  # None: no HTTP answer (see error)
    error: str | None
    expected: bool


@dataclass
class Recorder:
    calls: list[Call] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)  # the first few, with the answer, for the report
    outcomes: Counter[str] = field(default_factory=Counter)  # of flows: closed, permit-refused, ...
    cut_during: Counter[str] = field(default_factory=Counter)  # the step flows were at when the run ended

    def add(self, call: Call, *, detail: str = "") -> None:
        self.calls.append(call)
        if not call.expected and call.status is not None and len(self.unexpected) < 50:
            self.unexpected.append(f"{call.node} {call.op} → {call.status}: {detail[:300]}")


@dataclass(frozen=True, slots=True)
class NodeAccess:
    url: str
    tokens: dict[str, str]  # role → bearer token
    client_ids: dict[str, str] = field(default_factory=dict)  # role → client id (the device client owns the e-seals)


class Pacer:
    """Request slots at `rate` per second, open loop. A flow awaits `slot()` before each request; a slot nobody
    waits for goes to `spawn` (a new flow or a side operation), which receives it as a credit."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._credit = 0
        self.granted = 0

    async def slot(self) -> None:
        if self._credit > 0:
            self._credit -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._credit += 1  # granted just as we were cancelled: hand it on
            raise

    def waiting(self) -> int:
        return sum(1 for future in self._waiting if not future.done())

    async def run(self, stop: asyncio.Event, spawn: Callable[[bool], None]) -> None:
        """`spawn(has_waiter)` is called for every slot; it returns after deciding what to start, if anything."""
        started = time.monotonic()
        index = 0
        while not stop.is_set():
            due = started + index / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    return
            index += 1
            self.granted += 1
            spawn(self._grant_waiter_possible())

    def _grant_waiter_possible(self) -> bool:
        while self._waiting and self._waiting[0].done():
            self._waiting.popleft()
        return bool(self._waiting)

    def grant(self) -> None:
        """Give the slot to the longest-waiting flow."""
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_result(None)
                return
        self._credit += 1

    def credit(self) -> None:
        self._credit += 1


# -- the corridor as the workload sees it ----------------------------------------------------------------------------


class Corridor:
    """HTTP to the nodes as their clients (customs, permits, device, admin), every call recorded."""

    def __init__(
        self,
        access: dict[str, NodeAccess],
        *,
        recorder: Recorder,
        max_connections: int = 64,
        timeout: float = 30.0,
    ) -> None:
        self.access = access
        self.recorder = recorder
        self.clients = {
            node: NodeClient(item.url, max_connections=max_connections, timeout=timeout)
            for node, item in access.items()
        }

    def reset(self, node: str) -> None:
        self.clients[node].reset()

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()

    async def call(
        self,
        op: str,
        node: str,
        role: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        expect: Sequence[int] = (200,),
        headers: dict[str, str] | None = None,
        record: bool = True,
    ) -> Answer:
        """One request; raises `WireError` when there is no answer. Every call is recorded unless `record` is off."""
        sent = {"Authorization": f"Bearer {self.access[node].tokens[role]}", **(headers or {})}
        body = None
        if json is not None:
            body = orjson.dumps(json)
            sent["Content-Type"] = "application/json"
        started = time.monotonic()
        try:
            answer = await self.clients[node].request(method, path, headers=sent, body=body)
        except WireError as exc:
            if record:
                self.recorder.add(Call(op, node, started, time.monotonic() - started, None, str(exc), True))
            raise
        if record:
            expected = answer.status in expect
            detail = "" if expected else answer.body[:300].decode("utf-8", "replace")
            problem = answer.body[:200].decode("utf-8", "replace") if answer.status >= 500 else None
            self.recorder.add(
                Call(op, node, started, time.monotonic() - started, answer.status, problem, expected), detail=detail
            )
        return answer

    async def ok(self, node: str, role: str, method: str, path: str, **kwargs: Any) -> Any:
        """A setup or verification call that must succeed (not recorded: it is not part of the workload)."""
        answer = await self.call("setup", node, role, method, path, record=False, **kwargs)
        if answer.status >= 400:
            raise RuntimeError(f"{node} {method} {path}: {answer.status} {answer.body[:500]!r}")
        return answer.json()


# -- flows ---------------------------------------------------------------------------------------------------------


class FlowEnded(Exception):
    """The flow stops here; `outcome` says why (permit-refused, guarantee-refused, abandoned, stuck)."""

    def __init__(self, outcome: str, detail: str = "") -> None:
        super().__init__(f"{outcome}: {detail}")
        self.outcome = outcome


@dataclass
class Tracked:
    """What the workload knows of a movement it started (for side operations and the checks)."""

    mrn: str
    route: Route
    plate: str
    grn: str
    seal: str = ""  # the e-seal's number, as the declaration lists it; also its device id
    permits: dict[str, str] = field(default_factory=dict)  # issuer → permit id
    status: str = "accepted"
    seal_registered: bool = False  # the departure node's admin registered the e-seal to its device client


@dataclass
class Settings:
    rate: float = 30.0
    max_flows: int = 24
    side_share: float = 0.2  # of slots: e-seal pings and reads
    think: tuple[float, float] = (0.2, 0.6)  # seconds a truck "drives" between steps
    step_deadline: float = 180.0  # a step not done within this is given up (stuck)
    guarantees_per_node: int = 2
    movements_per_guarantee: int = 4  # reference amount = this times the movement's amount
    quota: int = 100_000
    scarce_quota: tuple[str, str, str, int] | None = ("KG", "TJ", "bilateral", 6)  # issuer, holder, type, quantity
    run_tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6].upper())
    seed: int = 1


class Workload:
    def __init__(self, corridor: Corridor, *, settings: Settings, receiver: WebhookReceiver | None = None) -> None:
        self.corridor = corridor
        self.settings = settings
        self.receiver = receiver
        self.random = random.Random(settings.seed)
        self.pacer = Pacer(settings.rate)
        self.offices = OfficeDirectory()
        self.movements: dict[str, Tracked] = {}
        self.known: list[Tracked] = []  # in order of declaration, for reads
        self.with_permits: list[Tracked] = []
        self.on_road: dict[str, Tracked] = {}  # released and not yet arrived: e-seals report these
        self.guarantees: dict[str, list[str]] = {}
        self.subscriptions: dict[str, str] = {}  # node → subscription id
        self.flows: set[asyncio.Task[None]] = set()
        self.side: set[asyncio.Task[None]] = set()
        self.doing: dict[asyncio.Task[Any], str] = {}  # flow → the step it is at
        self.started_flows = 0
        self._serial = 0
        self._accepting = True

    @property
    def recorder(self) -> Recorder:
        return self.corridor.recorder

    # -- setup -------------------------------------------------------------------------------------------------

    async def prepare(self, *, settle: Callable[[], Awaitable[None]]) -> None:
        """Quotas for every route, guarantees at every departure node, a webhook subscription per node."""
        year = clock.utcnow().year
        scarce = self.settings.scarce_quota
        for issuer, holder, kind in quotas_needed(ROUTES):
            quantity = self.settings.quota
            if scarce is not None and scarce[:3] == (issuer, holder, kind):
                quantity = scarce[3]
            # the quota year the holder's carriers apply in: their own calendar's year
            body = {"holder": holder, "year": local_today(holder).year, "type": kind, "quantity": quantity}
            await self.corridor.ok(issuer, "permits", "POST", "/v1/permits/quotas", json=body)
        reference = f"{float(AMOUNT) * self.settings.movements_per_guarantee:.2f}"
        for node in sorted({route.departure for route in ROUTES}):
            trader = TRADERS[node]  # the declarant of every movement from this node: it holds the guarantees
            for index in range(self.settings.guarantees_per_node):
                grn = f"{year % 100:02d}{node}{self.settings.run_tag}{index:06d}1"
                body = {
                    "grn": grn,
                    "holder_id": trader.id,
                    "holder_country": trader.country,
                    "reference_amount": reference,
                    "currency": CURRENCY,
                }
                await self.corridor.ok(node, "customs", "POST", "/v1/guarantees", json=body)
                self.guarantees.setdefault(node, []).append(grn)
        if self.receiver is not None:
            for node in self.corridor.access:
                created = await self.corridor.ok(
                    node,
                    "customs",
                    "POST",
                    "/v1/subscriptions",
                    json={"url": self.receiver.url(node), "description": "chaos receiver: every event"},
                    expect=(201,),
                )
                self.receiver.expect(node, secret=created["secret"])
                self.subscriptions[node] = created["id"]
        await settle()

    # -- running -----------------------------------------------------------------------------------------------

    async def run(self, *, duration: float, drain: float) -> None:
        """Offer the workload for `duration` seconds, then let running flows finish for up to `drain` seconds."""
        self.pacer = Pacer(self.settings.rate)
        self._accepting = True
        stop = asyncio.Event()
        pacer = asyncio.create_task(self.pacer.run(stop, self._on_slot))
        try:
            await asyncio.sleep(duration)
        finally:
            self._accepting = False
            # Slots keep coming while flows drain (no new flows start), so their steps still get answered.
            if self.flows:
                await asyncio.wait(set(self.flows), timeout=drain)
            stop.set()
            await pacer
            for task in [*self.flows, *self.side]:
                task.cancel()
            await asyncio.gather(*self.flows, *self.side, return_exceptions=True)

    def _on_slot(self, has_waiter: bool) -> None:
        side = self._accepting and self.random.random() < self.settings.side_share
        if not side and has_waiter:
            self.pacer.grant()
            return
        if not side and self._accepting and len(self.flows) < self.settings.max_flows:
            self.pacer.credit()
            self._start(self._flow(), self.flows)
            return
        if self._accepting:
            self._start(self._side_operation(), self.side)
        elif has_waiter:
            self.pacer.grant()

    def _start(self, coroutine: Awaitable[None], bucket: set[asyncio.Task[None]]) -> None:
        task = asyncio.ensure_future(coroutine)
        bucket.add(task)
        task.add_done_callback(bucket.discard)

    async def _paced(
        self,
        op: str,
        node: str,
        role: str,
        method: str,
        path: str,
        *,
        expect: Sequence[int],
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        await self.pacer.slot()
        return await self.corridor.call(op, node, role, method, path, json=json, expect=expect, headers=headers)

    async def attempt(
        self,
        op: str,
        node: str,
        role: str,
        method: str,
        path: str,
        *,
        ok: Sequence[int],
        json: Any = None,
        headers: dict[str, str] | None = None,
        done: Callable[[], Awaitable[bool]] | None = None,
        wait_on: Sequence[int] = (),
        conflict_means_done: bool = False,
    ) -> Answer | None:
        """One step, repeated until answered with an `ok` status. Returns None when `done` shows that an earlier,
        unanswered attempt already did it (or, with `conflict_means_done`, when a repeat is answered 409).
        `wait_on` statuses mean "not yet" (e.g. the record has not arrived)."""
        task = asyncio.current_task()
        if task is not None:
            self.doing[task] = op
        deadline = time.monotonic() + self.settings.step_deadline
        uncertain = False
        pause = 0.3
        while True:
            if uncertain and done is not None and await self._check(done):
                return None
            if time.monotonic() > deadline:
                raise FlowEnded("stuck", f"{op} at {node} not done within {self.settings.step_deadline:.0f} s")
            try:
                answer = await self._paced(
                    op, node, role, method, path, json=json, headers=headers, expect=(*ok, *wait_on, 503)
                )
            except WireError:
                uncertain = True
            else:
                if answer.status in ok:
                    return answer
                if answer.status == 503:
                    uncertain = True
                elif answer.status not in wait_on:
                    if uncertain and answer.status == 409 and conflict_means_done:
                        return None
                    if uncertain and done is not None and await self._check(done):
                        return None
                    raise FlowEnded("abandoned", f"{op} at {node}: {answer.status} {answer.body[:200]!r}")
            await asyncio.sleep(pause * (0.5 + self.random.random()))
            pause = min(pause * 1.6, 3.0)

    async def _check(self, done: Callable[[], Awaitable[bool]]) -> bool:
        """A check that itself may meet a node that is down: keep asking until it answers."""
        for _ in range(200):
            try:
                return await done()
            except WireError:
                await asyncio.sleep(0.5 + self.random.random())
        return False

    async def _journey_has(self, node: str, mrn: str, kind: str, office: str) -> bool:
        answer = await self._paced(
            "check-movement", node, "customs", "GET", f"/v1/movements/{mrn}", expect=(200, 404, 503)
        )
        if answer.status == 503:
            raise WireError("503 while checking")
        if answer.status != 200:
            return False
        return any(step["kind"] == kind and step["office"] == office for step in answer.json()["journey"])

    async def _status_is_not(self, node: str, mrn: str, status: str) -> bool:
        answer = await self._paced("check-movement", node, "customs", "GET", f"/v1/movements/{mrn}", expect=(200, 503))
        if answer.status != 200:
            raise WireError(f"{answer.status} while checking")
        return str(answer.json()["status"]) != status

    async def _permit_has(self, node: str, permit_id: str, activity: str, office: str) -> bool:
        answer = await self._paced(
            "check-permit", node, "customs", "GET", f"/v1/permits/{permit_id}", expect=(200, 503)
        )
        if answer.status != 200:
            raise WireError(f"{answer.status} while checking")
        activities = answer.json()["activities"]
        return any(item["activity"] == activity and item["office"] == office for item in activities)

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def _choose_route(self) -> Route:
        return self.random.choices(ROUTES, weights=[route.weight for route in ROUTES])[0]

    async def _flow(self) -> None:
        route = self._choose_route()
        self.started_flows += 1
        try:
            await self._truck(route, self._next_serial())
        except FlowEnded as ended:
            self.recorder.outcomes[ended.outcome] += 1
        except asyncio.CancelledError:
            self.recorder.outcomes["cut"] += 1
            task = asyncio.current_task()
            self.recorder.cut_during[self.doing.get(task, "?") if task else "?"] += 1
            raise
        else:
            self.recorder.outcomes["closed"] += 1
        finally:
            task = asyncio.current_task()
            if task is not None:
                self.doing.pop(task, None)

    async def _truck(self, route: Route, serial: int) -> None:
        home = route.departure
        trader = TRADERS[home]
        consignee = TRADERS[route.destination]
        tag = self.settings.run_tag
        plate = f"{home}{tag[:3]}{serial:05d}"
        today = local_today(home)
        documents = []
        for kind in route.certificates:
            number = f"{home}-{kind[:3].upper()}-{tag}-{serial}"
            certificate = {
                "type": kind,
                "number": number,
                "goods": [
                    {"hs_code": route.hs_code, "description": route.description, "quantity": "20000", "unit": "KGM"}
                ],
                "consignor": trader.as_dict(),
                "consignee": consignee.as_dict(),
                "destination_country": route.destination,
                "issued_at": clock.isoformat(clock.utcnow() - timedelta(minutes=5)),
            }
            await self.attempt(
                "certificate",
                home,
                "permits",
                "POST",
                "/v1/documents",
                ok=(201,),
                json=certificate,
                conflict_means_done=True,  # a number is issued once: 409 after a lost answer means it was
            )
            documents.append({"type": kind, "number": number, "country": home})
        permits: dict[str, str] = {}
        if route.permits_needed():
            permits = await self._permits(route, trader, plate, today=today)

        grn = self.random.choice(self.guarantees[home])
        seal = f"{home}-SEAL-{tag}-{serial}"  # an e-seal: the declaration's seal number is also its device id
        declaration = {
            "declarant": trader.as_dict(),
            "consignor": trader.as_dict(),
            "consignee": consignee.as_dict(),
            "carrier": trader.as_dict(),
            "vehicle": {"plate": plate, "country": home},
            "containers": [],
            "seals": [seal],
            "goods": [
                {
                    "hs_code": route.hs_code,
                    "description": route.description,
                    "packages": 100,
                    "package_type": "PK",
                    "gross_mass_kg": "20500.000",
                    "net_mass_kg": "20000.000",
                    "value": "30000.00",
                    "currency": CURRENCY,
                }
            ],
            "itinerary": list(route.itinerary),
            "guarantee": {"grn": grn, "amount": AMOUNT, "currency": CURRENCY},
            "documents": documents,
            "limit_date": (today + timedelta(days=14)).isoformat(),
        }
        key = {"Idempotency-Key": f"{tag}-{serial}"}
        declared = await self.attempt(
            "declare", home, "customs", "POST", "/v1/declarations", ok=(201,), json=declaration, headers=key
        )
        assert declared is not None
        mrn = str(declared.json()["mrn"])
        movement = Tracked(mrn=mrn, route=route, plate=plate, grn=grn, seal=seal, permits=permits)
        self.movements[mrn] = movement
        self.known.append(movement)
        if permits:
            self.with_permits.append(movement)
        await self._release(movement)
        movement.status = "released"
        self.on_road[mrn] = movement
        permit_of = dict(permits)
        for step in route.steps():
            await asyncio.sleep(self.random.uniform(*self.settings.think))
            await self._step(movement, step)
            if step.path == "crossings" and step.country in permit_of:
                activity = "ENTRY" if step.kind == "entry" else "EXIT"
                await self._use_permit(step.country, permit_of[step.country], activity, step.office, plate)
            movement.status = {"crossings": "in_transit", "arrival": "arrived"}.get(step.path, "closed")
            if movement.status not in ("released", "in_transit"):
                self.on_road.pop(mrn, None)

    async def _permits(self, route: Route, trader: Party, plate: str, *, today: date) -> dict[str, str]:
        """One application from today for as long as each issuer's quota year allows (no `valid_until`)."""
        home = route.departure
        application = {
            "carrier": {"id": trader.id, "name": trader.name},
            "plate": plate,
            "route": route.countries,
            "valid_from": today.isoformat(),
        }
        created = await self.attempt(
            "permit-application", home, "permits", "POST", "/v1/permits/applications", ok=(201,), json=application
        )
        assert created is not None
        path = f"/v1/permits/applications/{created.json()['id']}"
        deadline = time.monotonic() + self.settings.step_deadline
        pause = 0.5  # each country answers through two messages: a round trip or two of the corridor
        while True:
            await asyncio.sleep(pause * (0.75 + 0.5 * self.random.random()))
            pause = min(pause * 1.5, 3.0)
            answer = await self.attempt("permit-answers", home, "permits", "GET", path, ok=(200,))
            assert answer is not None
            shown = answer.json()
            if shown["status"] != "pending":
                break
            if time.monotonic() > deadline:
                raise FlowEnded("stuck", f"the permit application {created.json()['id']} was not answered")
        permits = {}
        for request in shown["requests"]:
            if request["status"] == "issued":
                permits[request["country"]] = str(request["permit_id"])
            elif request["status"] == "refused":
                raise FlowEnded("permit-refused", str(request["reason"]))
        return permits

    async def _release(self, movement: Tracked) -> None:
        home = movement.route.departure
        path = f"/v1/declarations/{movement.mrn}/release"
        for _ in range(15):
            answer = await self.attempt(
                "release",
                home,
                "customs",
                "POST",
                path,
                ok=(200, 409),
                done=lambda: self._status_is_not(home, movement.mrn, "accepted"),
            )
            if answer is None or answer.status == 200:
                return
            problem = answer.json() or {}
            if "cannot cover" not in str(problem.get("detail", "")):
                if await self._check(lambda: self._status_is_not(home, movement.mrn, "accepted")):
                    return  # released by an attempt whose answer was lost
                raise FlowEnded("abandoned", f"release of {movement.mrn}: {problem.get('detail')}")
            await asyncio.sleep(1.0 + self.random.random())  # the guarantee is used up: wait for write-offs
        await self.attempt(
            "cancel",
            home,
            "customs",
            "POST",
            f"/v1/declarations/{movement.mrn}/cancel",
            ok=(200,),
            json={"reason": "guarantee used up"},
            done=lambda: self._status_is_not(home, movement.mrn, "accepted"),
        )
        movement.status = "cancelled"
        raise FlowEnded("guarantee-refused", movement.mrn)

    async def _step(self, movement: Tracked, step: Step) -> None:
        body = {**step.body, "at": clock.isoformat(clock.utcnow())}
        ok = (201, 202) if step.path == "crossings" else (201,)
        # The destination must hold the record before it can record an arrival: 404 means "not yet".
        wait_on = (404,) if step.path == "arrival" else ()
        await self.attempt(
            step.path,
            step.country,
            "customs",
            "POST",
            f"/v1/movements/{movement.mrn}/{step.path}",
            ok=ok,
            json=body,
            wait_on=wait_on,
            done=lambda: self._journey_has(step.country, movement.mrn, step.kind, step.office),
        )

    async def _use_permit(self, issuer: str, permit_id: str, activity: str, office: str, plate: str) -> None:
        await self.attempt(
            "permit-use",
            issuer,
            "customs",
            "POST",
            f"/v1/permits/{permit_id}/use",
            ok=(200,),
            json={"activity": activity, "office": office, "plate": plate},
            done=lambda: self._permit_has(issuer, permit_id, activity, office),
        )

    # -- side operations ---------------------------------------------------------------------------------------

    async def _side_operation(self) -> None:
        """E-seal pings for a truck on the road, or a read someone would make; one request, no retry."""
        on_road = self.on_road
        known = self.known
        choice = self.random.random()
        try:
            if on_road and choice < 0.5:
                await self._pings(self.random.choice(list(on_road.values())))
            elif known and choice < 0.75:
                item = self.random.choice(known)
                await self.corridor.call(
                    "read-timeline",
                    item.route.departure,
                    "customs",
                    "GET",
                    f"/v1/consignments/{item.mrn}/timeline",
                    expect=SIDE_OK,
                )
            elif known and choice < 0.85:
                item = self.random.choice(known)
                await self.corridor.call(
                    "read-guarantee",
                    item.route.departure,
                    "customs",
                    "GET",
                    f"/v1/guarantees/{item.grn}",
                    expect=SIDE_OK,
                )
            elif self.with_permits and choice < 0.95:
                item = self.random.choice(self.with_permits)
                issuer, permit_id = self.random.choice(sorted(item.permits.items()))
                await self.corridor.call(
                    "read-permit", issuer, "permits", "GET", f"/v1/permits/{permit_id}", expect=SIDE_OK
                )
            else:
                node = self.random.choice(sorted(self.corridor.access))
                office = self.random.choice(self.offices.by_country(node)).code
                await self.corridor.call(
                    "read-expected", node, "customs", "GET", f"/v1/movements/expected?office={office}", expect=SIDE_OK
                )
        except WireError:
            pass

    async def _pings(self, movement: Tracked) -> None:
        """Five pings from the truck's e-seal, registered first (once) by the departure node's admin to its device
        client: a node hears a device only from the client it belongs to, on the movement it seals."""
        if not movement.seal_registered:
            node = movement.route.departure
            client_id = self.corridor.access[node].client_ids.get("device")
            if client_id is None:
                return  # no device client known: the pings would be refused
            registered = await self.corridor.call(
                "register-eseal",
                node,
                "admin",
                "PUT",
                f"/v1/devices/{movement.seal}",
                json={"client_id": client_id},
                expect=SIDE_OK,
            )
            if registered.status != 200:
                return
            movement.seal_registered = True
        itinerary = movement.route.itinerary
        index = self.random.randrange(len(itinerary) - 1)
        start = self.offices.require(itinerary[index])
        end = self.offices.require(itinerary[index + 1])
        now = clock.utcnow()
        pings = []
        for number in range(5):
            fraction = self.random.random()
            pings.append(
                {
                    "device_id": movement.seal,  # an e-seal whose id is its seal number
                    "mrn": movement.mrn,
                    "time": clock.isoformat(now - timedelta(seconds=2, milliseconds=100 * (5 - number))),
                    "lat": round(start.lat + (end.lat - start.lat) * fraction, 5),
                    "lon": round(start.lon + (end.lon - start.lon) * fraction, 5),
                    "speed": 60.0,
                    "seal_state": "closed",
                }
            )
        await self.corridor.call(
            "eseal-pings",
            movement.route.departure,
            "device",
            "POST",
            "/v1/tracking/positions",
            json={"pings": pings},
            # 409 is the departure's right answer when the arrival, recorded by the flow at this moment, reached it
            # first: the flow leaves `on_road` only once its own call returns, so a side task can still pick the truck.
            expect=(*SIDE_OK, 409),
        )


@dataclass(frozen=True, slots=True)
class OpStats:
    op: str
    count: int
    errors: int  # no answer, a 5xx, or a status the caller did not expect
    p50: float
    p95: float
    p99: float


def summarize(calls: Iterable[Call], *, since: float, until: float) -> dict[str, OpStats]:
    """Latency percentiles and errors per operation for the calls started in [since, until); key "all" for all."""
    latencies: dict[str, list[float]] = {}
    errors: Counter[str] = Counter()
    for call in calls:
        if not since <= call.started < until:
            continue
        for key in (call.op, "all"):
            latencies.setdefault(key, []).append(call.latency)
            if call.status is None or call.status >= 500 or not call.expected:
                errors[key] += 1
    return {
        op: OpStats(
            op,
            len(values),
            errors[op],
            percentile(values, 0.50),
            percentile(values, 0.95),
            percentile(values, 0.99),
        )
        for op, values in latencies.items()
    }


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]
