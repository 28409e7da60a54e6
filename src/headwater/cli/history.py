"""What `headwater runs` and `headwater status` draw, from what their --format json prints."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from headwater.cli.render import _STATUS, _duration, _row, _titled, streams_table

_RUN_STATUS = {
    "success": "[green]success[/]",
    "failed": "[red]failed[/]",
    "running": "[cyan]running[/]",
    "interrupted": "[red]interrupted[/]",
}
_TASK_STATUS = {**_STATUS, "landed": "[green]landed[/]"}


def run_history_table(history: list[dict[str, Any]]) -> Table:
    """One row per run, newest first (`headwater runs`, `headwater status`)."""
    columns = ("run", "command", "status", "started", "took", "landed", "models", "rules failed")
    table = _titled("Runs (UTC)", *columns)
    table.columns[3].min_width = 10  # a date whole
    for r in history:
        table.add_row(
            r["run_id"],
            escape(r["command"]),
            _RUN_STATUS.get(r["status"], escape(r["status"])),
            _when(r["started_at"]).replace(" ", "\n"),
            _took(r["seconds"]),
            "" if r["landed"] is None else f"{r['landed']:,}",
            _models_built(r),
            _rules_failed(r["rules_failed"], r["rules_failed_error"]),
        )
    return table


def run_detail(console: Console, run: dict[str, Any]) -> None:
    """One run (`headwater runs RUN`): its tasks, their errors in full, its failed rules and
    what its summary notes."""
    status = _RUN_STATUS.get(run["status"], escape(run["status"]))
    console.print(
        f"[bold]Run {run['run_id']}[/] · headwater {escape(run['command'])} · {status}",
        highlight=False,
    )
    ended = f"ended {_when(run['ended_at'])} UTC" if run["ended_at"] else "not ended"
    took = f", took {_took(run['seconds'])}" if run["seconds"] is not None else ""
    console.print(f"started {_when(run['started_at'])} UTC, {ended}{took}", highlight=False)
    if run["tasks"]:
        console.print(_tasks_table(run["tasks"]))
    else:
        console.print("No task recorded.")
    explained = [t for t in run["tasks"] if t["error"]]
    if explained:
        console.print("\n[bold]Errors[/]")
    for t in explained:
        status = _TASK_STATUS.get(t["status"], escape(t["status"]))
        tries = f" after {t['attempts']} attempts" if (t["attempts"] or 1) > 1 else ""
        console.print(f"{status} {t['stage']} {escape(t['task'])}{tries}:", highlight=False)
        console.print(escape(_indented(t["error"])), highlight=False, soft_wrap=True)
    _run_rules(console, run["rules"])
    _run_notes(console, run)


def _tasks_table(tasks: list[dict[str, Any]]) -> Table:
    table = _titled("Tasks", "stage", "task", "status", "rows", "quarantined", "attempts", "took")
    for t in tasks:
        attempts = t["attempts"]
        tries = "" if attempts is None else f"[yellow]{attempts}[/]" if attempts > 1 else "1"
        table.add_row(
            t["stage"],
            escape(t["task"]),
            _TASK_STATUS.get(t["status"], escape(t["status"])),
            "" if t["rows"] is None else f"{t['rows']:,}",
            "" if not t["quarantined"] else f"{t['quarantined']:,}",
            tries,
            _took(t["seconds"]),
        )
    return table


def _run_rules(console: Console, rules: list[dict[str, Any]]) -> None:
    if not rules:
        return
    failed = [r for r in rules if not r["passed"]]
    passed = len(rules) - len(failed)
    if failed:
        console.print()
        table = _titled("Rules failed", "table", "rule", "severity", "observed", "threshold")
        for r in failed:
            severity = "[red]error[/]" if r["severity"] == "error" else "[yellow]warn[/]"
            table.add_row(
                escape(r["target"]),
                escape(r["rule"]),
                severity,
                _stored_metric(r["type"], r["metric"]),
                r["threshold"] or "",
            )
        sampled = [r for r in failed if r["samples"]]
        if sampled:
            table.caption = "\n".join(
                f"{r['rule']}: e.g. " + "; ".join(_row(s) for s in r["samples"][:3])
                for r in sampled
            )
            table.caption_justify = "left"
        console.print(table)
    console.print(f"{passed}/{len(rules)} rules passed", highlight=False)


def _run_notes(console: Console, run: dict[str, Any]) -> None:
    for note in run["notes"]:
        console.print(f"[bold]note:[/] {escape(str(note))}", highlight=False, soft_wrap=True)
    for table, warnings in run["warnings"].items():
        for warning in warnings:
            console.print(
                f"[yellow]warning:[/] {escape(table)}: {escape(str(warning))}",
                highlight=False,
                soft_wrap=True,
            )
    for table, batches in run["held"].items():
        console.print(
            f"[yellow]held:[/] {escape(table)}: {len(batches)} batch(es) held from readers "
            f"({escape(', '.join(batches))}); `headwater batches` lists them",
            highlight=False,
            soft_wrap=True,
        )


def status(console: Console, shown: dict[str, Any], streams: list[Any]) -> None:
    """`headwater status`: the tables, open alerts, recent runs, streams, then the verdict."""
    console.print(_tables_health(shown["tables"]))
    if shown["alerts"]:
        table = _titled("Open alerts", "opened (UTC)", "severity", "subject", "message")
        for a in shown["alerts"]:
            severity = "[red]error[/]" if a["severity"] == "error" else escape(a["severity"])
            table.add_row(
                _when(a["opened_at"]), severity, escape(a["subject"]), escape(a["message"])
            )
        console.print(table)
    console.print(run_history_table(shown["runs"]) if shown["runs"] else "No run recorded yet.")
    for env, r in shown.get("releases", {}).items():
        code = f", code {r['code_version']}" if r["code_version"] else ""
        console.print(
            f"{escape(env)} shows release {r['id']} ({escape(r['kind'])}, {_when(r['created_at'])} "
            f"UTC by {escape(r['created_by'])}{code})",
            highlight=False,
        )
    if streams:
        console.print(streams_table(streams))
    warned = sum(not r["blocking"] for t in shown["tables"] for r in t["failing_rules"])
    aside = f" ({warned} warn rule(s) failing)" if warned else ""
    if not shown["problems"]:
        console.print(
            f"[green]ok[/]: {len(shown['tables'])} tables, none late, failing or held{aside}.",
            highlight=False,
        )
        return
    console.print(f"[red]{len(shown['problems'])} problem(s)[/]{aside}:", highlight=False)
    for problem in shown["problems"]:
        console.print(f"  - {escape(problem['message'])}", highlight=False, soft_wrap=True)


def _tables_health(tables: list[dict[str, Any]]) -> Table:
    # one-word headers: the names of the first column keep the width
    table = _titled("Tables (UTC)", "table", "updated", "sla", "run", "failing", "held")
    _keep_whole(table, [t["table"] for t in tables])
    for t in tables:
        fresh = "[dim]no sla[/]"
        if t["sla"]:
            verdict = "[red]LATE[/]" if t["late"] else "[green]fresh[/]"
            sla = ", ".join(f"{k} {v}" for k, v in t["sla"].items())
            fresh = f"{verdict}\n[dim]{escape(sla)}[/]"
        last = t["last_run"]
        newest = ""
        if last is not None:
            tries = f" ({last['attempts']} attempts)" if (last["attempts"] or 1) > 1 else ""
            status = _TASK_STATUS.get(last["status"], escape(last["status"]))
            # the id's random part: `headwater runs` takes it for the run
            newest = f"{status}{tries}\n[dim]{last['run_id'].rpartition('-')[2]}[/]"
        blocking = sum(r["blocking"] for r in t["failing_rules"])
        warning = len(t["failing_rules"]) - blocking
        rules = ", ".join(
            [f"[red]{blocking} blocking[/]"] * bool(blocking) + [f"{warning} warn"] * bool(warning)
        )
        held = f"[red]{t['held_batches']}[/]" if t["held_batches"] else ""
        table.add_row(
            escape(t["table"]),
            _when(t["updated_at"]).replace(" ", "\n") or "never",
            fresh,
            newest,
            rules,
            held,
        )
    return table


def _models_built(run: dict[str, Any]) -> str:
    if "build" not in run["tasks"]:
        return ""
    parts = [f"{run['models_built']} built"] if run["models_built"] else []
    if run["models_failed"]:
        parts.append(f"[red]{run['models_failed']} failed[/]")
    if run["models_skipped"]:
        parts.append(f"[yellow]{run['models_skipped']} skipped[/]")
    return ", ".join(parts) or "[dim]up to date[/]"


def _rules_failed(failed: int, errors: int) -> str:
    if not failed:
        return ""
    return f"{failed} [red]({errors} error)[/]" if errors else str(failed)


def _when(moment: str | None) -> str:
    """An ISO time as `YYYY-MM-DD HH:MM:SS` (UTC)."""
    from datetime import UTC, datetime

    if moment is None:
        return ""
    return f"{datetime.fromisoformat(moment).astimezone(UTC):%Y-%m-%d %H:%M:%S}"


def _took(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    return f"{minutes // 60}h {minutes % 60:02d}m"


def _keep_whole(table: Table, names: list[str], widest: int = 28) -> None:
    """Keep the first column's names whole (up to `widest`): the other columns wrap."""
    table.columns[0].min_width = min(widest, max((len(n) for n in names), default=0))


def _stored_metric(rule_type: str, metric: float | None) -> str:
    """A recorded rule's measure as `headwater check` shows it."""
    if metric is None:
        return "n/a"
    if rule_type == "freshness":
        return _duration(metric) + " old"
    if rule_type == "completeness":
        return f"{metric:.2%} null"
    return f"{metric:,.6g}"


def _indented(text: str) -> str:
    return "\n".join("  " + line for line in text.rstrip().splitlines())
