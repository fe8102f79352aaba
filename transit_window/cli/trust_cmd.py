"""`transit-window trust ...`: build, sign, verify and inspect trust-list files (offline, no database)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from transit_window import clock
from transit_window.console import console_for
from transit_window.protocol.keys import KeyFileError, load_private_key
from transit_window.protocol.trust import (
    TrustError,
    TrustKey,
    TrustList,
    TrustListBody,
    TrustMember,
    next_version,
    verify_genesis,
    verify_successor,
)

app = typer.Typer(
    help="Trust lists: init, sign, verify, show; new versions with admit, rotate, revoke.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = console_for()


def _member_from_spec(spec: str) -> TrustMember:
    """`NODE=Name,https://endpoint,key.pem` → a member whose first key is that PEM's public key."""
    try:
        node, rest = spec.split("=", 1)
        name, endpoint, key_path = rest.rsplit(",", 2)
    except ValueError as exc:
        raise typer.BadParameter(f"member {spec!r}: expected NODE=Name,URL,key.pem") from exc
    key = _load_key(Path(key_path))
    trust_key = TrustKey(kid=key.kid, jwk=key.public_jwk, not_before=clock.utcnow() - timedelta(minutes=5))
    return TrustMember(node=node.strip().upper(), name=name.strip(), endpoint=endpoint.strip(), keys=[trust_key])


def _load_key(path: Path):  # type: ignore[no-untyped-def]
    try:
        return load_private_key(path)
    except KeyFileError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _read(path: Path) -> TrustList:
    try:
        return TrustList.from_json(path.read_bytes())
    except (OSError, TrustError) as exc:
        raise typer.BadParameter(f"{path}: {exc}") from exc


def _write(trust: TrustList, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(trust.to_json())


@app.command("init")
def init(
    out: Annotated[Path, typer.Option(help="Where to write the unsigned genesis.")],
    member: Annotated[list[str], typer.Option(help="NODE=Name,URL,private-key.pem (repeat per member).")],
    threshold: Annotated[int, typer.Option(help="Signatures (members) needed to accept a version.")],
    valid_days: Annotated[int, typer.Option(help="Days until the list expires.")] = 365,
) -> None:
    """Write version 1 (unsigned). Every member then adds its signature with `trust sign`."""
    now = clock.utcnow()
    body = TrustListBody(
        version=1,
        issued_at=now,
        expires_at=now + timedelta(days=valid_days),
        threshold=threshold,
        members=[_member_from_spec(spec) for spec in member],
    )
    trust = TrustList.from_body(body)
    _write(trust, out)
    console.print(f"wrote trust list version 1 to {out}; sha256 {trust.sha256}")


@app.command("sign")
def sign(
    path: Annotated[Path, typer.Argument(help="Trust-list file to sign in place.")],
    key: Annotated[Path, typer.Option(help="This member's private key (PEM).")],
) -> None:
    trust = _read(path)
    signing_key = _load_key(key)
    if trust.key(signing_key.kid) is None:
        raise typer.BadParameter(f"key {signing_key.kid} is not a key of any member of version {trust.version}")
    trust.sign(signing_key)
    _write(trust, path)
    console.print(f"signed version {trust.version} with {signing_key.kid}; {len(trust.signatures)} signature(s)")


@app.command("verify")
def verify(
    path: Annotated[Path, typer.Argument(help="Trust-list file to check.")],
    previous: Annotated[Path | None, typer.Option(help="The current version it must succeed.")] = None,
    genesis_sha256: Annotated[str | None, typer.Option(help="Pinned hash, to check a genesis.")] = None,
) -> None:
    """Exit 0 when the list is acceptable (as genesis with --genesis-sha256, or as successor of --previous)."""
    trust = _read(path)
    now = clock.utcnow()
    try:
        if previous is not None:
            verify_successor(_read(previous), trust, now=now)
        else:
            verify_genesis(trust, pinned_sha256=genesis_sha256 or trust.sha256, now=now)
    except TrustError as exc:
        console.print(f"[red]refused[/red]: {exc}")
        raise typer.Exit(1) from exc
    signers = sorted(trust.signing_members(trust, at=now))
    console.print(f"[green]ok[/green]: version {trust.version}, sha256 {trust.sha256}, signed by {', '.join(signers)}")


@app.command("show")
def show(path: Annotated[Path, typer.Argument()]) -> None:
    trust = _read(path)
    body = trust.body
    console.print(
        f"version {body.version} · threshold {body.threshold} · issued {clock.isoformat(body.issued_at)} · "
        f"expires {clock.isoformat(body.expires_at)} · sha256 {trust.sha256}"
    )
    signers = trust.signing_members(trust, at=clock.utcnow())
    table = Table("node", "name", "endpoint", "kid", "valid", "signed")
    for member in body.members:
        for key in member.keys:
            table.add_row(
                member.node,
                member.name,
                member.endpoint,
                key.kid,
                "yes" if key.valid_at(clock.utcnow()) else key.why_not_valid_at(clock.utcnow()),
                "yes" if member.node in signers else "",
            )
    console.print(table)


@app.command("admit")
def admit(
    current: Annotated[Path, typer.Option(help="The current version.")],
    out: Annotated[Path, typer.Option(help="Where to write the new, unsigned version.")],
    member: Annotated[str, typer.Option(help="NODE=Name,URL,private-key.pem of the new member.")],
    threshold: Annotated[int | None, typer.Option(help="New threshold (default: unchanged).")] = None,
    valid_days: int = 365,
) -> None:
    """A new version with one more member."""
    base = _read(current).body
    body = next_version(base, valid_for=timedelta(days=valid_days), threshold=threshold)
    new_member = _member_from_spec(member)
    if any(existing.node == new_member.node for existing in body.members):
        raise typer.BadParameter(f"{new_member.node} is already a member")
    body = TrustListBody.model_validate(
        {**body.model_dump(), "members": [*body.model_dump()["members"], new_member.model_dump()]}
    )
    _write(TrustList.from_body(body), out)
    console.print(f"wrote version {body.version} admitting {new_member.node} to {out}; members sign it next")


@app.command("rotate")
def rotate(
    current: Annotated[Path, typer.Option()],
    out: Annotated[Path, typer.Option()],
    node: Annotated[str, typer.Option(help="The member whose key rotates.")],
    new_key: Annotated[Path, typer.Option(help="The member's new private key (only its public part is used).")],
    overlap_hours: Annotated[float, typer.Option(help="How long the old key stays valid.")] = 24.0,
    valid_days: int = 365,
) -> None:
    """A new version where `node` gains a new key and its current keys retire after an overlap."""
    body = next_version(_read(current).body, valid_for=timedelta(days=valid_days))
    key = _load_key(new_key)
    now = clock.utcnow()
    data = body.model_dump()
    for member in data["members"]:
        if member["node"] == node.upper():
            for old in member["keys"]:
                if old["not_after"] is None:
                    old["not_after"] = now + timedelta(hours=overlap_hours)
            member["keys"].append({"kid": key.kid, "jwk": key.public_jwk, "not_before": now - timedelta(minutes=5)})
            break
    else:
        raise typer.BadParameter(f"{node} is not a member")
    body = TrustListBody.model_validate(data)
    _write(TrustList.from_body(body), out)
    console.print(f"wrote version {body.version}: {node} rotates to {key.kid}")


@app.command("revoke")
def revoke(
    current: Annotated[Path, typer.Option()],
    out: Annotated[Path, typer.Option()],
    kid: Annotated[str, typer.Option(help="The key to revoke.")],
    valid_days: int = 365,
) -> None:
    """A new version where key `kid` is revoked from now on (earlier messages stay verifiable)."""
    body = next_version(_read(current).body, valid_for=timedelta(days=valid_days))
    data = body.model_dump()
    found = False
    for member in data["members"]:
        for key in member["keys"]:
            if key["kid"] == kid:
                key["revoked_at"] = clock.utcnow()
                found = True
    if not found:
        raise typer.BadParameter(f"no key {kid} in version {body.version - 1}")
    body = TrustListBody.model_validate(data)
    _write(TrustList.from_body(body), out)
    console.print(f"wrote version {body.version} revoking {kid}")
