"""`transit-window`: serve a node, run its worker, migrate, manage keys, trust lists, clients, the outbox and the
audit, and run a whole local corridor."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table
from sqlalchemy import select

from transit_window import clock, logs
from transit_window.cli import permits_cmd, proposals_cmd, trust_cmd
from transit_window.console import console_for
from transit_window.metrics import MULTIPROCESS_DIR
from transit_window.settings import Settings

T = TypeVar("T")

app = typer.Typer(
    help="transit_window: a node of the Digital Transit Corridor (KZ KG UZ TJ TM AZ).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
keys_app = typer.Typer(help="Node keys (Ed25519).", no_args_is_help=True, pretty_exceptions_show_locals=False)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True, pretty_exceptions_show_locals=False)
clients_app = typer.Typer(
    help="API clients and their bearer tokens.", no_args_is_help=True, pretty_exceptions_show_locals=False
)
outbox_app = typer.Typer(
    help="Messages waiting, delivered, rejected or dead.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
audit_app = typer.Typer(help="The tamper-evident log.", no_args_is_help=True, pretty_exceptions_show_locals=False)
codes_app = typer.Typer(
    help="Reference data: customs offices and HS codes (bundled, plus the operator's files).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
corridor_app = typer.Typer(
    help="A whole corridor of local node processes.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(keys_app, name="keys")
app.add_typer(trust_cmd.app, name="trust")
app.add_typer(db_app, name="db")
app.add_typer(clients_app, name="clients")
app.add_typer(outbox_app, name="outbox")
app.add_typer(audit_app, name="audit")
app.add_typer(corridor_app, name="corridor")
app.add_typer(codes_app, name="codes")
app.add_typer(permits_cmd.app, name="permits")
app.add_typer(proposals_cmd.app, name="proposals")
console = console_for()


def _run(coroutine_factory: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coroutine_factory()

    return asyncio.run(main())


@app.command()
def serve() -> None:
    """Run the node's API (and, unless TW_RUN_WORKER=false, its delivery worker) with uvicorn."""
    import uvicorn

    from transit_window.app import create_app

    settings = Settings()
    logs.configure(level=settings.log_level, json=settings.log_json)
    if settings.workers > 1:  # each process builds its app from the same TW_* environment
        # One /metrics for the node: the processes write their samples to a folder (metrics.py): the operator's
        # PROMETHEUS_MULTIPROC_DIR (e.g. on a tmpfs), emptied now, or one of this run's.
        chosen = os.environ.get(MULTIPROCESS_DIR)
        with contextlib.ExitStack() as stack:
            samples = chosen or stack.enter_context(tempfile.TemporaryDirectory(prefix="tw-metrics-"))
            for stale in Path(samples).glob("*.db"):
                stale.unlink()
            os.environ[MULTIPROCESS_DIR] = samples
            try:
                uvicorn.run(
                    "transit_window.app:create_app",
                    factory=True,
                    workers=settings.workers,
                    host=settings.host,
                    port=settings.port,
                    log_config=None,
                    access_log=False,
                    timeout_graceful_shutdown=10,
                    proxy_headers=False,  # the app believes X-Forwarded-For only from TW_TRUSTED_PROXIES (app.py)
                )
            finally:
                if chosen is None:
                    os.environ.pop(MULTIPROCESS_DIR, None)
        return
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        proxy_headers=False,
    )


@app.command()
def worker() -> None:
    """Run only the delivery worker and maintenance loops (scale out: several may share one PostgreSQL)."""
    from transit_window import tasks
    from transit_window.protocol.node import Node

    settings = Settings()
    logs.configure(level=settings.log_level, json=settings.log_json)

    async def main() -> None:
        node = await Node.open(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        running = tasks.start(node, stop)
        await stop.wait()
        await tasks.stop_all(stop, running)
        await node.close()

    asyncio.run(main())


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations (run once per deploy, not on every replica's start)."""
    from transit_window.db import migrate

    settings = Settings()
    migrate.upgrade(settings.database_url, revision)
    console.print(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    from transit_window.db import migrate

    migrate.downgrade(Settings().database_url, revision)
    console.print(f"database at {revision}")


@db_app.command("check")
def db_check() -> None:
    """Fail when the models and the migrations disagree."""
    from transit_window.db import migrate

    migrate.check(Settings().database_url)
    console.print("models and migrations agree")


@keys_app.command("generate")
def keys_generate(
    out: Annotated[Path, typer.Option(help="Where to write the private key (PEM, mode 0600).")] = Path("node-key.pem"),
    force: Annotated[bool, typer.Option(help="Replace an existing key.")] = False,
) -> None:
    from transit_window.protocol.keys import KeyFileError, write_private_key

    try:
        key = write_private_key(out, overwrite=force)
    except KeyFileError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"wrote {out} (mode 0600); kid {key.kid}")


async def _with_session(work: Callable[[Any], Awaitable[T]]) -> T:
    from transit_window.db.engine import create_engine, create_sessionmaker

    engine = create_engine(Settings().database_url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session:
            result = await work(session)
            await session.commit()
            return result
    finally:
        await engine.dispose()


@clients_app.command("add")
def clients_add(
    name: Annotated[str, typer.Option(help="Who the client is, e.g. 'ASYCUDA Almaty'.")],
    role: Annotated[str, typer.Option(help="customs, permits, forwarder, device or admin.")],
    party_id: Annotated[
        str | None, typer.Option(help="The party (e.g. a forwarder's BIN) the client acts for.")
    ] = None,
    device: Annotated[
        list[str] | None,
        typer.Option(
            help="For a device client: an e-seal it reports for, DEVICE_ID or DEVICE_ID=SEAL_NUMBER (the seal a "
            "declaration lists; default the device id). Repeat for a gateway. Later: PUT /v1/devices/{id}."
        ),
    ] = None,
) -> None:
    """Create a client and print its token once; only its hash is stored."""
    import re

    from transit_window.clients.service import ROLES, add_client
    from transit_window.tracking.devices import DEVICE_PATTERN, register

    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}")
    devices: dict[str, str | None] = {}
    for item in device or []:
        device_id, _, seal = item.partition("=")
        if role != "device" or not re.match(DEVICE_PATTERN, device_id) or len(device_id) > 64 or len(seal) > 64:
            raise typer.BadParameter(f"--device {item!r}: a device client's DEVICE_ID[=SEAL_NUMBER]")
        devices[device_id] = seal or None

    async def work(session: Any) -> tuple[Any, str]:
        client, token = await add_client(session, name=name, role=role, party_id=party_id)
        for device_id, seal in devices.items():
            await register(session, device_id=device_id, client_id=client.id, seal_id=seal, registered_by="cli")
        return client, token

    from transit_window.errors import DomainError

    try:
        client, token = _run(lambda: _with_session(work))
    except DomainError as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from exc
    for device_id in devices:
        console.print(f"e-seal {device_id} registered to client {client.id}")
    console.print(f"client {client.id} ({role}) created. Token, shown once:")
    print(token)


@clients_app.command("add-roles")
def clients_add_roles(
    name: Annotated[
        str, typer.Option(help="The clients' name, `{role}` replaced by each role, e.g. 'demo {role} (KZ)'.")
    ] = "{role} client",
    role: Annotated[
        list[str] | None, typer.Option(help="A role to make a client for; repeat. Default: every role.")
    ] = None,
    forwarder_party: Annotated[
        str | None, typer.Option(help="The party (e.g. a declarant's BIN) the forwarder client acts for.")
    ] = None,
) -> None:
    """Create one client per role and print their ids and tokens once, as JSON ({role: {id, token}}): a demo's or a
    test corridor's clients in one go (deploy/bootstrap.sh makes the compose corridor's with it)."""
    import json

    from transit_window.clients.service import ROLES, Role, add_role_clients

    chosen: list[Role] = []
    for wanted in role or ROLES:
        known = next((candidate for candidate in ROLES if candidate == wanted), None)
        if known is None:
            raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}")
        chosen.append(known)

    async def work(session: Any) -> dict[str, dict[str, str]]:
        made = await add_role_clients(session, name=name, roles=tuple(chosen), forwarder_party=forwarder_party)
        return {role: {"id": client.id, "token": token} for role, (client, token) in made.items()}

    print(json.dumps(_run(lambda: _with_session(work)), indent=2))


@clients_app.command("list")
def clients_list() -> None:
    from transit_window.clients.service import list_clients

    clients = _run(lambda: _with_session(list_clients))
    table = Table("id", "name", "role", "party", "created", "revoked")
    for client in clients:
        table.add_row(
            client.id,
            client.name,
            client.role,
            client.party_id or "",
            clock.isoformat(client.created_at),
            clock.isoformat(client.revoked_at) if client.revoked_at else "",
        )
    console.print(table)


@clients_app.command("revoke")
def clients_revoke(client_id: str) -> None:
    from transit_window.clients.service import revoke_client

    async def work(session: Any) -> Any:
        return await revoke_client(session, client_id=client_id)

    from transit_window.errors import NotFound

    try:
        client = _run(lambda: _with_session(work))
    except NotFound as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"revoked {client.id} ({client.name})")


@outbox_app.command("list")
def outbox_list(
    state: Annotated[str | None, typer.Option(help="pending, delivered, rejected or dead.")] = None,
    peer: Annotated[str | None, typer.Option()] = None,
    limit: int = 50,
) -> None:
    from transit_window.protocol.models import OutboxMessage

    async def work(session: Any) -> list[OutboxMessage]:
        statement = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
        if state:
            statement = statement.where(OutboxMessage.state == state)
        if peer:
            statement = statement.where(OutboxMessage.peer == peer.upper())
        return list((await session.scalars(statement)).all())

    rows = _run(lambda: _with_session(work))
    table = Table("id", "peer", "seq", "type", "state", "attempts", "receipt", "last error")
    for row in rows:
        receipt = f"{row.receipt_status or ''} {row.receipt_code or ''}".strip()
        table.add_row(
            row.id,
            row.peer,
            str(row.seq),
            row.type,
            row.state,
            str(row.attempts),
            receipt,
            (row.last_error or "")[:60],
        )
    console.print(table)


@outbox_app.command("retry")
def outbox_retry(
    message_id: Annotated[list[str] | None, typer.Option("--id", help="Message id (repeatable).")] = None,
    dead: Annotated[bool, typer.Option("--dead", help="Retry every dead-lettered message.")] = False,
) -> None:
    """Queue messages for delivery again now (the worker picks them up)."""
    from transit_window.protocol import outbox

    if not message_id and not dead:
        raise typer.BadParameter("give --id or --dead")

    async def work(session: Any) -> int:
        return await outbox.retry(session, ids=message_id, state="dead" if dead else None)

    console.print(f"{_run(lambda: _with_session(work))} message(s) queued again")


@audit_app.command("verify")
def audit_verify(
    peers: Annotated[bool, typer.Option(help="Also compare with the checkpoints peers witnessed.")] = True,
) -> None:
    """Recompute the log chain; exit 1 and name the first entry that does not match."""
    from transit_window.protocol import audit
    from transit_window.protocol.node import Node

    async def main() -> audit.AuditReport:
        node = await Node.open(Settings())
        try:
            return await audit.verify(node, ask_peers=peers)
        finally:
            await node.close()

    report = asyncio.run(main())
    console.print(
        f"log of {report.node}: {report.size} entries, head {report.head[:16]}…, "
        f"{report.own_checkpoints} own checkpoint(s)"
    )
    for peer, count in sorted(report.witnessed.items()):
        console.print(f"  {peer} witnessed {count} checkpoint(s)")
    for peer in report.unreachable:
        console.print(f"  [yellow]{peer} unreachable[/yellow]")
    if report.ok:
        console.print("[green]audit ok[/green]")
        return
    if report.first_bad_position is not None:
        console.print(f"[red]first entry that does not match: {report.first_bad_position}[/red]")
    for problem in report.problems:
        console.print(f"[red]- {problem}[/red]")
    raise typer.Exit(1)


@codes_app.command("offices")
def codes_offices(
    country: Annotated[str | None, typer.Option(help="Only this country's offices.")] = None,
    file: Annotated[Path | None, typer.Option(help="An operator's office file to lay over the bundled ones.")] = None,
) -> None:
    """List the customs offices the node knows (TW_OFFICES_FILE is laid over the bundled directory)."""
    from transit_window.codes import OfficeDirectory, ReferenceDataError

    try:
        directory = OfficeDirectory(operator_file=file or Settings().offices_file)
    except ReferenceDataError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    table = Table("code", "name", "role", "country", "faces", "partner", "UN/LOCODE", "lat, lon")
    for office in directory.all():
        if country and office.country != country.upper():
            continue
        table.add_row(
            office.code,
            office.name,
            office.role,
            office.country,
            office.faces or "",
            office.partner or "",
            office.unlocode or "",
            f"{office.lat:.2f}, {office.lon:.2f}{' ≈' if office.approx else ''}",
        )
    console.print(table)


@codes_app.command("check")
def codes_check(
    offices: Annotated[Path | None, typer.Option(help="An office file to validate.")] = None,
    hs: Annotated[Path | None, typer.Option(help="An HS code file to validate.")] = None,
) -> None:
    """Validate an operator's reference-data file before pointing TW_OFFICES_FILE / TW_HS_FILE at it."""
    from transit_window.codes import HsNomenclature, OfficeDirectory, ReferenceDataError

    if offices is None and hs is None:
        raise typer.BadParameter("give --offices FILE and/or --hs FILE")
    try:
        if offices is not None:
            directory = OfficeDirectory(operator_file=offices)
            console.print(f"[green]ok[/green]: {offices} — {len(directory)} offices with the bundled ones")
        if hs is not None:
            nomenclature = HsNomenclature(operator_file=hs)
            console.print(f"[green]ok[/green]: {hs} — {len(nomenclature.codes())} HS codes with the bundled ones")
    except ReferenceDataError as exc:
        console.print(f"[red]refused[/red]: {exc}")
        raise typer.Exit(1) from exc


tracking_app = typer.Typer(help="Cargo tracking data.", no_args_is_help=True, pretty_exceptions_show_locals=False)
app.add_typer(tracking_app, name="tracking")


@tracking_app.command("seed")
def tracking_seed(
    movements: Annotated[int, typer.Option(help="Synthetic movements to create.")] = 100_000,
    events: Annotated[int, typer.Option(help="Tracking events spread over them.")] = 5_000_000,
) -> None:
    """Fill TW_DATABASE_URL with synthetic movements and events for benchmarks (COPY on PostgreSQL)."""
    from rich.progress import Progress

    from transit_window.db.engine import create_engine
    from transit_window.seed import seed

    async def main() -> int:
        engine = create_engine(Settings().database_url, pool_size=2)
        try:
            with Progress(console=console) as progress:
                task = progress.add_task(f"seeding {movements:,} movements, {events:,} events", total=events)
                mrns = await seed(
                    engine, movements=movements, events=events, progress=lambda n: progress.advance(task, n)
                )
            return len(mrns)
        finally:
            await engine.dispose()

    console.print(f"seeded {asyncio.run(main()):,} movements")


webhooks_app = typer.Typer(
    help="Webhooks from the forwarder's side.", no_args_is_help=True, pretty_exceptions_show_locals=False
)
app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("listen")
def webhooks_listen(
    port: Annotated[int, typer.Option(help="Port on the host (0: any free one).")] = 8200,
    host: Annotated[str, typer.Option(help="Listen address; loopback unless you mean otherwise.")] = "127.0.0.1",
    secret: Annotated[
        str | None,
        typer.Option(
            envvar="WEBHOOK_SECRET",
            help="The subscription's whsec_ secret (or from WEBHOOK_SECRET). Left out: a new one is printed once, "
            "to subscribe with as `secret`.",
        ),
    ] = None,
) -> None:
    """Receive webhooks: check each Standard Webhooks signature, print each event as a line, answer a bad one 401."""
    from transit_window.webhooks.listener import Listener
    from transit_window.webhooks.signing import new_secret

    made = secret is None
    try:
        listener = Listener(secret=secret or new_secret(), host=host, port=port, out=_print_line)
        listener.bind()
    except (ValueError, OSError) as exc:
        console.print(f"[red]cannot listen[/red]: {exc}")
        raise typer.Exit(1) from exc
    console.print(f"listening on {listener.url} (any path); Ctrl-C stops")
    if made:
        console.print(f"subscribe with this secret (shown once): {listener.secret}", markup=False, highlight=False)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        listener.serve()
    console.print(f"{listener.received} verified, {listener.refused} refused")


def _print_line(line: str) -> None:
    console.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command("spec")
def spec() -> None:
    """Regenerate openapi/openapi.json and openapi/messages/*.json from the code."""
    from transit_window.spec import export

    for path in export():
        console.print(f"wrote {path}")


@app.command("conformance")
def conformance(
    base_url: Annotated[
        str, typer.Argument(help="The node to check, e.g. https://uz.example or http://127.0.0.1:8103")
    ],
    as_node: Annotated[str, typer.Option("--as", help="Your node id: the checks are signed as this member.")],
    key: Annotated[Path, typer.Option(help="Your node's private key (PEM, mode 0600), a key of --as.")],
    trust: Annotated[
        Path | None,
        typer.Option(help="A trust list you hold (e.g. the genesis): the served one must match or succeed it."),
    ] = None,
    to: Annotated[
        str | None, typer.Option(help="The target's node id (default: the member whose endpoint is BASE_URL).")
    ] = None,
) -> None:
    """Check that a node speaks the corridor protocol (as one of its peers, over HTTP); exit 1 if a check fails."""
    from transit_window.conformance import ConformanceSetupError, run_checks
    from transit_window.protocol.keys import KeyFileError, load_private_key
    from transit_window.protocol.trust import TrustError, TrustList

    try:
        signing_key = load_private_key(key)
        held = TrustList.from_json(trust.read_bytes()) if trust is not None else None
        results = run_checks(base_url, as_node=as_node, key=signing_key, trust=held, to=to)
    except (KeyFileError, TrustError, OSError, ConformanceSetupError) as exc:
        console.print(f"[red]cannot run the checks[/red]: {exc}")
        raise typer.Exit(2) from exc
    table = Table(
        "check", "result", "detail", title=f"corridor protocol conformance of {base_url} (as {as_node.upper()})"
    )
    for result in results:
        table.add_row(result.name, "[green]PASS[/green]" if result.passed else "[red]FAIL[/red]", result.detail)
    console.print(table)
    failed = [result.name for result in results if not result.passed]
    if failed:
        console.print(f"[red]{len(failed)} of {len(results)} checks failed[/red]: {', '.join(failed)}")
        raise typer.Exit(1)
    console.print(f"[green]all {len(results)} checks passed[/green]")


@corridor_app.command("up")
def corridor_up(
    nodes: Annotated[str, typer.Option(help="Comma-separated node ids.")] = "KZ,KG,UZ,TJ,TM,AZ",
    base_port: Annotated[int, typer.Option(help="The i-th node listens on base-port + i.")] = 8100,
    folder: Annotated[Path, typer.Option("--dir", help="Where keys, databases and logs go.")] = Path(".corridor"),
    database_url_template: Annotated[
        str | None, typer.Option(help="e.g. postgresql+asyncpg://postgres@127.0.0.1/tw_{node}")
    ] = None,
) -> None:
    """Start every node as its own process; Ctrl-C stops them all."""
    from transit_window.corridor.local import LocalCorridor
    from transit_window.corridor.topology import plan

    ids = [node.strip().upper() for node in nodes.split(",") if node.strip()]
    corridor = LocalCorridor(
        specs=plan(ids, base_port=base_port, folder=folder, database_url_template=database_url_template),
        folder=folder,
    )
    corridor.prepare()
    corridor.start()
    console.print(f"corridor up; clients and URLs in {corridor.manifest}")
    for spec in corridor.specs:
        console.print(f"  {spec.id}  {spec.url}  admin token: {corridor.token(spec.id)[:8]}…  log: {spec.log_file}")
    _wait_for_ctrl_c(corridor.stop)


def _wait_for_ctrl_c(stop: Callable[[], None]) -> None:
    try:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        signal.pause()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        console.print("stopping…")
        stop()


@app.command()
def demo(
    folder: Annotated[Path, typer.Option("--dir", help="Scratch folder (wiped at start).")] = Path(".corridor/demo"),
    base_port: int = 8100,
    exit_after: Annotated[bool, typer.Option("--exit", envvar="DEMO_EXIT", help="Exit after the story.")] = False,
    against: Annotated[
        Path | None,
        typer.Option(
            help="Tell the story against running nodes instead (the compose corridor's "
            ".corridor/containers/corridor.json: URLs and tokens); nothing is started.",
        ),
    ] = None,
) -> None:
    """The corridor story: five members, Azerbaijan admitted, pings between every pair, two movements, the audit."""
    from transit_window.corridor.demo import run_against, run_demo
    from transit_window.corridor.remote import CorridorFileError

    if against is not None:
        try:
            run_against(against)
        except (CorridorFileError, TimeoutError) as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
        return
    run_demo(folder=folder, base_port=base_port, exit_after=exit_after, wait=_wait_for_ctrl_c)
