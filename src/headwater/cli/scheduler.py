"""`headwater scheduler`: cron schedules, data-arrival triggers and SLA checks, foreground."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from headwater.orchestrate.scheduler import Scheduler, Tick

ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]


def scheduler(
    project: ProjectDir = Path("."),
    once: Annotated[
        bool,
        typer.Option("--once", help="Tick once (run what is due, check SLAs) and exit."),
    ] = False,
    every: Annotated[
        float,
        typer.Option(help="Seconds between SLA checks (jobs run at their cron time)."),
    ] = 30.0,
    fmt: Annotated[str, typer.Option("--format", help="table | json (one object per tick)")] = (
        "table"
    ),
    metrics_port: Annotated[
        int,
        typer.Option(
            "--metrics-port",
            min=0,
            help="Serve Prometheus metrics at http://127.0.0.1:PORT/metrics (0: not served).",
        ),
    ] = 0,
) -> None:
    """Run the project's schedules in the foreground: cron jobs of headwater.yml, contracts
    and models; builds of what reads newly landed raw data; freshness and run-duration SLAs,
    alerting even when nothing ran. SIGTERM or Ctrl-C lets a run under way finish, then stops.
    """
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    from datetime import UTC, datetime

    from headwater.cli.main import _check_format, _console, _errors, _state
    from headwater.cli.metrics import metrics_served
    from headwater.orchestrate.scheduler import Scheduler
    from headwater.orchestrate.stores import LakeStores
    from headwater.project import load_project

    _check_format(fmt)
    failed = False

    def shown(tick: Tick) -> None:
        nonlocal failed
        failed = failed or any(not report.ok for _, report in tick.runs)
        if fmt == "json":
            _console().file.write(json.dumps(_tick_json(tick), default=str) + "\n")
            _console().file.flush()
        else:
            _print_tick(_console(), tick)

    with _errors():
        loaded = load_project(project)
        stores = LakeStores.open(loaded)
        _state["scrub"] = stores.secrets.scrub
        try:
            ticking = Scheduler(loaded, stores, clock=lambda: datetime.now(UTC), on_tick=shown)
            with metrics_served(loaded, stores.catalog, stores.lake, metrics_port):
                _schedule(ticking, once=once, every=every, name=loaded.settings.name)
        finally:
            stores.close()
    if once and failed:
        raise typer.Exit(1)


def _schedule(ticking: Scheduler, *, once: bool, every: float, name: str) -> None:
    import threading

    from headwater.cli.follow import stopping
    from headwater.cli.main import _stderr

    if once:
        ticking.tick()
        return
    names = ", ".join(j.name for j in ticking.jobs) or "no cron jobs"
    _stderr().print(
        f"scheduling {name} ({names}; data-arrival builds; SLA checks every {every:g} s). "
        "Ctrl-C or SIGTERM: finish the run at hand and stop",
        highlight=False,
    )
    stop = threading.Event()
    with stopping(stop, _stderr(), finishing="finishing the run at hand"):
        ticking.serve(stop, every=every)


def _print_tick(console: Console, tick: Tick) -> None:
    at = tick.now.strftime("%Y-%m-%d %H:%M:%S %Z")
    for why, report in tick.runs:
        verdict = "[green]ok[/]" if report.ok else "[red]failed[/]"
        console.print(f"{at} ran {why}: {verdict} (run {report.run_id})", highlight=False)
    for waiting in tick.waiting:
        console.print(f"{at} [yellow]waiting[/] {waiting}", highlight=False)
    checked = tick.checked
    if checked is None:
        return
    for key in checked.opened:
        late = next((s.why for s in checked.late if f"sla:{s.table}" == key), key)
        console.print(f"{at} [red]alert[/] {late}", highlight=False)
    for key in checked.resolved:
        console.print(f"{at} [green]resolved[/] {key}", highlight=False)
    for problem in checked.undelivered:
        console.print(f"{at} [yellow]alert not delivered[/] {problem}", highlight=False)


def _tick_json(tick: Tick) -> dict[str, Any]:
    checked = tick.checked
    return {
        "at": tick.now.isoformat(),
        "runs": [{"why": why, "run_id": r.run_id, "ok": r.ok} for why, r in tick.runs],
        "waiting": tick.waiting,
        "late": [{"table": s.table, "why": s.why} for s in checked.late] if checked else [],
        "opened": checked.opened if checked else [],
        "resolved": checked.resolved if checked else [],
        "undelivered": checked.undelivered if checked else [],
    }
