"""The `make demo` story, told against real node processes over HTTP only.

1. Five Central Asian nodes start with a genesis trust list signed by all five (threshold 3).
2. Azerbaijan is admitted: a version 2 signed by one member is refused; signed by the threshold it is adopted by
   Kazakhstan, announced with `corridor.trust-update`, and every node moves to version 2.
3. Every node pings every other; each delivery is shown with its verified receipt.
4. Two transit movements go end to end: apples from Almaty to Baku (KZ → UZ → TM → AZ) and dried apricots from
   Bishkek to Shymkent (KG → UZ → KZ). The apples' first release is refused for want of papers; the plant-protection
   service issues the phytosanitary certificate and ONE application at the KZ node brings the UZ and TM transit
   permits and the AZ bilateral permit, each signed by its issuer; release then passes, and each border post records
   the permit's ENTRY/EXIT as the truck crosses. Each journey is then shown as every node sees it.
5. Checkpoints are published and witnessed; every node's audit passes against its peers.

`transit-window demo --against FILE` tells steps 3 to 6 against nodes it did not start (the compose corridor in
containers: `make compose-demo`), reading their URLs and tokens from FILE (`corridor/remote.py`); step 2 needs
every signer's private key, which stays with the nodes there, so it is left out.

Then the nodes keep running for README's tour, which reads everything from `corridor.json`: each node's URL and one
client per role (the forwarder acting for the apples' declarant, so its consignments are followed on every node of the
route), and the URL and secret of the webhook receiver this process runs (`webhooks/listener.py`), which prints each
verified event under the story.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx
from rich.table import Table

from transit_window import clock
from transit_window.console import console_for
from transit_window.corridor.local import LocalCorridor
from transit_window.corridor.remote import RemoteCorridor
from transit_window.corridor.topology import COUNTRY_NAMES, plan
from transit_window.permits.years import local_today
from transit_window.protocol.keys import load_private_key
from transit_window.protocol.trust import TrustList
from transit_window.webhooks.listener import Listener
from transit_window.webhooks.signing import new_secret

CENTRAL_ASIA = ["KZ", "KG", "UZ", "TJ", "TM"]
ALL = [*CENTRAL_ASIA, "AZ"]
# The ports after --base-port the demo takes: the nodes' (base + 1 to base + 6), then its webhook receiver's.
RECEIVER_PORT_OFFSET = len(ALL) + 1
console = console_for()


class Corridor(Protocol):
    """What the story needs of a corridor: its nodes' URLs and a client per role on each. A `LocalCorridor` started
    here, or a `RemoteCorridor` read from the file of nodes someone else runs."""

    @property
    def nodes(self) -> list[str]: ...

    def url(self, node: str) -> str: ...

    def token(self, node: str, role: str = "admin") -> str: ...

    def client_id(self, node: str, role: str) -> str: ...


class Api:
    def __init__(self, corridor: Corridor) -> None:
        self.corridor = corridor
        self.http = httpx.Client(timeout=30.0)
        self.nodes = corridor.nodes

    def url(self, node: str) -> str:
        return self.corridor.url(node)

    def call(self, node: str, method: str, path: str, *, role: str = "admin", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.corridor.token(node, role)}"}
        return self.http.request(method, f"{self.url(node)}{path}", headers=headers, **kwargs)

    def ok(self, node: str, method: str, path: str, *, role: str = "admin", **kwargs: Any) -> Any:
        response = self.call(node, method, path, role=role, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{node} {method} {path}: {response.status_code} {response.text}")
        return response.json()


def _wait(what: str, predicate: Callable[[], bool], *, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with console.status(what):
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
    raise TimeoutError(f"timed out: {what}")


def admit_azerbaijan(corridor: LocalCorridor, api: Api) -> None:
    """Over the corridor, as PROTOCOL.md §2 (Governance) has it: Uzbekistan proposes version 2 (Azerbaijan admitted,
    threshold 4, the secretariat rotating from Uzbekistan), Kazakhstan and Kyrgyzstan approve through their own
    nodes' APIs, Azerbaijan (not yet a member, so its node cannot send corridor messages) signs offline and
    Uzbekistan attaches that signature; the node that then holds enough signatures adopts and spreads it."""
    az = corridor.spec("AZ")
    az_key = load_private_key(az.key_file)
    rotation = {"members": ["UZ", "KZ", "KG", "TJ", "TM", "AZ"], "starts_on": clock.utcnow().date().isoformat()}
    changes = [
        {"kind": "admit", "node": "AZ", "name": COUNTRY_NAMES["AZ"], "endpoint": az.url, "jwk": az_key.public_jwk},
        {"kind": "threshold", "threshold": 4},
        {"kind": "rotation", "secretariat": rotation},
    ]
    proposal = api.ok("UZ", "POST", "/v1/corridor/proposals", json={"changes": changes})
    pid = proposal["id"]
    console.print(f"  UZ proposes version {proposal['version']} (proposal {pid}):")
    for line in proposal["difference"]:
        console.print(f"    • {line}")

    def open_at(node: str) -> bool:
        return api.call(node, "GET", f"/v1/corridor/proposals/{pid}").status_code == 200

    _wait("waiting for KZ and KG to receive the proposal", lambda: open_at("KZ") and open_at("KG"))
    for node in ("KZ", "KG"):
        answer = api.ok(node, "POST", f"/v1/corridor/proposals/{pid}/approve")
        console.print(f"  {node}'s admin approves → signed by {', '.join(answer['proposal']['signers'])}")

    def uz_holds_both() -> bool:
        return {"KZ", "KG"} <= set(api.ok("UZ", "GET", f"/v1/corridor/proposals/{pid}")["signers"])

    _wait("waiting for UZ to receive KZ's and KG's signatures", uz_holds_both)
    offline = TrustList.from_document(proposal["document"])
    offline.sign(az_key)
    attached = api.ok("UZ", "POST", f"/v1/corridor/proposals/{pid}/signatures", json=offline.signatures[-1])
    console.print(
        f"  AZ signs offline, UZ attaches it → signed by {', '.join(attached['proposal']['signers'])}: "
        + ("[green]adopted by UZ[/green] and sent to every member" if attached["adopted"] else "not yet adopted")
    )

    def everyone_on_v2() -> bool:
        versions = {node: api.ok(node, "GET", "/v1/admin/status")["trust_version"] for node in ALL}
        return all(version == 2 for version in versions.values())

    _wait("waiting for every node to accept version 2", everyone_on_v2)
    chair = api.ok("KZ", "GET", "/v1/corridor/secretariat")
    console.print(
        f"  every node now trusts version 2 (six members, threshold 4); the secretariat: {chair['chair']} since "
        f"{chair['since'][:10]}, then {chair['next']} from {chair['until'][:10]}"
    )


def ping_everyone(api: Api) -> None:
    sent: dict[tuple[str, str], str] = {}
    for node in api.nodes:
        result = api.ok(node, "POST", "/v1/admin/pings", json={"note": f"salem from {node}"})
        for peer, message_id in result["messages"].items():
            sent[(node, peer)] = message_id

    def all_delivered() -> bool:
        return all(
            not api.ok(node, "GET", "/v1/admin/outbox", params={"state": "pending", "limit": 1})["items"]
            for node in api.nodes
        )

    _wait(f"delivering {len(sent)} pings", all_delivered)
    table = Table("from", "to", "message", "receipt", "latency")
    for node in api.nodes:
        items = api.ok(node, "GET", "/v1/admin/outbox", params={"limit": 100})["items"]
        by_id = {item["id"]: item for item in items}
        for peer in api.nodes:
            if peer == node:
                continue
            item = by_id[sent[(node, peer)]]
            latency = _seconds(item["created_at"], item["delivered_at"])
            status = item["receipt_status"] or item["state"]
            colour = "green" if status == "accepted" else "red"
            table.add_row(
                node,
                peer,
                item["id"][:13] + "…",
                f"[{colour}]{status}[/{colour}] (signed by {peer})",
                f"{latency * 1000:.0f} ms",
            )
    console.print(table)


def _seconds(start: str, end: str | None) -> float:
    from transit_window.clock import parse

    if end is None:
        return float("nan")
    return (parse(end) - parse(start)).total_seconds()


def audit_everyone(api: Api) -> bool:
    for node in api.nodes:
        api.ok(node, "POST", "/v1/admin/checkpoints")

    def checkpoints_delivered() -> bool:
        return all(
            not api.ok(node, "GET", "/v1/admin/outbox", params={"state": "pending", "limit": 1})["items"]
            for node in api.nodes
        )

    _wait("delivering checkpoints to the witnesses", checkpoints_delivered)
    table = Table("node", "log entries", "head", "witnessed by", "audit")
    all_ok = True
    for node in api.nodes:
        report = api.ok(node, "GET", "/v1/admin/audit")
        witnesses = ", ".join(f"{peer}:{count}" for peer, count in sorted(report["witnessed"].items()) if count)
        verdict = "[green]ok[/green]" if report["ok"] else f"[red]{'; '.join(report['problems'])}[/red]"
        all_ok = all_ok and report["ok"]
        table.add_row(node, str(report["size"]), report["head"][:16] + "…", witnesses, verdict)
    console.print(table)
    return all_ok


DECLARANT = "230340000126"  # Almaty Fruit Export LLP: the demo's forwarder acts for it on every node
APPLES_TO_BAKU = {
    "declarant": {"id": DECLARANT, "name": "Almaty Fruit Export LLP", "country": "KZ"},
    "consignor": {"id": "230340000126", "name": "Almaty Fruit Export LLP", "country": "KZ"},
    "consignee": {"id": "1400057701", "name": "Baku Fresh Market LLC", "country": "AZ"},
    "carrier": {"id": "230340000126", "name": "Almaty Fruit Export LLP", "country": "KZ"},
    "vehicle": {"plate": "123 ABC 02", "country": "KZ", "trailer_plate": "45 TRL 02"},
    "containers": ["CSQU3054383"],
    "seals": ["KZ-SEAL-000731"],
    "goods": [
        {
            "hs_code": "080810",
            "description": "Fresh apples, Aport variety, in cartons",
            "packages": 1400,
            "package_type": "CT",
            "gross_mass_kg": "19600.000",
            "net_mass_kg": "18200.000",
            "value": "23660.00",
            "currency": "USD",
        }
    ],
    "itinerary": ["KZALA001", "KZZHZ001", "UZGIS001", "UZALT001", "TMFAR001", "TMKRW001", "AZALA001", "AZBAK001"],
    "guarantee": {"grn": "26KZ0000000001234", "amount": "5000.00", "currency": "USD"},
    "documents": [{"type": "phytosanitary", "number": "KZ-PHY-2026-004417", "country": "KZ"}],
}
APRICOTS_TO_SHYMKENT = {
    "declarant": {"id": "02203199310045", "name": "Osh Dried Fruit Cooperative", "country": "KG"},
    "consignor": {"id": "02203199310045", "name": "Osh Dried Fruit Cooperative", "country": "KG"},
    "consignee": {"id": "230340000126", "name": "Almaty Fruit Export LLP (Shymkent branch)", "country": "KZ"},
    "carrier": {"id": "02203199310045", "name": "Osh Dried Fruit Cooperative", "country": "KG"},
    "vehicle": {"plate": "01 KG 777 ABC", "country": "KG"},
    "containers": [],
    "seals": ["KG-SEAL-118204"],
    "goods": [
        {
            "hs_code": "081310",
            "description": "Dried apricots, sun-dried, in jute bags",
            "packages": 400,
            "package_type": "BG",
            "gross_mass_kg": "10200.000",
            "net_mass_kg": "10000.000",
            "value": "41000.00",
            "currency": "USD",
        }
    ],
    "itinerary": ["KGFRU001", "KGOSS001", "KGDOS001", "UZDUS001", "UZGIS001", "KZZHZ001", "KZCIT001"],
    "guarantee": {"grn": "26KG0000000000421", "amount": "8000.00", "currency": "USD"},
    "documents": [{"type": "phytosanitary", "number": "KG-PHY-2026-000913", "country": "KG"}],
}
# (country doing it, path, body) — the border posts of the route, in order, then destination.
APPLE_STEPS = [
    ("KZ", "crossings", {"office": "KZZHZ001", "direction": "exit"}),
    ("UZ", "crossings", {"office": "UZGIS001", "direction": "entry"}),
    ("UZ", "crossings", {"office": "UZALT001", "direction": "exit"}),
    ("TM", "crossings", {"office": "TMFAR001", "direction": "entry"}),
    ("TM", "crossings", {"office": "TMKRW001", "direction": "exit", "remarks": "ferry to Alat"}),
    ("AZ", "crossings", {"office": "AZALA001", "direction": "entry"}),
    ("AZ", "arrival", {"office": "AZBAK001"}),
    ("AZ", "control-results", {"code": "A1"}),
]
APRICOT_STEPS = [
    ("KG", "crossings", {"office": "KGDOS001", "direction": "exit"}),
    ("UZ", "crossings", {"office": "UZDUS001", "direction": "entry"}),
    ("UZ", "crossings", {"office": "UZGIS001", "direction": "exit"}),
    ("KZ", "crossings", {"office": "KZZHZ001", "direction": "entry"}),
    ("KZ", "arrival", {"office": "KZCIT001"}),
    ("KZ", "control-results", {"code": "A1"}),
]


def _customs(api: Api, node: str, method: str, path: str, **kwargs: Any) -> Any:
    return api.ok(node, method, path, role="customs", **kwargs)


def _permits(api: Api, node: str, method: str, path: str, **kwargs: Any) -> Any:
    """As the permit authority (role `permits`) of `node`."""
    return api.ok(node, method, path, role="permits", **kwargs)


# Yearly quotas the transit and destination countries grant the carriers' countries (issuer, holder, type, quantity).
QUOTAS = [("UZ", "KZ", "transit", 500), ("TM", "KZ", "transit", 300), ("AZ", "KZ", "bilateral", 200)]
QUOTAS += [("UZ", "KG", "transit", 400)]


def grant_quotas(api: Api) -> None:
    """For the quota year the holders' carriers apply in today (each country's own calendar: `permits/years.py`)."""
    year = local_today("KZ").year
    for issuer, holder, kind, quantity in QUOTAS:
        body = {"holder": holder, "year": local_today(holder).year, "type": kind, "quantity": quantity}
        _permits(api, issuer, "POST", "/v1/permits/quotas", json=body)
    _wait("sharing quotas", lambda: _settled(api, api.nodes))
    table = Table("issuer", "for carriers of", "type", str(year), "remaining (as the holder sees it)")
    for issuer, holder, kind, quantity in QUOTAS:
        seen = _permits(api, holder, "GET", "/v1/permits/quotas")["items"]
        mine = next(q for q in seen if (q["issuer"], q["type"]) == (issuer, kind))
        table.add_row(issuer, holder, kind, str(quantity), str(mine["remaining"]))
    console.print(table)


def issue_certificate(api: Api, body: dict[str, Any]) -> None:
    """The exporting country's plant-protection service certifies the goods (role `permits` of that node)."""
    [reference] = [ref for ref in body["documents"] if ref["type"] == "phytosanitary"]
    country = reference["country"]
    certificate = {
        "type": "phytosanitary",
        "number": reference["number"],
        "goods": [
            {"hs_code": g["hs_code"], "description": g["description"], "quantity": g["net_mass_kg"], "unit": "KGM"}
            for g in body["goods"]
        ],
        "consignor": body["consignor"],
        "consignee": body["consignee"],
        "destination_country": body["itinerary"][-1][:2],
        "issued_at": clock.isoformat(clock.utcnow() - timedelta(hours=2)),
    }
    issued = api.call(country, "POST", "/v1/documents", role="permits", json=certificate)
    if issued.status_code == 409:  # told before against these nodes: the certificate issued then still holds
        console.print(f"    {country} has issued phytosanitary certificate {reference['number']} before")
        return
    if issued.status_code >= 400:
        raise RuntimeError(f"{country} POST /v1/documents: {issued.status_code} {issued.text}")
    console.print(
        f"    {country} issues phytosanitary certificate {issued.json()['number']} for HS {body['goods'][0]['hs_code']}"
    )


def apply_for_permits(api: Api, body: dict[str, Any]) -> dict[str, str]:
    """One application at the carrier's node; returns issuer → permit id."""
    home = body["carrier"]["country"]
    route = list(dict.fromkeys(office[:2] for office in body["itinerary"]))
    today = local_today(home)  # in the carrier's calendar; no valid_until: as long as each issuer's year allows
    application = _permits(
        api,
        home,
        "POST",
        "/v1/permits/applications",
        json={
            "carrier": {"id": body["carrier"]["id"], "name": body["carrier"]["name"]},
            "plate": body["vehicle"]["plate"],
            "trailer_plate": body["vehicle"].get("trailer_plate"),
            "route": route,
            "valid_from": today.isoformat(),
        },
    )
    path = f"/v1/permits/applications/{application['id']}"
    _wait(
        "asking each country on the route",
        lambda: _permits(api, home, "GET", path)["status"] != "pending" and _settled(api, api.nodes),
    )
    answered = _permits(api, home, "GET", path)
    console.print(f"    one application at {home} for truck {answered['plate']} ({' → '.join(route)}):")
    table = Table("country", "needs", "answer", "permit", "signed with key")
    permits: dict[str, str] = {}
    for request in answered["requests"]:
        kid = "-"
        if request["permit_id"]:
            permits[request["country"]] = request["permit_id"]
            permit = _permits(api, home, "GET", f"/v1/permits/{request['permit_id']}")
            verdict = _permits(api, home, "POST", "/v1/permits/verify", json={"token": permit["token"]})
            kid = f"{request['country']} {verdict['kid'][:12]}… ({verdict['result']})"
        table.add_row(
            request["country"], request["type"], request["status"], request["permit_id"] or request["reason"], kid
        )
    console.print(table)
    return permits


def refused_release(api: Api, node: str, mrn: str) -> None:
    response = api.call(node, "POST", f"/v1/declarations/{mrn}/release", role="customs")
    if response.status_code != 409:
        raise RuntimeError(f"release of {mrn} without papers answered {response.status_code}: {response.text}")
    console.print(f"    release refused ([red]409[/red] {response.headers['content-type']}): what is missing —")
    for item in response.json()["missing"]:
        console.print(f"      • {item['kind']} {item['type']} ({item['country']}): {item['detail']}")


def _settled(api: Api, nodes: list[str]) -> bool:
    return all(
        not api.ok(node, "GET", "/v1/admin/outbox", params={"state": "pending", "limit": 1})["items"] for node in nodes
    )


def register_eseal(api: Api, *, device: str, seal: str) -> None:
    """Kazakhstan's admin registers the e-seal to the node's device client (the gateway), with the seal number it
    carries: from then on the node hears that device from that client only, on a movement that lists that seal."""
    body = {"client_id": api.corridor.client_id("KZ", "device"), "seal_id": seal}
    api.ok("KZ", "PUT", f"/v1/devices/{device}", json=body)
    console.print(f"    e-seal {device} (seal {seal}) registered to Kazakhstan's e-seal gateway")


def eseal_track(api: Api, mrn: str, *, seal: str) -> None:
    """The e-seal gateway of Kazakhstan reports the truck from Almaty towards Zhibek Zholy, with a detour of about
    70 km to the south that the route-deviation rule catches. The pings are dated after the release, the story's
    hours pressed into the seconds since: a detour dated before the truck left (as it once was) put the alert
    before the release on every timeline."""
    register_eseal(api, device="ESEAL-KZ-0042", seal=seal)
    journey = _customs(api, "KZ", "GET", f"/v1/movements/{mrn}")["journey"]
    released = clock.parse(next(step["at"] for step in journey if step["kind"] == "released"))
    start, end = (43.24, 76.89), (41.38, 69.12)
    now = clock.utcnow()
    pings = []
    for index in range(30):
        fraction = index / 30
        lat = start[0] + (end[0] - start[0]) * fraction
        lon = start[1] + (end[1] - start[1]) * fraction
        if 12 <= index <= 15:
            lat -= 0.65  # the detour
        pings.append(
            {
                "device_id": "ESEAL-KZ-0042",
                "seal_id": seal,
                "time": clock.isoformat(released + (now - released) * (index + 1) / 31),
                "lat": round(lat, 5),
                "lon": round(lon, 5),
                "speed": 68.0,
                "seal_state": "closed",
            }
        )
    response = api.call("KZ", "POST", "/v1/tracking/positions", role="device", json={"pings": pings})
    if response.status_code >= 400:
        raise RuntimeError(f"KZ positions: {response.status_code} {response.text}")
    result = response.json()
    rules = ", ".join(alert["rule"] for alert in result["alerts"]) or "none"
    console.print(f"    e-seal ESEAL-KZ-0042 reported {result['stored']} positions; alerts raised: [red]{rules}[/red]")


def run_movement(
    api: Api,
    *,
    title: str,
    body: dict[str, Any],
    steps: list[tuple[str, str, dict[str, Any]]],
    before_release: Callable[[str], dict[str, str]] | None = None,
    after_release: Callable[[str], None] | None = None,
) -> str:
    departure = body["itinerary"][0][:2]
    grn = body["guarantee"]["grn"]
    guarantee = {  # the declarant holds the guarantee it names (a guarantee belongs to its holder)
        "grn": grn,
        "holder_id": body["declarant"]["id"],
        "holder_country": body["declarant"]["country"],
        "reference_amount": "50000.00",
        "currency": "USD",
    }
    registered = api.call(departure, "POST", "/v1/guarantees", role="customs", json=guarantee)
    if registered.status_code == 409:  # told before against these nodes (`demo --against` again): it stands
        console.print(f"  guarantee {grn} already registered at {departure} (the story was told here before)")
    elif registered.status_code >= 400:
        raise RuntimeError(f"{departure} POST /v1/guarantees: {registered.status_code} {registered.text}")
    declaration = {**body, "limit_date": (clock.utcnow().date() + timedelta(days=14)).isoformat()}
    accepted = _customs(api, departure, "POST", "/v1/declarations", json=declaration)
    mrn = str(accepted["mrn"])
    console.print(f"  [bold]{title}[/bold]: declared at {body['itinerary'][0]} → MRN {mrn} ({accepted['status']})")
    permits = before_release(mrn) if before_release is not None else {}
    released = _customs(api, departure, "POST", f"/v1/declarations/{mrn}/release")
    route = sorted({office[:2] for office in body["itinerary"]})
    page = f"{api.url(departure)}/track/{released['tracking_code']}"
    console.print(f"    tracking page for the forwarder: [link={page}]{page}[/link]")
    _wait("sharing the anticipated record along the route", lambda: _settled(api, route))
    console.print(
        f"    {departure} released it; transit.anticipated delivered to {', '.join(c for c in route if c != departure)}"
    )
    if after_release is not None:
        after_release(mrn)
        _wait("sharing alerts along the route", lambda: _settled(api, route))
    for country, path, step in steps:
        payload = {**step, "at": clock.isoformat(clock.utcnow())}
        answer = _customs(api, country, "POST", f"/v1/movements/{mrn}/{path}", json=payload)
        where = step.get("office", "destination")
        what = step.get("direction") or path
        console.print(f"    {country} records {what} at {where} → {answer['status']}")
        if path == "crossings" and country in permits:
            activity = "ENTRY" if step["direction"] == "entry" else "EXIT"
            use = {"activity": activity, "office": step["office"], "plate": body["vehicle"]["plate"]}
            used = _customs(api, country, "POST", f"/v1/permits/{permits[country]}/use", json=use)
            console.print(
                f"      {country} border uses permit {permits[country]}: {activity} → {used['permit']['status']}"
            )
        _wait(f"delivering {what}", lambda: _settled(api, route))
    return mrn


def show_journeys(api: Api, mrn: str, countries: list[str]) -> None:
    table = Table("seen by", "status", "journey (step @ office, signed by)")
    for country in countries:
        movement = _customs(api, country, "GET", f"/v1/movements/{mrn}")
        steps = ", ".join(f"{s['kind']}@{s['office']}/{s['signed_by']}" for s in movement["journey"])
        table.add_row(country, movement["status"], steps)
    console.print(table)


def obtain_papers(api: Api, body: dict[str, Any]) -> dict[str, str]:
    """The certificate the goods need and the carrier's permits for the route (quotas must be granted)."""
    issue_certificate(api, body)
    return apply_for_permits(api, body)


def papers_for(api: Api, body: dict[str, Any], *, show_refusal: bool) -> Callable[[str], dict[str, str]]:
    """What happens between declaring and releasing: (a refused first try), the certificate, the permits."""

    def obtain(mrn: str) -> dict[str, str]:
        departure = body["itinerary"][0][:2]
        if show_refusal:
            refused_release(api, departure, mrn)
        return obtain_papers(api, body)

    return obtain


def transit_story(api: Api) -> None:
    console.print("  Permit quotas granted for this year:")
    grant_quotas(api)
    apples = run_movement(
        api,
        title="Apples, Almaty → Baku (KZ → UZ → TM → AZ)",
        body=APPLES_TO_BAKU,
        steps=APPLE_STEPS,
        before_release=papers_for(api, APPLES_TO_BAKU, show_refusal=True),
        after_release=lambda mrn: eseal_track(api, mrn, seal="KZ-SEAL-000731"),
    )
    apricots = run_movement(
        api,
        title="Dried apricots, Bishkek → Shymkent (KG → UZ → KZ)",
        body=APRICOTS_TO_SHYMKENT,
        steps=APRICOT_STEPS,
        before_release=papers_for(api, APRICOTS_TO_SHYMKENT, show_refusal=False),
    )
    console.print("  Each movement's journey as every node on its route sees it:")
    show_journeys(api, apples, ["KZ", "UZ", "TM", "AZ"])
    show_journeys(api, apricots, ["KG", "UZ", "KZ"])
    events = _customs(api, "AZ", "GET", f"/v1/consignments/{apples}/timeline")["events"]
    alerts = [event for event in events if event["step"] in ("alert", "seal-opened")]
    for alert in alerts:
        console.print(
            f"  On Azerbaijan's timeline: [red]{alert['details'].get('rule', alert['step'])}[/red] alert signed by "
            f"{alert['signedBy']} ({alert['verification']}) at {alert['eventTime']}"
        )


def show_metrics(api: Api) -> None:
    """What an operator's Prometheus would scrape after the story: deliveries, movements and inbox outcomes."""
    from prometheus_client.parser import text_string_to_metric_families

    table = Table("node", "deliveries", "inbox accepted", "movements (role/status)", "delivery latencies")
    for node in api.nodes:
        text = api.http.get(f"{api.url(node)}/metrics").text
        sums: dict[str, float] = {}
        movements = []
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "tw_deliveries_total":
                    sums["deliveries"] = sums.get("deliveries", 0) + sample.value
                elif sample.name == "tw_inbox_messages_total" and sample.labels.get("outcome") == "accepted":
                    sums["accepted"] = sums.get("accepted", 0) + sample.value
                elif sample.name == "tw_movements" and sample.value:
                    movements.append(f"{sample.labels['role']}/{sample.labels['status']}={sample.value:.0f}")
                elif sample.name == "tw_delivery_latency_seconds_count":
                    sums["latency_count"] = sums.get("latency_count", 0) + sample.value
        table.add_row(
            node,
            f"{sums.get('deliveries', 0):.0f}",
            f"{sums.get('accepted', 0):.0f}",
            ", ".join(movements) or "-",
            f"{sums.get('latency_count', 0):.0f} observed",
        )
    console.print(table)


def webhook_receiver(port: int) -> Listener:
    """The receiver README's tour subscribes (`transit-window webhooks listen` in this process): each verified event
    is printed under the story. Its secret goes to corridor.json only, never to the screen."""
    return Listener(
        secret=new_secret(),
        port=port,
        out=lambda line: console.print(f"  webhook ← {line}", markup=False, highlight=False),
    )


def tell_story(api: Api) -> bool:
    """Steps 3 to 6, the same on local processes and on nodes someone else runs; True when every audit is ok."""
    console.print("[bold]3.[/bold] Every node pings every other node")
    ping_everyone(api)
    console.print(
        "[bold]4.[/bold] Two transit movements: papers (certificate, permits through one application), "
        "release, the route"
    )
    transit_story(api)
    console.print("[bold]5.[/bold] Checkpoints witnessed by peers; audit of every node")
    ok = audit_everyone(api)
    console.print("[bold]6.[/bold] What /metrics shows an operator now")
    show_metrics(api)
    console.rule("[bold green]story complete" if ok else "[bold red]audit failed")
    return ok


def run_demo(*, folder: Path, base_port: int, exit_after: bool, wait: Callable[[Callable[[], None]], None]) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    receiver = webhook_receiver(base_port + RECEIVER_PORT_OFFSET)  # 8107 with the default 8100
    receiver.start()
    corridor = LocalCorridor(
        specs=plan(ALL, base_port=base_port, folder=folder),
        folder=folder,
        members=CENTRAL_ASIA,
        threshold=3,
        # the tour's subscriptions go to the receiver on loopback, which a node refuses unless the operator allows
        extra_env={"TW_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"},
        forwarder_party=DECLARANT,
        manifest_extra={"webhook_receiver": {"url": receiver.url, "secret": receiver.secret}},
    )
    console.rule("[bold]Digital Transit Corridor: the signed protocol")
    console.print("Preparing six nodes: keys (Ed25519, 0600), databases (SQLite, migrated), demo clients…")
    api: Api | None = None
    try:
        corridor.prepare()
        api = Api(corridor)
        corridor.start()
        console.print(
            f"[bold]1.[/bold] Five nodes share genesis trust list version 1 (sha256 {corridor.genesis_sha256[:16]}…), "
            "threshold 3; Azerbaijan's node runs but is not yet a member"
        )
        console.print("[bold]2.[/bold] Admitting Azerbaijan")
        admit_azerbaijan(corridor, api)
        ok = tell_story(api)
        for spec in corridor.specs:
            console.print(f"  {spec.id} {COUNTRY_NAMES[spec.id]:<13} {spec.url}  (log {spec.log_file})")
        console.print(
            f"Demo clients (one token per role per node, the forwarder acting for {DECLARANT}, the e-seal gateway's "
            f"client id) and the webhook receiver {receiver.url} with its secret: {corridor.manifest}"
        )
        if not ok:
            raise SystemExit(1)
        if exit_after:
            return
        console.print("Nodes keep running; press Ctrl-C to stop them. README's tour runs against them now.")
        wait(lambda: None)
    finally:
        corridor.stop()
        receiver.stop()
        if api is not None:
            api.http.close()


def run_against(manifest: Path, *, ready_within: float = 120.0) -> None:
    """The story against running nodes (`demo --against FILE`): the compose corridor in containers, or any corridor
    whose URLs and tokens FILE holds. Exits 1 when an audit fails."""
    corridor = RemoteCorridor.load(manifest)
    console.rule("[bold]Digital Transit Corridor: the signed protocol, against running nodes")
    corridor.wait_ready(timeout=ready_within)
    api = Api(corridor)
    try:
        current = TrustList.from_json(api.call(corridor.nodes[0], "GET", "/v1/corridor/trust-list").content)
        members = ", ".join(member.node for member in current.body.members)
        console.print(
            f"[bold]1.[/bold] {len(corridor.nodes)} nodes ready ({', '.join(corridor.nodes)}), trust list version "
            f"{current.body.version} (sha256 {current.sha256[:16]}…): members {members}, threshold "
            f"{current.body.threshold}"
        )
        console.print(
            "[bold]2.[/bold] (admitting a member needs the signers' keys, which stay with the nodes: deploy/README.md, "
            "'Trust-list ceremonies')"
        )
        ok = tell_story(api)
        for node in corridor.nodes:
            console.print(f"  {node} {COUNTRY_NAMES.get(node, node):<13} {corridor.url(node)}")
        if not ok:
            raise SystemExit(1)
    finally:
        api.http.close()
