"""`headwater alerts`: the open incidents, then the recent ones, and how their events fared on
each channel (delivered, waiting — held by quiet hours or a rate limit — or refused, and why)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.table import Table

    from headwater.zones.catalog.alerts import Delivery

ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]


def alerts(
    project: ProjectDir = Path("."),
    open_only: Annotated[bool, typer.Option("--open", help="Only the open incidents.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="How many incidents at most.")] = 50,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """List alert incidents, open ones first: severity, what it is about, when it opened and
    resolved, and per channel how many of its events were delivered or are waiting."""
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    from headwater.cli.main import _catalog, _check_format, _console, _errors, _print_json
    from headwater.project import load_project

    _check_format(fmt)
    with _errors():
        loaded = load_project(project)
        with _catalog(loaded) as catalog:
            incidents = catalog.alert_history(limit=limit, open_only=open_only)
            deliveries = catalog.alert_deliveries([i["alert_id"] for i in incidents])
    shown = [_json(i, deliveries.get(i["alert_id"], [])) for i in incidents]
    if fmt == "json":
        _print_json({"incidents": shown})
    elif shown:
        _console().print(_table(shown))
    else:
        _console().print("No open incidents." if open_only else "No incidents yet.")


def _json(incident: dict[str, Any], deliveries: list[Delivery]) -> dict[str, Any]:
    from headwater.cli.runs import iso, utc

    return {
        "state": "open" if incident["resolved_at"] is None else "resolved",
        "key": incident["key"],
        "kind": incident["kind"],
        "severity": incident["severity"],
        "subject": incident["subject"],
        "message": incident["message"],
        "owner": incident["owner"],
        "tags": incident["tags"],
        "opened_at": iso(utc(incident["opened_at"])),
        "resolved_at": iso(utc(incident["resolved_at"])),
        "channels": [
            {
                "channel": d.channel,
                "delivered": d.delivered,
                "pending": d.pending,
                "held_until": iso(utc(d.held_until)),
                "last_error": d.last_error,
            }
            for d in deliveries
        ],
    }


def _table(incidents: list[dict[str, Any]]) -> Table:
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("state", "severity", "subject", "message", "opened", "resolved", "channels"):
        table.add_column(column, overflow="fold")
    for i in incidents:
        state = "[red]OPEN[/]" if i["state"] == "open" else "[green]resolved[/]"
        severity = escape(i["severity"])
        if i["severity"] in ("error", "critical"):
            severity = f"[red]{severity}[/]"
        table.add_row(
            state,
            severity,
            escape(i["subject"]),
            escape(_first_line(i["message"])),
            _when(i["opened_at"]),
            _when(i["resolved_at"]),
            "\n".join(escape(_channel(c)) for c in i["channels"]) or "-",
        )
    return table


def _channel(delivery: dict[str, Any]) -> str:
    """One channel's line, e.g. `webhook:http://… 1 delivered, 1 waiting until 07:00`."""
    parts = [f"{delivery['delivered']} delivered"] * bool(delivery["delivered"])
    if delivery["pending"]:
        held = delivery["held_until"]
        waiting = f"{delivery['pending']} waiting"
        parts.append(f"{waiting} until {_when(held)}" if held else waiting)
    text = f"{delivery['channel']} {', '.join(parts)}"
    if delivery["pending"] and delivery["last_error"]:
        text += f" ({_first_line(delivery['last_error'])[:120]})"
    return text


def _when(moment: str | None) -> str:
    return "" if moment is None else moment[:16].replace("T", " ")


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] + (" …" if len(lines) > 1 else "") if lines else ""
