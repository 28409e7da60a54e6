"""`headwater runs [RUN]`: the run history, newest first; one run's tasks (status, rows,
attempts, timings, errors), its rule failures and its notes.

It reads the catalog only, never the warehouse (a run may be writing it).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from headwater.zones.catalog import Catalog

ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]
NEWEST = ("latest", "last")  # what RUN may say for the newest run
UNLEASED = ("check", "ingest --follow")  # commands that run without the project's run lease
STAGES = ("ingest", "build", "check")  # the order a run's tasks are shown in


def runs(
    run: Annotated[
        str | None,
        typer.Argument(
            metavar="RUN",
            help="A run id, or the start of one, or of its random part after the `-`, or "
            "`latest`: show that run's tasks.",
            show_default=False,
        ),
    ] = None,
    project: ProjectDir = Path("."),
    limit: Annotated[int, typer.Option(min=1, help="How many runs the history shows.")] = 20,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Show the run history, newest first: command, status, when, how long, rows landed,
    models built and failed, rules failed. With RUN, that run's tasks (status, rows,
    attempts, seconds, the full error), the rules that failed in it and its notes.

    A run recorded as running that no live process holds any more (it was killed) shows as
    interrupted. RUN naming no run exits 2.
    """
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    from headwater.cli import history as draw
    from headwater.cli.main import _catalog, _check_format, _console, _errors, _print_json
    from headwater.project import load_project

    _check_format(fmt)
    with _errors():
        loaded = load_project(project)
        with _catalog(loaded) as catalog:
            if run is None:
                history = run_history(catalog, limit)
            else:
                detail = run_detail(catalog, resolve(catalog, run), order=loaded.dag.order)
    if run is None:
        if fmt == "json":
            _print_json({"runs": history})
        elif history:
            _console().print(draw.run_history_table(history))
        else:
            _console().print("No run recorded yet: `headwater run` makes the first.")
    elif fmt == "json":
        _print_json(detail)
    else:
        draw.run_detail(_console(), detail)


def run_history(catalog: Catalog, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` runs, as `--format json` shows them (and the table is drawn from)."""
    found = catalog.run_history(limit)
    interrupted = _interrupted(catalog, found)
    return [_run_json(r, interrupted) for r in found]


def _run_json(run: dict[str, Any], interrupted: set[str]) -> dict[str, Any]:
    started, ended = utc(run["started_at"]), utc(run["ended_at"])
    builds = run["tasks"].get("build", {})
    failed = run["rules_failed"]
    return {
        "run_id": run["run_id"],
        "command": run["command"],
        "status": "interrupted" if run["run_id"] in interrupted else run["status"],
        "started_at": iso(started),
        "ended_at": iso(ended),
        "seconds": _seconds(started, ended),
        "landed": run["landed"] if "ingest" in run["tasks"] else None,
        "quarantined": run["quarantined"],
        "models_built": builds.get("built", 0),
        "models_failed": builds.get("failed", 0) + builds.get("blocked", 0),
        "models_skipped": builds.get("skipped", 0),
        "rules_failed": sum(failed.values()),
        "rules_failed_error": failed.get("error", 0),
        "tasks": run["tasks"],
    }


def _interrupted(catalog: Catalog, found: list[dict[str, Any]]) -> set[str]:
    """The runs recorded as running that no live process runs: all but the newest of those
    that hold the project's lease while they run, and that one too unless a live holder has
    the lease now."""
    from headwater.orchestrate.lease import RUN

    leased = [
        r["run_id"]
        for r in found
        if r["status"] == "running" and r["ended_at"] is None and r["command"] not in UNLEASED
    ]
    if not leased:
        return set()
    holder = catalog.lease_holder(RUN)
    live = holder is not None and holder.gone(datetime.now(UTC)) is None
    return set(leased[1:] if live else leased)  # newest first


def resolve(catalog: Catalog, wanted: str) -> str:
    """The id of the run `wanted` names: an id; the start of one, or of its random part
    (after the `-`), that only one run has; `latest` or `last`.

    Raises:
        UsageError: no run matches (with the ids most like it), or several do.
    """
    import difflib

    from headwater.errors import UsageError

    key = wanted.strip()
    if key.lower() in NEWEST:
        newest = catalog.recent_runs(1)
        if not newest:
            raise UsageError("no run recorded yet", hint="`headwater run` makes the first")
        return str(newest[0]["run_id"])
    if key and catalog.find_run(key) is not None:
        return key
    matches = catalog.matching_runs(key, limit=6) if key else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(matches[:5]) + (", …" if len(matches) > 5 else "")
        raise UsageError(f"run {wanted} is ambiguous: it matches {shown}", hint="give more of it")
    recent = [r["run_id"] for r in catalog.recent_runs(50)]
    close = difflib.get_close_matches(key, recent, n=3, cutoff=0.5)
    if close:
        hint = f"did you mean {' or '.join(close)}?"
    elif recent:
        hint = f"the newest runs: {', '.join(recent[:3])} (`headwater runs` lists them)"
    else:
        hint = "no run is recorded yet: `headwater run` makes the first"
    raise UsageError(f"no run {wanted}", hint=hint)


def run_detail(catalog: Catalog, run_id: str, *, order: list[str]) -> dict[str, Any]:
    """One run as `--format json` shows it: the run, its tasks in the order they ran (models
    in DAG order), every rule result it recorded, and what its summary says."""
    found = catalog.find_run(run_id)
    assert found is not None  # resolved
    recent = catalog.recent_runs(50)
    interrupted = _interrupted(catalog, recent + [found] * (found not in recent))
    summary = _summary(found["summary"])
    quarantined = summary.get("quarantined") or {}
    rank = {name: n for n, name in enumerate(order)}

    def place(task: dict[str, Any]) -> tuple[Any, ...]:
        stage = STAGES.index(task["stage"]) if task["stage"] in STAGES else len(STAGES)
        started = task["started_at"]
        return (stage, started is None, started or "", rank.get(task["task"], 0), task["task"])

    tasks = [_task_json(t, quarantined) for t in sorted(catalog.run_tasks(run_id), key=place)]
    started, ended = utc(found["started_at"]), utc(found["ended_at"])
    return {
        "run_id": run_id,
        "command": found["command"],
        "status": "interrupted" if run_id in interrupted else found["status"],
        "started_at": iso(started),
        "ended_at": iso(ended),
        "seconds": _seconds(started, ended),
        "tasks": tasks,
        "rules": [_rule_json(r) for r in catalog.run_checks(run_id)],
        "notes": list(summary.get("notes") or []),
        "warnings": dict(summary.get("warnings") or {}),
        "held": dict(summary.get("held") or {}),
        "summary": summary,
    }


def _task_json(task: dict[str, Any], quarantined: dict[str, int]) -> dict[str, Any]:
    started, ended = utc(task["started_at"]), utc(task["ended_at"])
    stored = task["quarantined"]
    return {
        "stage": task["stage"],
        "task": task["task"],
        "status": task["status"],
        "rows": task["rows"],
        # a model's quarantined rows are in the run's summary, not its task
        "quarantined": stored if stored is not None else quarantined.get(task["task"]),
        "attempts": task["attempts"],
        "started_at": iso(started),
        "ended_at": iso(ended),
        "seconds": _seconds(started, ended),
        "error": task["error"],
    }


def _rule_json(result: dict[str, Any]) -> dict[str, Any]:
    samples = result["samples"]
    return {
        "target": result["target"],
        "rule": result["rule"],
        "type": result["type"],
        "severity": result["severity"],
        "passed": bool(result["passed"]),
        "metric": result["metric"],
        "threshold": result["threshold"],
        "samples": json.loads(samples) if samples else [],
        "checked_at": iso(utc(result["checked_at"])),
    }


def _summary(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        loaded = json.loads(text)
    except ValueError:  # written by hand, or cut short: the run stands without it
        return {}
    return loaded if isinstance(loaded, dict) else {}


def utc(moment: datetime | None) -> datetime | None:
    """`moment` in UTC: SQLite hands back what it stored without its zone, and every time the
    catalog keeps is UTC."""
    if moment is None:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _seconds(started: datetime | None, ended: datetime | None) -> float | None:
    if started is None or ended is None:
        return None
    return round((ended - started).total_seconds(), 3)
