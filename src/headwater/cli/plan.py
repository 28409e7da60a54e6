"""`headwater plan`: what applying the project would change, classified, before building."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]


def plan(
    project: ProjectDir = Path("."),
    env: Annotated[str, typer.Option("--env", help="The environment to compare with.")] = "prod",
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Show added, removed and changed models against an environment: each change breaking,
    non-breaking or metadata-only with why, what reads it, and what a build would build or
    reuse. Reads the catalog only; changes nothing."""
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    from rich.markup import escape
    from rich.table import Table

    from headwater.change.plan import Change
    from headwater.change.plan import plan as make_plan
    from headwater.cli.main import _check_format, _console, _errors, _print_json, _state
    from headwater.cli.runs import iso, utc
    from headwater.govern import gate
    from headwater.orchestrate.incremental import preview
    from headwater.orchestrate.stores import LakeStores
    from headwater.project import load_project

    _check_format(fmt)
    with _errors():
        loaded = load_project(project)
        gate.check(loaded)  # a public model that would show PII: nothing to plan
        stores = LakeStores.open(loaded)  # no warehouse: a run may be writing it
        _state["scrub"] = stores.secrets.scrub
        try:
            planned = make_plan(loaded, stores.catalog, env, lake=stores.lake)
            intervals = preview(loaded, stores.catalog, stores.lake, planned.to_build)
        finally:
            stores.close()
    shown = [m for m in planned.models if m.change is not Change.UNCHANGED]
    refused = 3 if planned.refused else 0  # a project file must change: exit as SpecError
    if fmt == "json":
        _print_json(
            {
                "env": planned.env,
                "build": planned.to_build,
                "reuse": planned.reused,
                "intervals": {
                    name: {
                        "intervals": p.intervals,
                        "restated": p.restated,
                        "from": iso(utc(p.first)),
                        "to": iso(utc(p.last)),
                        "unknown": p.unknown,
                    }
                    for name, p in intervals.items()
                },
                "changes": [
                    {
                        "model": m.name,
                        "change": str(m.change),
                        "reasons": m.reasons,
                        "downstream": m.downstream,
                        "destructive": m.destructive,
                    }
                    for m in shown
                ],
                "contracts": [
                    {
                        "table": c.table,
                        "schema_version": c.version,
                        "recorded_schema_version": c.recorded_version,
                        "breaking": c.breaking,
                        "compatible": c.compatible,
                        "impossible": c.impossible,
                        "refused": c.refused,
                    }
                    for c in planned.contracts
                ],
            }
        )
        raise typer.Exit(refused)
    console = _console()
    for c in planned.contracts:
        if c.refused:
            console.print(f"[red]refused[/] {escape(c.explain())}", highlight=False)
            console.print(f"  {c.hint}", highlight=False)
        else:
            bump = f" (schema_version {c.recorded_version} → {c.version})" if c.breaking else ""
            what = "; ".join([*c.breaking, *c.compatible])
            console.print(f"contract {c.table}{bump}: {escape(what)}", highlight=False)
    if not shown:
        console.print(f"No model changes: every model is as {env} has it.", highlight=False)
        raise typer.Exit(refused)
    table = Table(title=f"Plan against {env}", title_justify="left")
    for column in ("model", "change", "why", "what reads it"):
        table.add_column(column, overflow="fold")
    colour = {Change.BREAKING: "red", Change.REMOVED: "red", Change.METADATA: "dim"}
    for m in shown:
        mark = " [red](destructive)[/]" if m.destructive else ""
        tint = colour.get(m.change, "cyan")
        table.add_row(
            m.name,
            f"[{tint}]{m.change}[/]{mark}",
            escape("; ".join(m.reasons)),
            ", ".join(m.downstream) or "-",
        )
    console.print(table)
    for name, p in intervals.items():
        unit = loaded.models[name].config.interval.value
        if p.unknown:
            what = f"cannot tell yet: {p.unknown}"
        elif not p.intervals:
            what = "no interval to write"
        else:
            span = f"{p.first:%Y-%m-%d %H:%M} to {p.last:%Y-%m-%d %H:%M}"
            again = f", {p.restated} of them written before" if p.restated else ""
            what = f"{p.intervals} interval(s) of a {unit}, {span}{again}"
        console.print(f"intervals {name}: {escape(what)}", highlight=False)
    console.print(
        f"{len(planned.to_build)} model(s) to build, {len(planned.reused)} reused; "
        f"`headwater apply{'' if env == 'prod' else f' --env {env}'}` applies it to {env} "
        "as one release.",
        highlight=False,
    )
    raise typer.Exit(refused)
