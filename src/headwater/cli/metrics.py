"""`headwater metrics`: the pipeline's metrics in Prometheus's text format, printed or written
for node_exporter's textfile collector; the long-running processes serve the same at
`/metrics` (`scheduler --metrics-port`, `ingest --follow --metrics-port`, `serve`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from headwater.observe.metrics import StreamFigures
    from headwater.project import Project
    from headwater.zones.catalog import Catalog
    from headwater.zones.lake import Lake

ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]


def metrics(
    project: ProjectDir = Path("."),
    textfile: Annotated[
        Path | None,
        typer.Option(
            "--textfile",
            help="Write the metrics to this file (whole or not at all) for node_exporter's "
            "textfile collector, whose folder it should be in; its name must end in .prom.",
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="prometheus | json")] = "prometheus",
) -> None:
    """Show every run's, task's, table's, stream's and rule's figures as Prometheus metrics:
    run counts and durations, each task's newest duration, rows in and out, bytes, attempts
    and queue wait, each table's freshness, each stream's lag, failing rules, open alerts.

    Stream lag is asked of the sources themselves. Exits 1 when the catalog could be opened
    but not read (the metrics then say `headwater_up 0`).
    """
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    from datetime import UTC, datetime

    from headwater.cli.main import _console, _errors, _print_json, _state, _stderr
    from headwater.errors import UsageError
    from headwater.observe.metrics import as_json, exposition, registry, write_textfile
    from headwater.orchestrate.metrics import asked_lags, collector
    from headwater.orchestrate.stores import LakeStores
    from headwater.project import load_project

    if fmt not in ("prometheus", "json"):
        _stderr().print(f"[red]error:[/] --format {fmt!r}: expected prometheus or json")
        raise typer.Exit(2)
    if textfile is not None and fmt != "prometheus":
        _stderr().print("[red]error:[/] --textfile writes the Prometheus format only")
        raise typer.Exit(2)
    with _errors():
        if textfile is not None and not textfile.parent.is_dir():
            raise UsageError(
                f"--textfile {textfile}: the folder {textfile.parent} does not exist",
                hint="point it into node_exporter's --collector.textfile.directory",
            )
        loaded = load_project(project)
        stores = LakeStores.open(loaded)
        _state["scrub"] = stores.secrets.scrub
        try:
            lags = asked_lags(loaded, stores) if _has_streams(loaded) else []
            now = datetime.now(UTC)
            found = collector(
                loaded, stores.catalog, stores.lake, streams=lambda: lags, clock=lambda: now
            )
            source = registry(found)
            if textfile is not None:
                _write(textfile, lambda: write_textfile(textfile, source))
            elif fmt == "json":
                _print_json({"metrics": as_json(source)})
            else:
                _console().file.write(exposition(source)[0].decode())
        finally:
            stores.close()
    if textfile is not None:
        _stderr().print(f"wrote {textfile}", highlight=False)
        if textfile.suffix != ".prom":
            _stderr().print(
                f"[yellow]warning:[/] {textfile.name} does not end in .prom: node_exporter's "
                "textfile collector reads *.prom files only",
                highlight=False,
            )
    if found.last_error is not None:
        _stderr().print(f"[red]error:[/] cannot read the catalog: {found.last_error}")
        raise typer.Exit(1)


def _has_streams(loaded: Project) -> bool:
    from headwater.orchestrate.follow import STREAM_KINDS

    return any(c.connector.kind in STREAM_KINDS for c in loaded.contracts.values())


def _write(path: Path, write: Callable[[], None]) -> None:
    from headwater.errors import UsageError

    try:
        write()
    except OSError as err:
        raise UsageError(
            f"--textfile {path}: cannot write it: {err.strerror or err}",
            hint="check the folder's permissions",
        ) from None


@contextmanager
def metrics_served(
    project: Project,
    catalog: Catalog,
    lake: Lake,
    port: int,
    *,
    streams: Callable[[], Sequence[StreamFigures]] = lambda: (),
) -> Iterator[int | None]:
    """`/metrics` on 127.0.0.1:`port` while the block runs (0: not served); the port.

    Raises:
        UsageError: the port cannot be listened on (in use, not allowed).
    """
    from headwater.cli.main import _stderr
    from headwater.errors import UsageError
    from headwater.observe.metrics import registry, serve_metrics
    from headwater.orchestrate.metrics import collector

    if not port:
        yield None
        return
    source = registry(collector(project, catalog, lake, streams=streams), process=True)
    try:
        server = serve_metrics(source, port)
    except OSError as err:
        raise UsageError(
            f"--metrics-port {port}: cannot listen on 127.0.0.1:{port}: {err.strerror or err}",
            hint="choose another port (Prometheus exporters often use 9100-9999)",
        ) from None
    _stderr().print(f"metrics at http://127.0.0.1:{server.port}/metrics", highlight=False)
    try:
        yield server.port
    finally:
        server.close()
