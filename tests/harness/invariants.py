"""What must hold on a corridor after any amount of faults, checked from the nodes' own databases once it is quiet.

Each check reads every node's tables directly (read-only, after the run) and answers ok or not with a sentence and
the numbers behind it. The checks know nothing of how the faults were made; they compare what each side holds:
- every message one node sent was stored and applied exactly once by its receiver, with the receipt the sender
  holds — or is dead-lettered with a reason;
- every movement has the same status and journey on every node of its route, and no step waits for its record;
- no guarantee reserves more than its reference amount (and it reserves exactly the open movements' amounts);
- no quota issued more permits than its quantity (and the permits issued are exactly the quota's count), and the
  issuer and the carrier's country agree on each permit's use;
- every tracking event was queued once for the subscription and delivered, and the receiver saw each delivery id.
The HTTP-level checks (no 5xx but 503 while a database was down) work on the recorded calls and fault windows.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from tests.harness.wire import Hook
from tests.harness.workload import Call

OPEN = ("released", "in_transit", "arrived")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Window:
    """A fault on one node, from its start to the moment the node (or its database) served again."""

    kind: str
    node: str
    started: float
    ended: float


async def _rows(dsn: str, sql: str, *args: Any) -> list[Any]:
    connection = await asyncpg.connect(dsn, timeout=30)
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()


async def messages(dsns: dict[str, str]) -> tuple[list[Check], dict[str, int]]:
    """Outbox rows of every sender against the inbox and the log of every receiver, by message id."""
    sent: dict[str, list[Any]] = {}
    received: dict[str, dict[tuple[str, str], Any]] = {}
    applied_twice: dict[str, list[Any]] = {}
    logged: dict[str, dict[tuple[str, str], int]] = {}
    for node, dsn in dsns.items():
        sent[node] = await _rows(
            dsn,
            "SELECT id, peer, type, state, receipt_status, receipt_code, md5(receipt) AS receipt, last_error "
            "FROM outbox",
        )
        received[node] = {
            (row["iss"], row["id"]): row
            for row in await _rows(dsn, "SELECT iss, id, type, status, code, md5(receipt) AS receipt FROM inbox")
        }
        counts = await _rows(
            dsn,
            "SELECT peer, msg_id, count(*) AS n FROM log_entries WHERE direction = 'received' AND kind = 'envelope' "
            "GROUP BY peer, msg_id",
        )
        logged[node] = {(row["peer"], row["msg_id"]): int(row["n"]) for row in counts}
        applied_twice[node] = [row for row in counts if row["n"] != 1]

    states: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    missing: list[str] = []
    receipt_mismatch: list[str] = []
    unexplained_dead: list[str] = []
    duplicates: list[str] = []
    for sender, rows in sent.items():
        for row in rows:
            states[row["state"]] += 1
            if row["receipt_status"] == "duplicate":
                duplicates.append(f"{sender}→{row['peer']} {row['id']}")
            if row["state"] == "dead":
                if not row["last_error"]:
                    unexplained_dead.append(f"{sender}→{row['peer']} {row['id']}")
                continue
            if row["state"] not in ("delivered", "rejected"):
                continue
            if row["state"] == "rejected":
                rejected[f"{row['type']} {row['receipt_code']}"] += 1
            peer_row = received.get(row["peer"], {}).get((sender, row["id"]))
            if peer_row is None:
                missing.append(f"{sender}→{row['peer']} {row['type']} {row['id']}")
            elif peer_row["receipt"] != row["receipt"]:
                receipt_mismatch.append(f"{sender}→{row['peer']} {row['id']}")
    sent_ids = {(sender, row["peer"], row["id"]) for sender, rows in sent.items() for row in rows}
    unsent = [
        f"{iss}→{receiver} {message_id}"
        for receiver, rows in received.items()
        for (iss, message_id) in rows
        if (iss, receiver, message_id) not in sent_ids
    ]
    unlogged = [
        f"{iss}→{receiver} {message_id}"
        for receiver, rows in received.items()
        for (iss, message_id) in rows
        if logged[receiver].get((iss, message_id), 0) != 1
    ]
    twice = [
        f"{node}: {row['peer']} {row['msg_id']} x{row['n']}" for node, rows in applied_twice.items() for row in rows
    ]
    total = sum(states.values())
    checks = [
        Check(
            "every message sent is delivered or dead-lettered with a reason",
            states["pending"] == 0 and not unexplained_dead,
            f"{total:,} sent: {states['delivered']:,} delivered, {states['rejected']:,} refused by a handler, "
            f"{states['dead']:,} dead-lettered, {states['pending']:,} still pending"
            + (f"; dead without a reason: {unexplained_dead[:3]}" if unexplained_dead else ""),
        ),
        Check(
            "every delivered message is held once by its receiver, with the sender's receipt",
            not missing and not receipt_mismatch and not unsent and not duplicates,
            f"{sum(len(rows) for rows in received.values()):,} inbox rows; missing at receiver {len(missing)}, "
            f"receipt differs {len(receipt_mismatch)}, held but never sent {len(unsent)}, id reused {len(duplicates)}"
            + _examples(missing + receipt_mismatch + unsent + duplicates),
        ),
        Check(
            "every message was applied exactly once (receiver's log)",
            not twice and not unlogged,
            f"applied more than once: {len(twice)}; inbox rows without exactly one log entry: {len(unlogged)}"
            + _examples(twice + unlogged),
        ),
    ]
    if rejected:
        reasons = ", ".join(f"{key} x{count}" for key, count in rejected.most_common(6))
        checks.append(Check("refusals by handlers (signed rejected receipts)", True, reasons))
    return checks, {"messages": total, "dead": states["dead"], "rejected": states["rejected"]}


async def movements(dsns: dict[str, str]) -> tuple[list[Check], dict[str, int]]:
    held: dict[str, dict[str, Any]] = {}
    journeys: dict[str, dict[str, set[tuple[str, str, str, str]]]] = {}
    waiting: dict[str, int] = {}
    for node, dsn in dsns.items():
        held[node] = {row["mrn"]: row for row in await _rows(dsn, "SELECT mrn, role, status, countries FROM movements")}
        steps: dict[str, set[tuple[str, str, str, str]]] = defaultdict(set)
        for row in await _rows(dsn, "SELECT mrn, kind, office, signed_by, at FROM movement_steps"):
            steps[row["mrn"]].add((row["kind"], row["office"], row["signed_by"], row["at"].isoformat()))
        journeys[node] = steps
        waiting[node] = int((await _rows(dsn, "SELECT count(*) AS n FROM pending_steps"))[0]["n"])
    departures = {
        mrn: (node, row) for node, rows in held.items() for mrn, row in rows.items() if row["role"] == "departure"
    }
    problems: list[str] = []
    statuses: Counter[str] = Counter()
    copies = 0
    for mrn, (home, row) in sorted(departures.items()):
        statuses[row["status"]] += 1
        countries = _countries(row["countries"])
        if not any(step[0] == "released" for step in journeys[home].get(mrn, set())):
            continue  # never released (still accepted, or cancelled before release): the route has not heard of it
        for country in countries:
            if country == home or country not in held:
                continue
            copy = held[country].get(mrn)
            if copy is None:
                problems.append(f"{mrn}: {country} does not hold it")
                continue
            copies += 1
            if copy["status"] != row["status"]:
                problems.append(f"{mrn}: {home} says {row['status']}, {country} says {copy['status']}")
            if journeys[country].get(mrn, set()) != journeys[home].get(mrn, set()):
                only_home = journeys[home].get(mrn, set()) - journeys[country].get(mrn, set())
                only_there = journeys[country].get(mrn, set()) - journeys[home].get(mrn, set())
                problems.append(
                    f"{mrn}: journeys differ ({home} only: {sorted(only_home)[:2]}; {country} only: "
                    f"{sorted(only_there)[:2]})"
                )
    unknown = [
        f"{node}: {mrn}"
        for node, rows in held.items()
        for mrn, row in rows.items()
        if row["role"] == "route" and mrn not in departures
    ]
    parked = {node: count for node, count in waiting.items() if count}
    summary = ", ".join(f"{status} {count}" for status, count in statuses.most_common())
    checks = [
        Check(
            "every movement has the same status and journey on every node of its route",
            not problems and not unknown,
            f"{len(departures):,} movements ({summary}); {copies:,} route copies compared; {len(problems)} differ"
            + (f"; held without a departure record: {len(unknown)}" if unknown else "")
            + _examples(problems + unknown),
        ),
        Check(
            "no step is left waiting for its movement's record",
            not parked,
            "pending steps: " + (", ".join(f"{node} {count}" for node, count in parked.items()) if parked else "none"),
        ),
    ]
    return checks, {"movements": len(departures), "closed": statuses["closed"]}


def _countries(value: Any) -> list[str]:
    if isinstance(value, str):
        import orjson

        decoded: list[str] = orjson.loads(value)
        return decoded
    return list(value)


async def guarantees(dsns: dict[str, str]) -> list[Check]:
    problems: list[str] = []
    count = 0
    most = Decimal(0)
    for node, dsn in dsns.items():
        reserved_by = {
            row["grn"]: Decimal(row["total"])
            for row in await _rows(
                dsn,
                "SELECT grn, sum(guarantee_amount) AS total FROM movements WHERE role = 'departure' "
                "AND status = ANY($1::text[]) GROUP BY grn",
                list(OPEN),
            )
        }
        for row in await _rows(dsn, "SELECT grn, reference_amount, reserved FROM guarantees"):
            count += 1
            reserved, reference = Decimal(row["reserved"]), Decimal(row["reference_amount"])
            most = max(most, reserved / reference if reference else Decimal(0))
            if reserved < 0 or reserved > reference:
                problems.append(f"{node} {row['grn']}: reserved {reserved} of {reference}")
            if reserved != reserved_by.get(row["grn"], Decimal(0)):
                problems.append(
                    f"{node} {row['grn']}: reserved {reserved}, open movements hold {reserved_by.get(row['grn'], 0)}"
                )
    return [
        Check(
            "no guarantee overdrawn; each reserves exactly its open movements",
            not problems,
            f"{count} guarantees; highest use {most:.0%} of the reference amount" + _examples(problems),
        )
    ]


PERMIT_ID = re.compile(
    r"^(?P<issuer>[A-Z]{2})-(?P<holder>[A-Z]{2})-(?P<year>[0-9]{4})-(?P<type>[1-4])-(?P<m>M?)(?P<seq>[0-9]+)$"
)
TYPE_CODES = {"bilateral": "1", "transit": "2", "third-country": "3", "return-load": "4"}


async def quotas(dsns: dict[str, str]) -> list[Check]:
    problems: list[str] = []
    summary: list[str] = []
    permits_at: dict[str, dict[str, Any]] = {}
    activities_at: dict[str, dict[str, set[tuple[str, str]]]] = {}
    for node, dsn in dsns.items():
        permits_at[node] = {
            row["id"]: row for row in await _rows(dsn, "SELECT id, issuer, holder, status, entries, exits FROM permits")
        }
        acts: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for row in await _rows(dsn, "SELECT permit_id, activity, office FROM permit_activities"):
            acts[row["permit_id"]].add((row["activity"], row["office"]))
        activities_at[node] = acts
        issued_here: dict[tuple[str, int, str, bool], list[int]] = defaultdict(list)
        for permit_id, row in permits_at[node].items():
            match = PERMIT_ID.match(permit_id)
            if row["issuer"] != node or match is None:
                continue
            key = (match["holder"], int(match["year"]), match["type"], bool(match["m"]))
            issued_here[key].append(int(match["seq"]))
        quota_rows = await _rows(
            dsn, "SELECT holder, year, type, quantity, issued FROM permit_quotas WHERE issuer = $1", node
        )
        for row in quota_rows:
            multilateral = row["holder"] == "*"
            type_code = TYPE_CODES[row["type"]]
            seqs = [
                seq
                for (holder, year, kind, multi), numbers in issued_here.items()
                for seq in numbers
                if year == row["year"]
                and kind == type_code
                and multi == multilateral
                and (multilateral or holder == row["holder"])
            ]
            label = f"{node}→{row['holder']} {row['type']}"
            if row["issued"] > row["quantity"]:
                problems.append(f"{label}: issued {row['issued']} of {row['quantity']}")
            if sorted(seqs) != list(range(1, row["issued"] + 1)):
                problems.append(f"{label}: counter says {row['issued']}, permits held {len(seqs)}")
            if row["quantity"] < 1000:
                summary.append(f"{label} {row['issued']}/{row['quantity']}")
    disagree: list[str] = []
    compared = 0
    for node, permits in permits_at.items():
        for permit_id, row in permits.items():
            if row["issuer"] != node or row["holder"] == node or row["holder"] not in permits_at:
                continue
            copy = permits_at[row["holder"]].get(permit_id)
            compared += 1
            if copy is None:
                disagree.append(f"{permit_id}: the holder {row['holder']} has no copy")
                continue
            mine = (row["status"], row["entries"], row["exits"], activities_at[node].get(permit_id, set()))
            theirs = (
                copy["status"],
                copy["entries"],
                copy["exits"],
                activities_at[row["holder"]].get(permit_id, set()),
            )
            if mine != theirs:
                disagree.append(f"{permit_id}: {node} {mine[:3]}, {row['holder']} {theirs[:3]}")
    return [
        Check(
            "no quota overdrawn; each quota's counter equals the permits issued under it",
            not problems,
            (f"scarce: {', '.join(summary)}" if summary else "all quotas checked") + _examples(problems),
        ),
        Check(
            "issuer and carrier's country agree on every permit (status, ENTRY/EXIT)",
            not disagree,
            f"{compared:,} permits compared" + _examples(disagree),
        ),
    ]


async def webhooks(dsns: dict[str, str], subscriptions: dict[str, str], hooks: dict[str, Hook]) -> list[Check]:
    problems: list[str] = []
    delivered_total = duplicates = 0
    for node, subscription in subscriptions.items():
        dsn = dsns[node]
        events = {row["id"] for row in await _rows(dsn, "SELECT id FROM tracking_events")}
        rows = await _rows(
            dsn,
            "SELECT id, event_id, state, last_error FROM webhook_deliveries WHERE subscription_id = $1",
            subscription,
        )
        queued = Counter(row["event_id"] for row in rows)
        delivered = {row["id"] for row in rows if row["state"] == "delivered"}
        not_done = [row for row in rows if row["state"] != "delivered"]
        hook = hooks.get(node, Hook())
        seen = set(hook.received)
        delivered_total += len(delivered)
        duplicates += sum(count - 1 for count in hook.received.values())
        if set(queued) != events or any(count != 1 for count in queued.values()):
            problems.append(f"{node}: {len(events)} events, {len(queued)} queued once, {len(rows)} rows")
        if not_done:
            problems.append(
                f"{node}: {len(not_done)} not delivered ({not_done[0]['state']}: {not_done[0]['last_error']})"
            )
        if seen != delivered:
            problems.append(
                f"{node}: receiver saw {len(seen)} ids, log says {len(delivered)} delivered "
                f"(missing {len(delivered - seen)}, unknown {len(seen - delivered)})"
            )
        if hook.bad_signatures:
            problems.append(f"{node}: {hook.bad_signatures} bad signatures")
    refused = sum(hook.refused for hook in hooks.values())
    return [
        Check(
            "every webhook event delivered once per subscription",
            not problems,
            f"{delivered_total:,} deliveries to {len(subscriptions)} subscriptions, every id seen by the receiver; "
            f"{refused} answered 503 on purpose and retried; {duplicates} re-sent after a lost answer (same id)"
            + _examples(problems),
        )
    ]


def http(calls: Sequence[Call], windows: Iterable[Window], *, grace: float = 30.0) -> list[Check]:
    """5xx other than 503 never; a 503 only on a node whose database was down or cut off (plus `grace` for the
    pool to notice); a request without an answer only while its node (or its database) was down."""
    by_node: dict[str, list[Window]] = defaultdict(list)
    for window in windows:
        by_node[window.node].append(window)

    def inside(call: Call, kinds: tuple[str, ...]) -> bool:
        """The request was in flight during the fault, or began within `grace` seconds after it ended."""
        return any(
            window.kind in kinds
            and call.started + call.latency >= window.started
            and call.started <= window.ended + grace
            for window in by_node.get(call.node, [])
        )

    server_errors = [call for call in calls if call.status is not None and call.status >= 500 and call.status != 503]
    unavailable = [call for call in calls if call.status == 503]
    stray_503 = [call for call in unavailable if not inside(call, ("db-restart", "db-terminate"))]
    failed = [call for call in calls if call.status is None]
    stray_failed = [call for call in failed if not inside(call, ("kill-node", "db-restart", "db-terminate"))]
    return [
        Check(
            "no 5xx other than 503 while a node's database was down",
            not server_errors and not stray_503,
            f"{len(calls):,} requests; 5xx other than 503: {len(server_errors)}; 503: {len(unavailable)} "
            f"({len(stray_503)} outside a database fault)"
            + _examples(
                [f"{c.node} {c.op} {c.status} at {c.started:.1f} s: {c.error}" for c in server_errors + stray_503]
            ),
        ),
        Check(
            "requests went unanswered only while their node was down",
            not stray_failed,
            f"no answer: {len(failed)} ({len(stray_failed)} outside a fault)"
            + _examples([f"{c.node} {c.op}: {c.error}" for c in stray_failed]),
        ),
    ]


def _examples(items: Sequence[str], count: int = 3) -> str:
    return f"; e.g. {'; '.join(items[:count])}" if items else ""
