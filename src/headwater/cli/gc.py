"""`headwater gc`: the janitor. Model versions no environment and no retained release reads,
and lake data files an interrupted run wrote and never committed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]


def gc(
    project: ProjectDir = Path("."),
    delete: Annotated[
        bool, typer.Option("--delete", help="Remove what is listed (without it: list only).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be removed (the default).")
    ] = False,
    grace: Annotated[
        str,
        typer.Option(
            "--grace",
            help="Keep lake files modified less than this long ago (e.g. 0s, 1h): a margin for "
            "writers that hold no lock, such as another tool writing the same lake.",
        ),
    ] = "15m",
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """List (or with --delete, remove) what nothing needs any more: model versions no
    environment and no retained release reads (`releases: {keep, retention}`), and lake data
    files no snapshot references (left by killed runs). Never a version a retained release
    needs, nor a file a running writer may still commit."""
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    from datetime import UTC, datetime

    from headwater.cli.main import _check_format, _console, _errors, _opened, _print_json
    from headwater.contracts.thresholds import parse_duration
    from headwater.orchestrate.janitor import (
        drop,
        drop_products,
        unreferenced,
        unreferenced_products,
    )
    from headwater.orchestrate.lease import held
    from headwater.orchestrate.stores import project_catalog_url, project_lake

    _check_format(fmt)  # before anything is removed
    if delete and dry_run:
        raise typer.BadParameter("--delete and --dry-run: choose one", param_hint="--delete")
    try:
        grace_s = parse_duration(grace)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--grace") from None
    listing = not delete
    # the run lease: no build may be writing a version while the janitor decides
    with _errors(), _opened(project) as (loaded, stores), held(stores.catalog, "gc"):
        versions = unreferenced(loaded, stores, now=datetime.now(UTC))
        products = unreferenced_products(loaded, stores, now=datetime.now(UTC))
        if not listing:
            drop(stores, versions)
            drop_products(stores, products)
        lake = project_lake(loaded, project_catalog_url(loaded))
        orphans = lake.gc(grace_s=grace_s, dry_run=listing)
    size = sum(o.bytes for o in orphans)
    if fmt == "json":
        files = [{"table": o.table, "path": o.path, "bytes": o.bytes} for o in orphans]
        tables = [{"table": v.table, "kind": v.kind.value, "rows": v.rows} for v in versions]
        _print_json(
            {
                "dry_run": listing,
                "versions": tables,
                "products": products,
                "removed": files,
                "bytes": size,
            }
        )
        return
    verb = "would remove" if listing else "removed"
    rows = sum(v.rows or 0 for v in versions)
    _console().print(
        f"gc {verb} {len(versions)} unreferenced model version(s) ({rows:,} rows)"
        + (f": {', '.join(v.table for v in versions)}" if 0 < len(versions) <= 10 else "")
        + ".",
        highlight=False,
        soft_wrap=True,
    )
    if products:
        _console().print(
            f"gc {verb} {len(products)} unserved data product(s): {', '.join(products[:10])}"
            + (" …" if len(products) > 10 else ""),
            highlight=False,
            soft_wrap=True,
        )
    owners = sorted({o.table for o in orphans})
    where = f" of {', '.join(owners)}" if owners else ""
    _console().print(
        f"gc {verb} {len(orphans)} uncommitted data file(s){where} ({size:,} bytes).",
        highlight=False,
    )
    if listing and (versions or orphans or products):
        _console().print("Run `headwater gc --delete` to remove them.", highlight=False)
