"""`headwater report [TABLE]`: the health of the project's tables — rows, failing rules, open
anomalies and drift — in the terminal, as JSON, or (`--html`) as one self-contained page of
charts that opens from disk with no network."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from headwater.observe.report import Health
    from headwater.project import Project

ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]


def report(
    table: Annotated[
        str | None, typer.Argument(help="One raw table or model, e.g. raw.orders (default: all).")
    ] = None,
    project: ProjectDir = Path("."),
    html: Annotated[
        bool, typer.Option("--html", help="Write one HTML page of charts (works offline).")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Where --html writes the page.",
            show_default=".headwater/report.html (report-TABLE.html for one table)",
        ),
    ] = None,
    history: Annotated[
        int,
        typer.Option(min=1, max=500, help="Profiles, rule results and runs read per table."),
    ] = 30,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Report the health of every table (or TABLE): rows of its newest batch or version, the
    rules failing now, open anomalies and drift. With --html, a page with the history of
    rows, NULL shares and means, the newest distributions, drift bins and anomalies marked
    on the charts — Chart.js inlined, nothing fetched when it is opened. No value of a PII
    column is shown."""
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    from headwater.cli.main import _check_format, _errors, _print_json, _state
    from headwater.orchestrate.health import gather, summary
    from headwater.orchestrate.stores import project_catalog_url, project_secrets
    from headwater.project import load_project
    from headwater.zones.catalog import Catalog, utcnow

    _check_format(fmt)
    with _errors():
        loaded = load_project(project)
        tables = None if table is None else [_known(loaded, table)]
        scrubbing = project_secrets(loaded)
        _state["scrub"] = scrubbing.scrub
        catalog = Catalog(project_catalog_url(loaded, scrubbing), scrub=scrubbing.scrub)
        try:
            health = gather(
                loaded, catalog, now=utcnow(), tables=tables, history=history, runs=table is None
            )
        finally:
            catalog.close()
        if html:
            _write_page(loaded, health, out, table, fmt)
            return
    if fmt == "json":
        _print_json({"project": health.project, "tables": summary(health)})
    else:
        _print_summary(summary(health))


def _known(project: Project, table: str) -> str:
    import difflib

    from headwater.errors import UsageError

    known = sorted({*project.raw_tables, *project.models})
    if table not in known:
        close = difflib.get_close_matches(table, known, n=1)
        raise UsageError(
            f"{table} is neither a raw table nor a model of this project",
            hint=f"did you mean {close[0]}?" if close else "see `headwater status`",
        )
    return table


def _write_page(
    project: Project, health: Health, out: Path | None, table: str | None, fmt: str
) -> None:
    from headwater.cli.main import _console, _print_json
    from headwater.observe.report import chart_count, render_report

    page = render_report(health)
    if out is None:
        name = "report.html" if table is None else f"report-{table}.html"
        out = project.root / ".headwater" / name
    path = write_atomically(out, page)
    url = path.resolve().as_uri()
    if fmt == "json":
        _print_json(
            {
                "path": str(path),
                "url": url,
                "bytes": len(page.encode()),
                "charts": chart_count(page),
            }
        )
        return
    console = _console()
    console.print(
        f"Report written: {path}  ({len(page.encode()) / 1e3:,.0f} kB, {chart_count(page)} charts)",
        highlight=False,
    )
    console.print(f"Open it in a browser: {url}", highlight=False, soft_wrap=True)


def write_atomically(path: Path, text: str) -> Path:
    """Write `text` to `path` through a sibling moved into place: a reader never sees half a
    page, and a failed write leaves the old one.

    Raises:
        UsageError: `path` is a folder.
    """
    from headwater.errors import UsageError

    if path.is_dir():
        raise UsageError(f"{path} is a folder", hint="name a file with --out, e.g. report.html")
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}")
    try:
        staged.write_text(text, encoding="utf-8")
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
    return path


def _print_summary(tables: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from headwater.cli.main import _console

    shown = Table(show_edge=False, header_style="bold")
    for title in ("table", "rows", "profiled (UTC)", "failing rules"):
        shown.add_column(title, overflow="fold")
    for t in tables:
        shown.add_row(
            t["table"],
            "" if t["rows"] is None else f"{t['rows']:,}",
            (t["profiled_at"] or "never")[:16].replace("T", " "),
            f"{len(t['failing'])} of {t['rules']}" if t["rules"] else "no rules",
        )
    console = _console()
    console.print(shown)
    failing = [(t["table"], r) for t in tables for r in t["failing"]]
    if failing:
        console.print("\n[bold]Failing now[/]")
        for name, r in failing:
            said = f": {r['explanation']}" if r["explanation"] else ""
            console.print(
                f"  {name}  {r['rule']} ({r['type']}, {r['severity']}){said}",
                highlight=False,
                markup=False,
            )
    console.print(
        f"\n{len(tables)} table{'s' if len(tables) != 1 else ''}, "
        f"{len({name for name, _ in failing})} with failing rules, "
        f"{sum(len(t['anomalies']) for t in tables)} anomalies and "
        f"{sum(len(t['drift']) for t in tables)} drifted columns open. "
        "`headwater report --html` draws their history.",
        highlight=False,
    )
