"""`headwater docs`: write the catalog site (every table, column, tag, owner, rule result, run
and column lineage, searchable) into one folder a browser opens from disk; `--serve` serves it.

It reads the catalog and the lake, and the warehouse read-only for the columns' profiles. A
project never run gets a site of its specs, every table "never built".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from headwater.engine import Engine
    from headwater.project import Project

ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]
DEFAULT_OUT = Path(".headwater", "docs")  # in the state folder, which projects git-ignore


def docs(
    project: ProjectDir = Path("."),
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="The folder to write the site into (replaced if it holds a site already).",
            show_default="<project>/.headwater/docs",
        ),
    ] = None,
    profile: Annotated[
        bool,
        typer.Option(
            "--profile/--no-profile",
            help="Profile every table in the warehouse (one query each): rows, nulls, distinct "
            "values, and the range of columns not tagged PII.",
        ),
    ] = True,
    serve: Annotated[
        bool, typer.Option("--serve", help="Then serve the site on 127.0.0.1 until Ctrl-C.")
    ] = False,
    port: Annotated[int, typer.Option(help="The port --serve listens on.")] = 8080,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Write the catalog site: every contract, seed and model by zone with its owners, docs,
    columns (types, tags, profile), freshness against its sla, rule results, runs and column
    lineage, with search over tables, columns, tags and owners.

    One folder (index.html opens from disk, no server or network needed). Values of
    PII-tagged columns, and of columns whose lineage cannot tell, are never written to it; nor
    are quarantined records.
    """
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    from headwater.cli.main import _check_format, _console, _errors, _print_json, _state, _stderr
    from headwater.govern.site import write_site
    from headwater.orchestrate.stores import project_secrets
    from headwater.project import load_project

    _check_format(fmt)
    with _errors():
        loaded = load_project(project)
        _state["scrub"] = project_secrets(loaded).scrub  # before opening: its errors too
        data = _collect(loaded, profile=profile)
        index = write_site(out or loaded.root / DEFAULT_OUT, data)
    for note in data["notes"]:
        _stderr().print(f"[yellow]warning:[/] {_escape(note)}", soft_wrap=True)
    shown = _summary(index, data)
    if fmt == "json":
        _print_json(shown)
    else:
        _console().print(
            f"Wrote the catalog site of {shown['tables']} tables and {shown['columns']} columns: "
            f"{index.as_uri()}",
            highlight=False,
            soft_wrap=True,
        )
    if serve:
        _serve(index.parent, port, shown=_stderr() if fmt == "json" else _console())


def _collect(loaded: Project, *, profile: bool) -> dict[str, Any]:
    """What the site shows, from the stores there are (none for a project never run)."""
    from datetime import UTC, datetime

    from headwater.orchestrate.catalog_site import collect
    from headwater.orchestrate.stores import LakeStores

    stores = LakeStores.open(loaded) if _catalog_exists(loaded) else None
    try:
        engine = _warehouse(loaded) if profile and stores is not None else None
        try:
            return collect(
                loaded,
                now=datetime.now(UTC),
                catalog=None if stores is None else stores.catalog,
                lake=None if stores is None else stores.lake,
                engine=engine,
            )
        finally:
            if engine is not None:
                engine.close()
    finally:
        if stores is not None:
            stores.close()


def _catalog_exists(loaded: Project) -> bool:
    """Whether the project has a catalog to read: a database server's always; a SQLite
    file only once a run made it (docs never creates one)."""
    from headwater.orchestrate.stores import project_catalog_url

    url = project_catalog_url(loaded)
    if not url.startswith("sqlite:///"):
        return True
    return Path(url.removeprefix("sqlite:///")).exists()


def _warehouse(loaded: Project) -> Engine | None:
    """The warehouse, read-only; None (with a warning) when it is missing or busy."""
    from headwater.cli.main import _stderr
    from headwater.cli.sql import open_warehouse
    from headwater.errors import HeadwaterError

    try:
        return open_warehouse(loaded, write=False, allow_files=False)
    except HeadwaterError as err:
        _stderr().print(
            f"[yellow]warning:[/] no column profiles: {_escape(err.message)}", soft_wrap=True
        )
        return None


def _summary(index: Path, data: dict[str, Any]) -> dict[str, Any]:
    tables = data["tables"]
    return {
        "path": str(index),
        "tables": len(tables),
        "columns": sum(len(t["columns"]) for t in tables),
    }


def _serve(folder: Path, port: int, *, shown: Console) -> None:
    """Serve `folder` on 127.0.0.1 until Ctrl-C (or SIGTERM): a clean exit either way;
    what it says goes to `shown` (stderr when stdout carries JSON)."""
    import contextlib
    import http.server
    import signal

    from headwater.cli.main import _stderr

    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _handler(folder))
    except OSError as err:
        _stderr().print(f"[red]error:[/] cannot serve on 127.0.0.1:{port}: {err.strerror}")
        raise typer.Exit(1) from None
    previous = signal.signal(signal.SIGTERM, _interrupt)
    shown.print(
        f"Serving the catalog site at http://127.0.0.1:{port}/ (Ctrl-C stops)", highlight=False
    )
    try:
        with server, contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    finally:
        signal.signal(signal.SIGTERM, previous)
    shown.print("stopped", highlight=False)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _handler(folder: Path) -> Callable[..., Any]:
    """Requests for the files of `folder`, without a log line for each."""
    import functools
    import http.server

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Nothing: a catalog's readers are not news."""

    return functools.partial(Quiet, directory=str(folder))


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
