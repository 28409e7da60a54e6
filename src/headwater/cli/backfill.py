"""`headwater backfill MODEL --start --end`: (re)compute intervals of a model, resumably."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from headwater.observe import Event
    from headwater.orchestrate.backfill import BackfillReport

ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]
FAILURES_SHOWN = 3  # units listed per distinct error (a broken model fails every unit alike)


def backfill(
    model: Annotated[
        str, typer.Argument(help="The incremental_by_time model, e.g. marts.events_daily.")
    ],
    start: Annotated[
        str,
        typer.Option("--start", help="The first interval: a date or time in UTC, e.g. 2026-01-01."),
    ],
    end: Annotated[
        str, typer.Option("--end", help="Where the range ends, excluded, e.g. 2026-03-01.")
    ],
    parallel: Annotated[
        int | None,
        typer.Option(
            "--parallel",
            min=1,
            max=64,
            help="Units of intervals written at once, each on its own thread.",
            show_default="headwater.yml's defaults.threads, else 4",
        ),
    ] = None,
    only_missing: Annotated[
        bool,
        typer.Option(
            "--only-missing",
            help="Write only the intervals the model has not done (without it, every "
            "interval of the range is written again).",
        ),
    ] = False,
    project: ProjectDir = Path("."),
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Write the intervals of an incremental_by_time model in [start, end) again, in parallel.

    The range is rounded out to whole intervals and cut to what the model's data covers.
    Each interval is replaced (delete + insert) in one transaction and recorded done as it
    commits: run the same command again after Ctrl-C or a crash and it continues where it
    stopped. A model never built, or whose SQL changed, gets its new version filled, then
    published once it holds every interval and its rules pass. Exit 1 if an interval or a
    rule failed, 130 if interrupted.
    """
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    from datetime import UTC

    from headwater.cli.main import _check_format, _console, _errors, _opened, _stderr
    from headwater.orchestrate import uptodate
    from headwater.orchestrate.backfill import Request
    from headwater.orchestrate.backfill import backfill as run_backfill

    _check_format(fmt)
    with _errors():
        first, last = _moment(start, "--start"), _moment(end, "--end")
        uptodate.forget(project.resolve())  # what it changes, the stamp no longer answers for
        with _opened(project) as (loaded, stores):
            request = Request(
                model,
                first,
                last,
                parallel=parallel or loaded.settings.defaults.threads or 4,
                only_missing=only_missing,
                requested_by=_who(),
            )
            shown = _stderr() if fmt == "json" else _console()
            with _Progress(shown, model) as progress:
                report = run_backfill(
                    loaded, stores, request, now=datetime.now(UTC), sink=progress.sink
                )
    if fmt == "json":
        from headwater.cli import render
        from headwater.cli.main import _print_json

        _print_json({**report.as_dict(), "checks": [render.check_json(c) for c in report.checks]})
    else:
        _summary(_console(), report)
    if report.interrupted:
        raise typer.Exit(130)
    if not report.ok:
        raise typer.Exit(1)


def _moment(text: str, flag: str) -> datetime:
    """A date or time the user typed (ISO 8601; naive is UTC)."""
    from headwater.errors import UsageError

    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{flag} {text!r} is not a date or time",
            hint=f"e.g. {flag} 2026-01-01 or {flag} 2026-01-01T06:00 (UTC)",
        ) from None


def _who() -> str | None:
    import getpass
    import os

    if os.environ.get("HEADWATER_USER"):
        return os.environ["HEADWATER_USER"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container's anonymous uid)
        return None


class _Progress:
    """One bar: the intervals of the range done (those done before a resume count at once)."""

    def __init__(self, console: Console, model: str):
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[current]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task = self._bar.add_task(f"backfill {model}", total=None, current="")

    def __enter__(self) -> _Progress:
        return self  # the bar starts once the backfill is planned: an error comes alone

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.stop()

    def sink(self, event: Event) -> None:
        from headwater.orchestrate.backfill import PLANNED

        detail = event.detail
        if event.status == PLANNED:
            self._bar.start()
            self._bar.update(self._task, total=detail["intervals"], completed=detail["skipped"])
        elif event.status == "start":
            self._bar.update(self._task, current=f"{detail['start']:%Y-%m-%d %H:%M}")
        elif event.status == "retrying":
            wait = detail.get("wait", 0)
            self._bar.update(self._task, current=f"retry in {wait:.1f} s: {detail['error']}")
        else:  # built, failed, blocked
            self._bar.advance(self._task, detail["intervals"])


def _summary(console: Console, report: BackfillReport) -> None:
    from rich.markup import escape

    from headwater.cli import render
    from headwater.orchestrate.backfill import VersionState, shown_range

    unit, name = report.unit, report.model
    into = {
        VersionState.PUBLISHED: "the version prod shows",
        VersionState.UNPUBLISHED: "its unpublished version",
        VersionState.NEW: "its new version",
    }[report.version]
    console.print(
        f"Backfill {name} {shown_range(report.span, unit)} into {into}, {report.physical}",
        highlight=False,
    )
    for note in report.notes:
        console.print(f"[yellow]note[/] {escape(note)}", highlight=False, soft_wrap=True)
    if report.checks:
        console.print(render.checks_table(report.checks))
    by_error: dict[str, list[str]] = {}
    for failure in report.failed:
        by_error.setdefault(failure.error, []).append(shown_range(failure.span, unit))
    for error, spans in by_error.items():
        more = f" and {len(spans) - FAILURES_SHOWN} more" if len(spans) > FAILURES_SHOWN else ""
        console.print(
            f"[red]failed[/] {', '.join(sorted(spans)[:FAILURES_SHOWN])}{more}: {escape(error)}",
            highlight=False,
            soft_wrap=True,
        )
    console.print(_verdict(report), highlight=False, soft_wrap=True)
    for line in _next_steps(report):
        console.print(line, highlight=False, soft_wrap=True)


def _verdict(report: BackfillReport) -> str:
    verdict = {"done": "[green]done[/]", "interrupted": "[yellow]interrupted[/]"}.get(
        report.status.value, "[red]failed[/]"
    )
    unit = report.unit.value
    parts = [f"{report.written:,} of {report.intervals:,} {unit}s written"]
    if report.skipped:
        parts.append(f"{report.skipped:,} done before it was stopped (skipped)")
    if report.present:
        parts.append(f"{report.present:,} done already (--only-missing)")
    if report.failed:
        failed = sum(_count(f.span, report) for f in report.failed)
        parts.append(f"{failed:,} failed")
    rows = "" if report.rows is None else f"; {report.rows:,} rows now"
    return f"Backfill {report.backfill_id}: {verdict} — {', '.join(parts)}{rows}."


def _next_steps(report: BackfillReport) -> list[str]:
    from headwater.orchestrate.backfill import VersionState, shown_range

    again = "run the same command again to continue"
    if report.resumed:
        lines = ["(it continued the backfill that was stopped: same model, same range)"]
    else:
        lines = []
    if report.interrupted:
        lines.append(f"Interrupted: {again}; what is written stays written.")
    elif report.failed:
        lines.append(f"Fix what failed, then {again}: only the failed intervals are written.")
    elif report.blocked:
        lines.append(f"Fix the data or the rules, then {again}: it audits the table again.")
    if report.published:
        lines.append(f"Published: prod's {report.model} is now {report.physical}.")
    elif report.version is not VersionState.PUBLISHED and report.ok and report.remaining:
        missing = ", ".join(shown_range(r, report.unit) for r in report.remaining)
        lines.append(
            f"Not published yet: it still lacks {missing}; backfill that too (or `headwater "
            "run`, which completes and publishes it)."
        )
    return lines


def _count(span: tuple[datetime, datetime], report: BackfillReport) -> int:
    from headwater.models.intervals import count

    return count([span], report.unit)
