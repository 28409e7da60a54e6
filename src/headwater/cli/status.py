"""`headwater status`: every table's health (freshness against its SLA, its newest run, its
failing rules, its held batches), open alert incidents, recent runs and where each stream
stands; exit 1 when something needs someone.

It reads the catalog and the lake, never the warehouse (another process may be writing it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from headwater.contracts import Rule
    from headwater.orchestrate.sla import Freshness
    from headwater.orchestrate.stores import LakeStores
    from headwater.project import Project
    from headwater.zones.catalog import Catalog

ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]
Format = Annotated[str, typer.Option("--format", help="table | json")]
UNPUBLISHED = ("failed", "blocked", "skipped")  # a build task that left prod as it was


def status(
    project: ProjectDir = Path("."),
    limit: Annotated[int, typer.Option(min=1, help="How many recent runs to show.")] = 10,
    fmt: Format = "table",
    exit_zero: Annotated[
        bool,
        typer.Option("--exit-zero", help="Exit 0 even when something is late or failing."),
    ] = False,
) -> None:
    """Show every raw table and model: when it was last updated and whether that meets its
    sla, the newest run that landed or built it and how that went, its failing rules and
    held batches; then open alert incidents, recent runs and each stream's lag.

    Exits 1 when something needs someone: a table late against its sla, a newest landing or
    build that failed (or a build blocked or skipped), a blocking rule whose newest result
    fails, or a batch held awaiting a decision. Warn rules, tables without an sla and open
    incidents (the scheduler resolves those) are shown but do not fail it; --exit-zero
    never does.
    """
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    from headwater.cli import history
    from headwater.cli.main import _check_format, _console, _errors, _print_json, _state
    from headwater.orchestrate.stores import LakeStores, project_secrets
    from headwater.project import load_project

    _check_format(fmt)
    with _errors():
        loaded = load_project(project)
        _state["scrub"] = project_secrets(loaded).scrub  # before opening: its errors too
        # the catalog and the lake are all it reads: no warehouse
        stores = LakeStores.open(loaded)
        try:
            shown = _status(loaded, stores, limit)
            streams = _stream_states(loaded, stores)
        finally:
            stores.close()
    if fmt == "json":
        _print_json({**shown, "streams": [s.as_dict() for s in streams]})
    else:
        history.status(_console(), shown, streams)
    if shown["problems"] and not exit_zero:
        raise typer.Exit(1)


def _status(loaded: Project, stores: LakeStores, limit: int) -> dict[str, Any]:
    """Everything status shows but the streams, as `--format json` gives it."""
    from headwater.cli.runs import run_history
    from headwater.orchestrate.sla import freshness

    catalog = stores.catalog
    states = freshness(loaded, catalog, stores.lake, datetime.now(UTC))
    tables = _tables(loaded, catalog, states)
    alerts = [_alert_json(a) for a in catalog.alert_history(limit=1000) if a["resolved_at"] is None]
    return {
        "ok": not any(t["problems"] for t in tables),
        "problems": [p for t in tables for p in t["problems"]],
        "tables": tables,
        "alerts": alerts,
        "runs": run_history(catalog, limit),
        "releases": _releases(catalog),
    }


def _releases(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """Each environment's newest release: what it shows now."""
    from headwater.cli.runs import iso

    out: dict[str, dict[str, Any]] = {}
    for release in catalog.release_log(limit=200):
        if release.env not in out:
            out[release.env] = {
                "id": release.id,
                "kind": release.note or release.kind,
                "created_at": iso(release.created_at),
                "created_by": release.created_by,
                "code_version": release.code_version,
            }
    return out


def _tables(loaded: Project, catalog: Catalog, states: list[Freshness]) -> list[dict[str, Any]]:
    newest = {**catalog.newest_tasks("ingest"), **catalog.newest_tasks("build")}
    results: dict[str, list[dict[str, Any]]] = {}
    for result in catalog.newest_check_results():
        results.setdefault(result["target"], []).append(result)
    held: dict[str, int] = {}
    for batch in catalog.holds():  # awaiting a decision
        held[batch.table] = held.get(batch.table, 0) + 1
    out = []
    for state in states:
        contract = loaded.raw_tables.get(state.table)
        rules = contract.rules if contract is not None else loaded.models[state.table].rules
        kind = contract.zone if contract is not None else "model"
        out.append(
            _table_json(
                state,
                kind=kind,
                task=newest.get(state.table),
                failing=_failing(rules, results.get(state.table, [])),
                held=held.get(state.table, 0),
            )
        )
    return out


def _failing(rules: list[Rule], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rules of the project whose newest result fails (a rule since removed or renamed
    is not the table's any more)."""
    from headwater.cli.runs import iso, utc
    from headwater.contracts.specs import OnFail

    current = {r.name: r for r in rules}
    return [
        {
            "rule": r["rule"],
            "type": r["type"],
            "severity": r["severity"],
            "blocking": current[r["rule"]].action is OnFail.BLOCK,
            "metric": r["metric"],
            "threshold": r["threshold"],
            "checked_at": iso(utc(r["checked_at"])),
            "run_id": r["run_id"],
        }
        for r in results
        if not r["passed"] and r["rule"] in current
    ]


def _table_json(
    state: Freshness,
    *,
    kind: str,
    task: dict[str, Any] | None,
    failing: list[dict[str, Any]],
    held: int,
) -> dict[str, Any]:
    from headwater.cli.runs import iso, utc

    last = None
    if task is not None:
        last = {
            "run_id": task["run_id"],
            "command": task["command"],
            "status": task["status"],
            "rows": task["rows"],
            "attempts": task["attempts"],
            "error": task["error"],
            "ended_at": iso(utc(task["run_ended_at"])),
        }
    shown = {
        "table": state.table,
        "kind": kind,
        "sla": None if state.sla is None else state.sla.model_dump(exclude_none=True),
        "updated_at": iso(utc(state.updated_at)),
        "late": state.late,
        "freshness": state.why,
        "last_run": last,
        "failing_rules": failing,
        "held_batches": held,
    }
    return {**shown, "problems": _problems(shown)}


def _problems(table: dict[str, Any]) -> list[dict[str, str]]:
    """What needs someone about one table, each in words."""
    name, last = table["table"], table["last_run"]
    out = []
    if table["late"]:
        out.append({"table": name, "kind": "late", "message": table["freshness"]})
    failed = ("failed",) if table["kind"] != "model" else UNPUBLISHED
    if last is not None and last["status"] in failed:
        what = "build" if table["kind"] == "model" else "landing"
        why = f": {_first_line(last['error'])}" if last["error"] else ""
        verb = {"failed": "failed"}.get(last["status"], f"was {last['status']}")
        message = f"{name}: its newest {what} {verb} (run {last['run_id']}){why}"
        out.append({"table": name, "kind": last["status"], "message": message})
    for rule in table["failing_rules"]:
        if rule["blocking"]:
            observed = "n/a" if rule["metric"] is None else f"{rule['metric']:,.6g}"
            bar = "" if rule["threshold"] is None else f" (threshold {rule['threshold']})"
            message = f"{name}: rule {rule['rule']} fails: {observed}{bar}"
            out.append({"table": name, "kind": "rule", "message": message})
    if table["held_batches"]:
        message = (
            f"{name}: {table['held_batches']} batch(es) held awaiting a decision "
            "(`headwater batches`)"
        )
        out.append({"table": name, "kind": "held", "message": message})
    return out


def _alert_json(alert: dict[str, Any]) -> dict[str, Any]:
    from headwater.cli.runs import iso, utc

    return {
        "key": alert["key"],
        "kind": alert["kind"],
        "subject": alert["subject"],
        "severity": alert["severity"],
        "message": alert["message"],
        "opened_at": iso(utc(alert["opened_at"])),
    }


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] + (" …" if len(lines) > 1 else "") if lines else ""


def _stream_states(loaded: Project, stores: LakeStores) -> list[Any]:
    from headwater.orchestrate.follow import STREAM_KINDS, stream_states

    if not any(c.connector.kind in STREAM_KINDS for c in loaded.contracts.values()):
        return []  # no source to ask
    return stream_states(loaded, stores)
