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
    from headwater.orchestrate.stores import project_catalog_url, project_secrets
    from headwater.project import load_project
    from headwater.zones.catalog import Catalog

    _check_format(fmt)
    with _errors():
        loaded = load_project(project)
        secrets = project_secrets(loaded)
        _state["scrub"] = secrets.scrub
        catalog = Catalog(project_catalog_url(loaded, secrets), scrub=secrets.scrub)
        try:
            planned = make_plan(loaded, catalog, env)
        finally:
            catalog.close()
    shown = [m for m in planned.models if m.change is not Change.UNCHANGED]
    if fmt == "json":
        _print_json(
            {
                "env": planned.env,
                "build": planned.to_build,
                "reuse": planned.reused,
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
            }
        )
        return
    console = _console()
    if not shown:
        console.print(f"No changes: every model is as {env} has it.", highlight=False)
        return
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
    console.print(
        f"{len(planned.to_build)} model(s) to build, {len(planned.reused)} reused; "
        f"`headwater build` applies it to {env}.",
        highlight=False,
    )
