"""`transit-window proposals list|show|approve|object`: a member's admin decides on trust-list proposals.

Talks to the node's API (`/v1/corridor/proposals`) with an admin client's token, not to its database: approving
signs with the node's key and sends the signature in the same transaction as any other approval, through the
running node's outbox and delivery worker.

Exit codes: 0 done, 1 the node refused (its problem's detail is printed), 2 usage error.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer
from rich.markup import escape
from rich.table import Table

from transit_window.console import console_for

app = typer.Typer(
    help="Trust-list proposals: what waits for this member's signature; approve or object (through the node's API).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = console_for()

NodeUrl = Annotated[str, typer.Option("--url", envvar="TW_NODE_URL", help="The node's base URL.", show_default=True)]
AdminToken = Annotated[
    str, typer.Option("--token", envvar="TW_ADMIN_TOKEN", help="An admin client's bearer token.", show_default=False)
]


def _call(url: str, token: str, method: str, path: str, *, json: Any = None) -> Any:
    try:
        response = httpx.request(
            method,
            f"{url.rstrip('/')}/v1/corridor/proposals{path}",
            json=json,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot reach {escape(url)}: {escape(str(exc))}[/red]")
        raise typer.Exit(1) from exc
    if response.status_code >= 400:
        try:
            problem = response.json()
            detail = f"{problem.get('detail')} ({problem.get('reason') or problem.get('type')})"
        except ValueError:
            detail = response.text[:500]
        console.print(f"[red]refused ({response.status_code}): {escape(str(detail))}[/red]")
        raise typer.Exit(1)
    return response.json()


def _print(proposal: dict[str, Any]) -> None:
    console.print(
        f"proposal {proposal['id']}: version {proposal['version']} from {proposal['proposer']}, "
        f"[bold]{proposal['state']}[/bold], expires {proposal['expires_at']}"
    )
    for line in proposal["difference"]:
        console.print(f"  • {escape(line)}")
    console.print(f"  signed by: {', '.join(proposal['signers']) or 'nobody'}")
    if proposal["waiting_for"]:
        console.print(f"  waiting for: {', '.join(proposal['waiting_for'])}")
    for objection in proposal["objections"]:
        console.print(f"  objection by {objection['node']}: {escape(objection['reason'])}")
    if proposal.get("closed_reason"):
        console.print(f"  {escape(proposal['closed_reason'])}")


@app.command("list")
def list_proposals(
    token: AdminToken,
    url: NodeUrl = "http://127.0.0.1:8000",
    state: Annotated[str | None, typer.Option(help="open, adopted, superseded or expired.")] = "open",
) -> None:
    """Proposals this node knows (by default the open ones: what waits for a decision)."""
    query = f"?state={state}" if state else ""
    proposals = _call(url, token, "GET", query)["items"]
    table = Table("id", "version", "from", "state", "signed by", "waiting for", "changes")
    for proposal in proposals:
        table.add_row(
            proposal["id"],
            str(proposal["version"]),
            proposal["proposer"],
            proposal["state"],
            ", ".join(proposal["signers"]),
            ", ".join(proposal["waiting_for"]),
            escape("; ".join(proposal["difference"]))[:120],
        )
    console.print(table)


@app.command("show")
def show(proposal_id: str, token: AdminToken, url: NodeUrl = "http://127.0.0.1:8000") -> None:
    """One proposal: what it changes, who signed, who objected and why."""
    _print(_call(url, token, "GET", f"/{proposal_id}"))


@app.command("approve")
def approve(proposal_id: str, token: AdminToken, url: NodeUrl = "http://127.0.0.1:8000") -> None:
    """Sign the proposed version with this node's key (it is adopted when the signatures suffice)."""
    answer = _call(url, token, "POST", f"/{proposal_id}/approve")
    _print(answer["proposal"])
    if answer["adopted"]:
        console.print(f"[green]version {answer['proposal']['version']} adopted and sent to every member[/green]")


@app.command("object")
def object_to(
    proposal_id: str,
    token: AdminToken,
    reason: Annotated[str, typer.Option(help="Why this member will not sign: every member sees it.")],
    url: NodeUrl = "http://127.0.0.1:8000",
) -> None:
    """Object to a proposal, with a reason every member sees."""
    _print(_call(url, token, "POST", f"/{proposal_id}/object", json={"reason": reason}))
