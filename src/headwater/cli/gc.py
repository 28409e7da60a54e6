"""`headwater gc`: remove the data files an interrupted run wrote and never committed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]


def gc(
    project: ProjectDir = Path("."),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be removed; remove nothing.")
    ] = False,
    grace: Annotated[
        str,
        typer.Option(
            "--grace",
            help="Also keep files modified less than this long ago (e.g. 0s, 1h): a margin for "
            "writers that hold no lock, such as another tool writing the same lake.",
        ),
    ] = "15m",
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Remove lake data files no snapshot references (left by killed runs). A file a
    running writer may still commit is never removed."""
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    import os

    from headwater.cli.main import _check_format, _console, _errors, _print_json
    from headwater.contracts.secrets import Secrets
    from headwater.contracts.thresholds import parse_duration
    from headwater.orchestrate.stores import project_catalog_url
    from headwater.project import load_project
    from headwater.zones.lake import Lake

    _check_format(fmt)  # before anything is removed
    try:
        grace_s = parse_duration(grace)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--grace") from None
    with _errors():
        loaded = load_project(project)
        location = Secrets(os.environ).expand(loaded.settings.lake, where="headwater.yml: lake")
        lake = Lake(project_catalog_url(loaded), location, loaded.root)
        orphans = lake.gc(grace_s=grace_s, dry_run=dry_run)
    size = sum(o.bytes for o in orphans)
    if fmt == "json":
        files = [{"table": o.table, "path": o.path, "bytes": o.bytes} for o in orphans]
        _print_json({"dry_run": dry_run, "removed": files, "bytes": size})
        return
    verb = "would remove" if dry_run else "removed"
    tables = sorted({o.table for o in orphans})
    where = f" of {', '.join(tables)}" if tables else ""
    _console().print(
        f"gc {verb} {len(orphans)} uncommitted data file(s){where} ({size:,} bytes).",
        highlight=False,
    )
