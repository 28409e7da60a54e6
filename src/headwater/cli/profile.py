"""`headwater profile TABLE`: the newest profile of a raw table or model, column by column,
with a sparkline of each metric's history (rows, nulls, distinct, mean) over its last
batches or versions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.table import Table

    from headwater.quality.profile import TableProfile
    from headwater.zones.catalog import StoredProfile

ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]
BARS = "▁▂▃▄▅▆▇█"


def profile(
    table: Annotated[str, typer.Argument(help="A raw table or model, e.g. raw.orders.")],
    project: ProjectDir = Path("."),
    history: Annotated[
        int, typer.Option(min=1, max=500, help="How many earlier profiles the sparklines show.")
    ] = 30,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Show the newest profile of TABLE (every landed batch and built version is profiled in
    its rules' scan): per column its NULL share, distinct values, bounds, mean, median and
    most frequent values — none of a PII column's values — and sparklines of their history."""
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    from headwater.cli.main import _catalog, _check_format, _console, _errors, _print_json
    from headwater.errors import UsageError
    from headwater.project import load_project
    from headwater.quality.profile import TableProfile

    _check_format(fmt)
    with _errors():
        loaded = load_project(project)
        known = set(loaded.raw_tables) | set(loaded.models)
        if table not in known:
            import difflib

            close = difflib.get_close_matches(table, sorted(known), n=1)
            raise UsageError(
                f"{table} is neither a raw table nor a model of this project",
                hint=f"did you mean {close[0]}?" if close else "see `headwater status`",
            )
        with _catalog(loaded) as catalog:
            stored = catalog.profile_history(table, limit=history)
    if not stored:
        if fmt == "json":
            _print_json({"table": table, "profiles": []})
        else:
            _console().print(
                f"{table} has no profile yet: one is made each time a batch lands or a "
                "version is built (`headwater run`)."
            )
        return
    profiles = [TableProfile.from_json(p.rows, p.columns) for p in stored]
    if fmt == "json":
        _print_json(
            {
                "table": table,
                "profiles": [_json(s, p) for s, p in zip(stored, profiles, strict=True)],
            }
        )
        return
    newest = stored[-1]
    console = _console()
    console.print(
        f"[bold]{table}[/]  {newest.kind} {newest.ref}  {newest.rows:,} rows  "
        f"profiled {newest.profiled_at:%Y-%m-%d %H:%M} UTC   "
        f"rows {spark([float(p.rows) for p in profiles])}",
        highlight=False,
    )
    console.print(_table(profiles))


def spark(values: list[float | None]) -> str:
    """A sparkline: one bar per value, scaled between the smallest and the largest (a gap
    for a missing value)."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = high - low
    out = []
    for value in values:
        if value is None:
            out.append(" ")
        elif span == 0:
            out.append(BARS[len(BARS) // 2])
        else:
            out.append(BARS[round((value - low) / span * (len(BARS) - 1))])
    return "".join(out)


def _table(profiles: list[TableProfile]) -> Table:
    from rich.table import Table

    newest = profiles[-1]
    table = Table(show_edge=False, header_style="bold")
    for title in ("column", "kind", "nulls", "distinct", "min", "max", "mean", "median", "top"):
        table.add_column(title, overflow="fold")
    for name, stats in newest.columns.items():

        def history(metric: str, name: str = name) -> str:
            values = [_metric(p, name, metric) for p in profiles]
            return spark(values) if len(values) > 1 else ""

        nulls = "" if stats.nulls is None else f"{stats.nulls:.1%}"
        median = stats.quantiles.get("p50") if stats.quantiles else None
        table.add_row(
            name,
            stats.kind,
            f"{nulls} {history('nulls')}".strip(),
            f"{_shown(stats.distinct)} {history('distinct')}".strip(),
            _shown(stats.min) if stats.shown else "(PII)",
            _shown(stats.max) if stats.shown else "(PII)",
            f"{_shown(stats.mean)} {history('mean')}".strip() if stats.shown else "(PII)",
            _shown(median) if stats.shown else "(PII)",
            ", ".join(map(str, stats.top or [])) if stats.shown else "(PII)",
        )
    return table


def _metric(profile: TableProfile, column: str, metric: str) -> float | None:
    stats = profile.columns.get(column)
    value = None if stats is None else getattr(stats, metric)
    return float(value) if isinstance(value, int | float) else None


def _shown(value: Any) -> str:
    from datetime import datetime

    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    text = str(value)
    try:  # a moment, to the minute
        return f"{datetime.fromisoformat(text):%Y-%m-%d %H:%M}" if "T" in text else text
    except ValueError:
        return text


def _json(stored: StoredProfile, profile: TableProfile) -> dict[str, Any]:
    return {
        "kind": stored.kind,
        "ref": stored.ref,
        "run_id": stored.run_id,
        "profiled_at": stored.profiled_at.isoformat(),
        "rows": stored.rows,
        "columns": {
            name: {k: v for k, v in stats.__dict__.items() if v is not None}
            for name, stats in profile.columns.items()
        },
    }
