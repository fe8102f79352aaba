"""`transit-window permits ...`: a border post's offline check of permits.

`sync` (online) fetches the trust list and every member's signed revocation list into a cache folder; `verify`
(offline) checks a permit JWS or scanned QR text against that cache alone, and with `--office` keeps a log of
sightings to flag a permit seen at two posts sooner than a truck could drive between them.

Exit codes of `verify`: 0 valid, 1 not valid (revoked, expired, forged...) or a fraud alert, 2 usage error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson
import typer
from rich.markup import escape
from rich.table import Table

from transit_window import clock
from transit_window.codes import InvalidCode, OfficeDirectory, ReferenceDataError, normalise_plate
from transit_window.console import console_for
from transit_window.permits.offline import (
    CacheError,
    ListSync,
    PermitCache,
    Sighting,
    default_folder,
    fetch_trust_list,
    sync_revocations,
    travel_alerts,
)
from transit_window.permits.verify import Verdict, verify_permit
from transit_window.protocol.trust import TrustError
from transit_window.settings import Settings

app = typer.Typer(
    help="Permits at a border post: sync the trust list and revocation lists online, verify permits offline.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = console_for()
errors = console_for("stderr")

CacheOption = Annotated[
    Path | None,
    typer.Option(
        "--cache", help="Cache folder (default: $TW_PERMIT_CACHE or ~/.cache/transit-window).", show_default=False
    ),
]
AUTHENTIC_FAILURES = ("bad-signature", "unknown-issuer", "untrusted-key", "malformed")
USAGE = 2


def _usage(message: str) -> typer.Exit:
    errors.print(f"[red]error[/red]: {escape(message)}")
    return typer.Exit(USAGE)


# -- sync ------------------------------------------------------------------------------------------------------


@app.command("sync")
def sync(
    node: Annotated[str, typer.Option(help="Base URL of any corridor node, e.g. https://uz.corridor.example.")],
    cache: CacheOption = None,
    genesis_sha256: Annotated[
        str | None,
        typer.Option(help="The genesis SHA-256 your corridor published: checked on the first sync (no cache yet)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="HTTP timeout per request, in seconds.")] = 10.0,
) -> None:
    """Online: fetch the trust list and every member's signed revocation list into the cache.

    The trust list is accepted only as the pinned genesis (or, with no pin, on first use), or as a valid successor
    of the cached one; each revocation list comes from the member's endpoint in the trust list and must verify."""
    if not node.startswith(("http://", "https://")):
        raise _usage(f"--node {node!r} is not an http(s) URL")
    store = PermitCache(cache or default_folder())
    now = clock.utcnow()
    with httpx.Client(timeout=timeout) as http:
        try:
            candidate = fetch_trust_list(http, node)
        except httpx.HTTPError as exc:
            console.print(
                f"[red]cannot fetch the trust list from {escape(node)}[/red]: {escape(str(exc) or type(exc).__name__)}"
            )
            raise typer.Exit(1) from exc
        except TrustError as exc:
            console.print(f"[red]refused[/red] the trust list {escape(node)} serves: {escape(str(exc))}")
            raise typer.Exit(1) from exc
        try:
            accepted = store.accept_trust(candidate, pinned_sha256=genesis_sha256, now=now)
        except CacheError as exc:
            raise _usage(str(exc)) from exc
        except TrustError as exc:
            console.print(f"[red]refused[/red] the trust list {escape(node)} serves: {escape(str(exc))}")
            console.print(f"the cache in {store.folder} is unchanged")
            raise typer.Exit(1) from exc
        trust = accepted.trust
        colour = "yellow" if accepted.outcome in ("first-use", "kept") else "green"
        console.print(
            f"trust list: [{colour}]{accepted.outcome}[/{colour}] — {escape(accepted.detail)}; "
            f"{len(trust.nodes())} members, threshold {trust.body.threshold}, "
            f"expires {clock.isoformat(trust.body.expires_at)}"
        )
        if accepted.outcome == "first-use":
            console.print(
                "[bold yellow]first sync: trusting on first use[/bold yellow] — compare this hash with the one your "
                f"corridor published:\n  sha256 [bold]{trust.sha256}[/bold]\n"
                "(or sync again into an empty cache with --genesis-sha256 HASH to have it checked)"
            )
        elif genesis_sha256:
            console.print(
                "[dim]--genesis-sha256 is checked on the first sync only; the cached list is the anchor[/dim]"
            )
        results = sync_revocations(store, trust=trust, http=http, now=now)
    console.print(_revocations_table(results, now=now))
    console.print(f"cache: {store.folder}")
    failed = [result.node for result in results if not result.ok]
    if failed:
        console.print(
            f"[yellow]{len(failed)} member(s) not refreshed ({', '.join(failed)}): their cached lists, if any, are "
            "kept and `verify` warns when a list is past its next update[/yellow]"
        )


def _revocations_table(results: list[ListSync], *, now: Any) -> Table:
    table = Table("node", "version", "revoked", "next update", "status")
    for result in results:
        kept = result.revocations
        if result.ok:
            status = f"[green]{result.outcome}[/green]"
        elif result.outcome == "kept":
            status = f"[yellow]kept[/yellow]: {escape(result.detail)}"
        else:
            suffix = " (cached list kept)" if kept is not None else " (no list cached)"
            status = f"[red]{result.outcome}[/red]: {escape(result.detail)}{suffix}"
        if kept is None:
            table.add_row(result.node, "-", "-", "-", status)
            continue
        due = clock.isoformat(kept.next_update)
        table.add_row(
            result.node,
            str(kept.version),
            str(len(kept.revoked)),
            f"[red]{due}[/red]" if kept.is_stale(now) else due,
            status,
        )
    return table


# -- verify ----------------------------------------------------------------------------------------------------


def _read_token(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    candidate = Path(source)
    try:
        if candidate.is_file():
            return candidate.read_text(errors="replace")
    except OSError:
        pass  # a JWS is longer than a file name may be: it is the token itself
    return source


@app.command("verify")
def verify(
    token: Annotated[
        str, typer.Argument(help="The permit JWS or scanned QR text, a file holding it, or '-' for stdin.")
    ],
    cache: CacheOption = None,
    plate: Annotated[str | None, typer.Option(help="The truck in front of the officer.")] = None,
    office: Annotated[
        str | None, typer.Option(help="This post's office code: records the sighting and checks for travel fraud.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout instead of the report.")] = False,
) -> None:
    """Offline: check a permit against the cached trust list and revocation lists.

    Exit 0 valid, 1 not valid (revoked, expired, forged...) or a fraud alert, 2 usage error."""
    text = _read_token(token).strip()
    if not text:
        raise _usage("no permit given")
    settings = Settings()
    seen_plate = None
    if plate is not None:
        try:
            seen_plate = normalise_plate(plate)
        except InvalidCode as exc:
            raise _usage(f"--plate: {exc}") from exc
    post = None
    if office is not None:
        try:
            directory = OfficeDirectory(operator_file=settings.offices_file)
            post = directory.require(office.strip().upper())
        except (InvalidCode, ReferenceDataError) as exc:
            raise _usage(f"--office: {exc}") from exc
    store = PermitCache(cache or default_folder())
    now = clock.utcnow()
    try:
        trust, revocations, warnings = store.load(now=now)
    except CacheError as exc:
        raise _usage(str(exc)) from exc
    verdict = verify_permit(text, trust=trust, revocations=revocations, now=now, plate=seen_plate)
    verdict.warnings = [*warnings, *verdict.warnings]
    alerts: list[str] = []
    if post is not None and verdict.claims is not None and verdict.result not in AUTHENTIC_FAILURES:
        sighting = Sighting(permit=verdict.claims.id, office=post.code, at=now, plate=seen_plate)
        alerts = travel_alerts(
            sighting,
            store.sightings(sighting.permit),
            directory=directory,
            max_speed_kmh=settings.permit_max_speed_kmh,
        )
        store.record_sighting(sighting)
    if as_json:
        sys.stdout.write(orjson.dumps(_as_dict(verdict, alerts=alerts, trust_version=trust.version)).decode() + "\n")
    else:
        _report(verdict, alerts=alerts, trust_version=trust.version)
    if not verdict.valid or alerts:
        raise typer.Exit(1)


def _as_dict(verdict: Verdict, *, alerts: list[str], trust_version: int) -> dict[str, Any]:
    return {
        "result": verdict.result,
        "valid": verdict.valid,
        "reasons": verdict.reasons,
        "warnings": verdict.warnings,
        "alerts": alerts,
        "permit": verdict.claims.model_dump(mode="json", by_alias=True) if verdict.claims else None,
        "kid": verdict.kid,
        "revocation_list_version": verdict.revocation_list_version,
        "trust_list_version": trust_version,
    }


def _report(verdict: Verdict, *, alerts: list[str], trust_version: int) -> None:
    colour = "green" if verdict.valid else "red"
    name = verdict.claims.id if verdict.claims else "?"
    console.print(f"[bold {colour}]{verdict.result.upper()}[/bold {colour}]  {escape(name)}")
    for reason in verdict.reasons:
        console.print(f"  {escape(reason)}")
    for warning in verdict.warnings:
        console.print(f"  [yellow]warning[/yellow]: {escape(warning)}")
    for alert in alerts:
        console.print(f"[bold red]ALERT impossible travel[/bold red]: {escape(alert)}")
    claims = verdict.claims
    if claims is None:
        return
    table = Table("field", "value", show_header=False)
    rows = [
        ("permit", claims.id),
        ("type", f"{claims.type} ({claims.year})"),
        ("issued by", claims.iss),
        ("for carriers of", claims.for_),
        ("carrier", f"{claims.carrier.name} ({claims.carrier.id})"),
        ("truck", claims.plate + (f" + trailer {claims.trailer}" if claims.trailer else "")),
        ("route", " → ".join(claims.route)),
        ("trips", str(claims.trips)),
        ("valid", f"{clock.isoformat(claims.nbf)} to {clock.isoformat(claims.exp)}"),
        ("issued at", clock.isoformat(claims.iat)),
        ("key", verdict.kid or ""),
        (
            "checked with",
            f"trust list v{trust_version}, revocation list "
            + (f"v{verdict.revocation_list_version}" if verdict.revocation_list_version is not None else "none"),
        ),
    ]
    for field, value in rows:
        table.add_row(field, escape(value))
    console.print(table)
