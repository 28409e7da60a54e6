"""`headwater envs` and `headwater promote`: environments beside prod, and moving one's
versions into another without running anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]
Format = Annotated[str, typer.Option("--format", help="table | json")]


def envs(project: ProjectDir = Path("."), fmt: Format = "table") -> None:
    """List the environments and what each shows that prod does not."""
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    from rich.table import Table

    from headwater.cli.main import _check_format, _console, _errors, _print_json, _state
    from headwater.orchestrate.environments import differences
    from headwater.orchestrate.stores import LakeStores
    from headwater.project import load_project

    _check_format(fmt)
    with _errors():
        loaded = load_project(project)
        stores = LakeStores.open(loaded)
        _state["scrub"] = stores.secrets.scrub
        try:
            found = differences(stores.catalog)
            prod = len(stores.catalog.pointers("prod"))
        finally:
            stores.close()
    if fmt == "json":
        _print_json(
            {
                "prod": {"models": prod},
                "environments": [d.__dict__ for d in found],
            }
        )
        return
    table = Table(title="Environments", title_justify="left")
    for column in ("environment", "models", "differs from prod"):
        table.add_column(column, overflow="fold")
    table.add_row("prod", str(prod), "-")
    for d in found:
        parts = [f"{len(d.changed)} changed: {', '.join(d.changed)}"] if d.changed else []
        parts += [f"only here: {', '.join(d.only_here)}"] if d.only_here else []
        parts += [f"not here: {', '.join(d.only_in_prod)}"] if d.only_in_prod else []
        table.add_row(d.env, str(d.models), "; ".join(parts) or "the same as prod")
    _console().print(table)


def promote(
    source: Annotated[str, typer.Argument(help="The environment whose versions to promote.")],
    to: Annotated[str, typer.Option("--to", help="The environment to re-point.")] = "prod",
    project: ProjectDir = Path("."),
    fmt: Format = "table",
) -> None:
    """Point an environment (prod by default) at every version another shows, at once: its
    views swap in one transaction and no model runs."""
    from datetime import UTC, datetime

    from headwater.cli.main import _check_format, _console, _errors, _opened, _print_json
    from headwater.orchestrate.environments import promote as repoint
    from headwater.orchestrate.lease import held

    _check_format(fmt)
    command = f"promote {source} --to {to}"
    with (
        _errors(),
        _opened(project) as (loaded, stores),
        held(stores.catalog, "promote"),
        stores.catalog.recorded(command, env=to) as run_id,
    ):
        moved = repoint(loaded, stores, source, to, run_id=run_id, now=datetime.now(UTC))
    if fmt == "json":
        _print_json({"from": source, "to": to, "changed": moved, "run_id": run_id})
        return
    shown = ", ".join(moved) if moved else "nothing (it already showed the same versions)"
    _console().print(f"promoted {source} to {to}: {shown}", highlight=False)
