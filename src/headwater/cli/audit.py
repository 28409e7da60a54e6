"""`headwater audit`: the append-only log of who did what — runs and applies, `sql` and data
API reads with their role, policy refusals, classification accepts and erasures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.table import Table

    from headwater.zones.catalog.products import Audited

ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]


def audit(
    project: ProjectDir = Path("."),
    since: Annotated[
        str | None,
        typer.Option(help="Entries this recent (2h, 7d) or since a date (2026-12-01)."),
    ] = None,
    action: Annotated[
        list[str] | None,
        typer.Option(
            help="Only these actions: run, apply, sql, read, search, features, gate, "
            "classify, forget (repeatable)."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many entries at most.")] = 100,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Show the audit log, newest first: when, who (an OS user or an API key), as which role,
    what they did to what, and how it ended."""
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    from headwater.cli.main import _catalog, _check_format, _console, _errors, _print_json
    from headwater.project import load_project

    _check_format(fmt)
    with _errors():
        start = _since(since, datetime.now(UTC))
        loaded = load_project(project)
        with _catalog(loaded) as catalog:
            entries = catalog.audited(limit=limit, since=start, actions=action or ())
    if fmt == "json":
        _print_json({"entries": [_json(e) for e in entries]})
    elif entries:
        _console().print(_table(entries))
    else:
        _console().print("Nothing in the audit log for that.")


def _since(text: str | None, now: datetime) -> datetime | None:
    from headwater.contracts.thresholds import parse_duration
    from headwater.errors import UsageError

    if text is None:
        return None
    try:
        return now - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--since {text!r} is neither a duration nor a date", hint="e.g. 2h, 7d, 2026-12-01"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _json(entry: Audited) -> dict[str, Any]:
    return {
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "role": entry.role,
        "action": entry.action,
        "subject": entry.subject,
        "status": entry.status,
        "detail": entry.detail,
    }


def _table(entries: list[Audited]) -> Table:
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("at", "actor", "role", "action", "subject", "status", "detail"):
        table.add_column(column, overflow="fold")
    for e in entries:
        ok = e.status in (None, 0, 200, 304)
        status = "" if e.status is None else str(e.status)
        detail = ", ".join(f"{k}={v}" for k, v in e.detail.items() if v not in (None, [], {}))
        table.add_row(
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            escape(e.actor or "anonymous"),
            escape(e.role or ""),
            escape(e.action),
            escape(e.subject or ""),
            status if ok else f"[red]{status}[/]",
            escape(detail[:200]),
        )
    return table
