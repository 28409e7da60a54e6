"""How the CLI shows things: progress while a run works, then summary tables."""

from __future__ import annotations

from collections import Counter
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

if TYPE_CHECKING:
    import pyarrow as pa

    from headwater.observe import Event
    from headwater.orchestrate import ModelOutcome, RunReport
    from headwater.project import Project
    from headwater.quality import CheckResult

_STATUS = {
    "built": "[green]built[/]",
    "up_to_date": "[dim]up to date[/]",
    "failed": "[red]failed[/]",
    "blocked": "[red]blocked[/]",
    "skipped": "[yellow]skipped[/]",
    "inlined": "[dim]inlined[/]",
}


class Progress:
    """A progress bar per stage, fed by the run's events."""

    def __init__(
        self,
        console: Console,
        project: Project,
        stages: tuple[str, ...],
        *,
        zones: tuple[str, ...] | None = None,
    ):
        self._bar = RichProgress(
            TextColumn("{task.description:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[current]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        landing = [c for c in project.contracts.values() if zones is None or c.zone in zones]
        totals = {"ingest": len(landing), "build": len(project.models)}
        self._tasks = {s: self._bar.add_task(s, total=totals[s], current="") for s in stages}

    def __enter__(self) -> Progress:
        self._bar.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.stop()

    def sink(self, event: Event) -> None:
        task = self._tasks.get(event.stage)
        if task is None:
            return
        if event.status == "start":
            self._bar.update(task, current=event.subject)
        elif event.status == "retrying":
            wait = event.detail.get("wait", 0)
            self._bar.update(task, current=f"{event.subject} (retry in {wait:.1f} s)")
        elif event.status == "waiting":
            self._bar.update(task, current=f"{event.subject} waits: {event.detail['waiting']}")
        else:
            self._bar.advance(task)


def report(console: Console, result: RunReport, project: Project) -> None:
    """Print the run summary: landed, quarantined, built, rules."""
    if result.landed or result.ingest_errors:
        console.print(_landed_table(result))
        quarantine = _quarantine_table(result)
        if quarantine.row_count:
            console.print(quarantine)
    if result.models:
        console.print(_models_table(result, project))
    if result.checks:
        console.print(checks_table(result.checks))
    for table, error in result.ingest_errors.items():
        console.print(f"[red]ingest failed[/] {table}: {error}", highlight=False)
    for x in result.landed:
        for warning in x.warnings:
            console.print(
                f"[yellow]warning[/] {x.table}: {escape(warning)}", highlight=False, soft_wrap=True
            )
    for table, batches in result.held.items():
        for batch, why in batches.items():
            console.print(
                f"[red]held[/] {table} batch {batch}: {why}; it stays in the lake, out of "
                f"{table} and what reads it, until its rules pass or `headwater batches "
                f"release|discard {batch[:12]}` decides",
                highlight=False,
            )
    for outcome in result.models.values():
        if outcome.restated:
            console.print(describe_restatement(outcome), highlight=False)
        if outcome.audited:
            console.print(
                f"audited {outcome.name} again: its rules (or the tables they read) changed",
                highlight=False,
            )
    if result.removed:
        console.print(
            f"removed the views of models no longer in the project: {', '.join(result.removed)}",
            highlight=False,
        )
    for note in result.notes:
        console.print(f"[yellow]note[/] {escape(note)}", highlight=False, soft_wrap=True)
    for outcome in result.models.values():
        if outcome.status == "built" and outcome.error:  # a version changed outside headwater
            console.print(f"[yellow]rebuilt[/] {outcome.name}: {outcome.error}", highlight=False)
    for outcome in result.models.values():
        if outcome.status in ("failed", "blocked"):
            console.print(
                f"[red]{outcome.status}[/] {outcome.name}: {outcome.error}", highlight=False
            )
    landed = sum(x.rows for x in result.landed)
    quarantined = sum(x.quarantined for x in result.landed)
    built = sum(m.status == "built" for m in result.models.values())
    failed = sum(not c.passed for c in result.checks)
    if result.zone_rows:
        zones = " · ".join(f"{zone}: {rows:,} rows" for zone, rows in result.zone_rows.items())
        console.print(f"Zones now hold — {zones}", highlight=False)
    verdict = "[green]ok[/]" if result.ok else "[red]failed[/]"
    console.print(
        f"Run {result.run_id}: {verdict} — {landed:,} rows landed, "
        f"{quarantined:,} quarantined, {built} models built, "
        f"{len(result.checks) - failed}/{len(result.checks)} rules passed."
    )
    if result.release is not None:
        console.print(
            f"Release {result.release} written (`headwater releases` lists them; "
            "`headwater rollback` goes back to the one before).",
            highlight=False,
        )
    if project.settings.engine == "spark":  # `headwater sql` does not run there yet
        console.print(
            "Warehouse: the Spark session's catalog hw_warehouse (beside the lake's "
            "`headwater` catalog, in the project's catalog database)",
            highlight=False,
        )
        return
    warehouse = project.root / project.settings.warehouse
    published = [n for n, m in result.models.items() if m.status in ("built", "up_to_date")]
    landed_tables = [x.table for x in result.landed if x.rows]
    example = next(iter([*published, *landed_tables]), None)
    try_it = f'  (try: headwater sql "select * from {example} limit 5" -p {project.root})'
    console.print(f"Warehouse: {warehouse}{try_it if example else ''}", highlight=False)


def report_json(result: RunReport) -> dict[str, Any]:
    """The run summary for machines (`--format json`): everything the tables show, unabridged."""
    return {
        "run_id": result.run_id,
        "ok": result.ok,
        "release": result.release,
        "staged": result.staged,
        "landed": [
            {
                "table": x.table,
                "read": x.read,
                "rows": x.rows,
                "quarantined": x.quarantined,
                "late": x.late,
                "reasons": dict(Counter(x.reasons).most_common()),
            }
            for x in result.landed
        ],
        "ingest_errors": result.ingest_errors,
        "held": {t: b for t, b in result.held.items() if b},
        "models": [
            {
                "model": m.name,
                "status": m.status,
                "rows": m.rows,
                "seconds": round(m.seconds, 3),
                "error": m.error,
                "intervals": m.intervals,
                "restated": m.restated,
                "quarantined": m.quarantined,
                "audited": m.audited,
                "attempts": m.attempts,
            }
            for m in result.models.values()
        ],
        "removed": result.removed,
        "notes": result.notes,
        "checks": [check_json(c) for c in result.checks],
        "zone_rows": result.zone_rows,
    }


def nothing_to_do(result: RunReport, project: Project) -> dict[str, Any]:
    """What `headwater build --format json` reports when nothing has changed since `result`
    (a whole-project build that published every model): the same shape, every model up to
    date, and no run (`run_id` None, `recorded` false); `kinds` and `warehouse` let the
    table be printed without loading the project."""
    return {
        "run_id": None,
        "recorded": False,
        "ok": True,
        "release": None,
        "staged": None,
        "landed": [],
        "ingest_errors": {},
        "held": {},
        "models": [
            {
                "model": name,
                "status": "inlined" if m.status == "inlined" else "up_to_date",
                "rows": m.rows,
                "seconds": 0.0,
                "error": None,
                "intervals": 0,
                "restated": 0,
                "quarantined": 0,
                "audited": False,
                "attempts": 1,
            }
            for name in project.dag.order
            if (m := result.models.get(name)) is not None
        ],
        "removed": [],
        "notes": [],
        "checks": [],
        "zone_rows": result.zone_rows,
        "kinds": {name: project.models[name].config.kind.value for name in result.models},
        "warehouse": str(project.root / project.settings.warehouse),
    }


def answered(console: Console, stored: dict[str, Any]) -> None:
    """Print a build answered from the last one's stamp (see `nothing_to_do`)."""
    table = _titled("Models", "model", "kind", "status", "rows", "seconds")
    for m in stored["models"]:
        rows = "" if m["rows"] is None else f"{m['rows']:,}"
        table.add_row(m["model"], stored["kinds"][m["model"]], _STATUS[m["status"]], rows, "0.00")
    console.print(table)
    if stored["zone_rows"]:
        zones = " · ".join(f"{zone}: {rows:,} rows" for zone, rows in stored["zone_rows"].items())
        console.print(f"Zones now hold — {zones}", highlight=False)
    console.print(
        f"Nothing to do: the {len(stored['models'])} models are up to date (nothing the last "
        "build read has changed since; no run recorded).",
        highlight=False,
    )
    console.print(f"Warehouse: {stored['warehouse']}", highlight=False)


def describe_restatement(outcome: ModelOutcome) -> str:
    """ "restated 3 intervals of marts.events_daily because 41 late rows landed"."""
    why = (
        f"because {outcome.late_rows:,} late rows landed"
        if outcome.late_rows
        else "for new data inside intervals already built, and the lookback"
    )
    return f"restated {outcome.restated} intervals of {outcome.name} {why}"


def checks_table(results: list[CheckResult]) -> Table:
    """One row per rule; failing rules list a few sample rows beneath the table."""
    table = _titled("Rules", "table", "rule", "result", "observed", "threshold")
    for r in results:
        table.add_row(r.target, r.rule.name, _verdict(r), _observed(r), r.threshold)
    failing = [r for r in results if not r.passed and r.samples]
    if failing:
        table.caption = "\n".join(
            f"{r.rule.name}: e.g. " + "; ".join(_row(s) for s in r.samples[:3]) for r in failing
        )
        table.caption_justify = "left"
    return table


def _verdict(result: CheckResult) -> str:
    if result.passed:
        return "[green]pass[/]"
    return "[red]FAIL[/]" if result.blocking else "[yellow]warn[/]"


def _observed(result: CheckResult) -> str:
    if result.metric is None:
        return "n/a"
    if result.rule.type.value == "freshness":
        return _duration(result.metric) + " old"
    if result.rule.type.value == "completeness":
        return f"{result.metric:.2%} null"
    return f"{result.metric:,.0f}"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def check_json(result: CheckResult) -> dict[str, Any]:
    return {
        "target": result.target,
        "rule": result.rule.name,
        "type": result.rule.type.value,
        "severity": result.rule.severity.value,
        "passed": result.passed,
        "metric": result.metric,
        "threshold": result.threshold,
        "sql": result.sql,
        "samples": result.samples,
    }


def runs_table(runs: list[dict[str, Any]]) -> Table:
    table = _titled("Runs", "run", "command", "started", "seconds", "status")
    for r in runs:
        seconds = (r["ended_at"] - r["started_at"]).total_seconds() if r["ended_at"] else None
        status = {"success": "[green]success[/]", "failed": "[red]failed[/]"}.get(
            r["status"], r["status"]
        )
        table.add_row(
            r["run_id"],
            r["command"],
            f"{r['started_at']:%Y-%m-%d %H:%M:%S}",
            "" if seconds is None else f"{seconds:.1f}",
            status,
        )
    return table


def streams_table(streams: list[Any]) -> Table:
    """Each stream contract: where raw stands in its source, when it last landed, its lag."""
    table = _titled("Streams", "raw table", "source", "position", "last landed", "lag")
    for s in streams:
        if s.position.get("lsn"):
            position = f"LSN {s.position['lsn']}"
        elif s.position.get("offsets"):
            position = f"{len(s.position['offsets'])} partition(s)"
        else:
            position = "nothing landed yet"
        if s.error:
            lag = f"[red]{s.error}[/]"
        elif "wal_bytes" in s.lag:
            lag = f"{s.lag['wal_bytes']:,} bytes of WAL held by the slot"
        else:
            lag = f"{sum(s.lag.values()):,} message(s)"
        landed = f"{s.landed_at:%Y-%m-%d %H:%M:%S}" if s.landed_at else ""
        table.add_row(s.table, s.kind, position, landed, lag)
    return table


def arrow_table(data: pa.Table) -> Table:
    """Query results, every value whole (wrapped in its cell when the terminal is narrow)."""
    table = Table(box=box.SIMPLE_HEAD)
    for name in data.schema.names:
        table.add_column(name, overflow="fold")
    for row in data.to_pylist():
        table.add_row(*["" if v is None else str(v) for v in row.values()])
    return table


def _landed_table(result: RunReport) -> Table:
    table = _titled("Ingest", "raw table", "read", "rows landed", "quarantined", "late")
    for x in result.landed:
        table.add_row(x.table, x.read, f"{x.rows:,}", f"{x.quarantined:,}", f"{x.late:,}")
    for name in result.ingest_errors:
        table.add_row(name, "", "[red]failed[/]", "", "")
    return table


def _quarantine_table(result: RunReport) -> Table:
    table = _titled("Quarantined (raw.<table>__quarantine)", "raw table", "reason", "records")
    for x in result.landed:
        for reason, count in Counter(x.reasons).most_common():
            table.add_row(x.table, reason, f"{count:,}")
    return table


def _models_table(result: RunReport, project: Project) -> Table:
    table = _titled("Models", "model", "kind", "status", "rows", "seconds")
    for name in project.dag.order:
        m = result.models.get(name)
        if m is None:
            continue
        rows = "" if m.rows is None else f"{m.rows:,}"
        status = _STATUS[m.status]
        if m.intervals:
            status += f" [dim]({m.intervals} interval{'s' if m.intervals > 1 else ''})[/]"
        table.add_row(
            name, project.models[name].config.kind.value, status, rows, f"{m.seconds:.2f}"
        )
    return table


def _row(sample: dict[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in list(sample.items())[:4]) + ")"


def _titled(title: str, *columns: str) -> Table:
    """A summary table whose cells wrap, never cut: in an 80-column CI log two rules or models
    whose names share a prefix must still be told apart."""
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table
