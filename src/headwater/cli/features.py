"""`headwater features`: the feature views of a project — point-in-time training sets from an
entity file, and what the online store holds of each view."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    import pyarrow as pa
    from rich.console import Console

ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]
Env = Annotated[str, typer.Option("--env", help="The environment whose data is read.")]
Format = Annotated[str, typer.Option("--format", help="table | json")]
SHOWN = 20  # rows of a training set printed when it is not written to a file

features = typer.Typer(
    no_args_is_help=True,
    help="Feature views: point-in-time training sets and the online store.",
)


@features.command("training")
def training(
    entity_file: Annotated[
        Path,
        typer.Argument(
            help="CSV or Parquet: the entity key column(s), a time column, and any labels."
        ),
    ],
    view: Annotated[str, typer.Option("--view", help="The feature view (see `features list`).")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the training set here, as Parquet.")
    ] = None,
    time_column: Annotated[
        str, typer.Option("--time-column", help="The entity file's column of each row's time.")
    ] = "event_timestamp",
    env: Env = "prod",
    as_of: Annotated[
        int | None,
        typer.Option("--as-of", help="Read the data release AS_OF served (`headwater releases`)."),
    ] = None,
    project: ProjectDir = Path("."),
    fmt: Format = "table",
) -> None:
    """Join ENTITY_FILE to a feature view point in time: each row gets the values its entity
    had at the row's time (none after it; NULL past the view's TTL), in the file's order."""
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    from headwater.cli.main import _check_env, _check_format, _errors, _stderr
    from headwater.project import load_project
    from headwater.serve.features import training_set

    _check_format(fmt)
    _check_env(env)
    with _errors():
        loaded = load_project(project)
        with _progress(_stderr()) as told:
            result = training_set(
                loaded,
                view,
                entity_file,
                env=env,
                as_of=as_of,
                time_column=time_column,
                out=out,
                on_rows=told,
            )
    _show(result, fmt)


@features.command("list")
def list_views(env: Env = "prod", project: ProjectDir = Path("."), fmt: Format = "table") -> None:
    """The feature views: model, entity, features, TTL, and the product snapshot the online
    store holds of each in ENV."""
    from headwater.change.online import OnlineStore, feature_views
    from headwater.cli.main import _check_env, _check_format, _console, _errors, _print_json
    from headwater.project import load_project

    _check_format(fmt)
    _check_env(env)
    with _errors():
        loaded = load_project(project)
        views = feature_views(loaded)
        store = OnlineStore.open(loaded)
        try:
            held = {h.view: h for h in store.held(env)}
        finally:
            store.close()
    rows = []
    for name, view in sorted(views.items()):
        found = held.get(name)
        rows.append(
            {
                "view": name,
                "model": view.model,
                "entity": view.spec.entity,
                "event_time": view.spec.event_time,
                "features": list(found.features) if found else view.spec.features or ["*"],
                "ttl": view.spec.ttl,
                "online_snapshot": found.snapshot_id if found else None,
                "online_rows": found.rows if found else None,
                "refreshed_at": found.refreshed_at if found else None,
            }
        )
    if fmt == "json":
        _print_json(rows)
        return
    _table(_console(), rows, env)


def _table(console: Console, rows: list[dict[str, Any]], env: str) -> None:
    from rich.table import Table

    if not rows:
        console.print("no feature views (a model's sidecar declares them under features:)")
        return
    table = Table("view", "model", "entity", "features", "ttl", f"online ({env})")
    for row in rows:
        online = (
            f"snapshot {row['online_snapshot']}, {row['online_rows']:,} keys"
            if row["online_snapshot"] is not None
            else "not refreshed"
        )
        table.add_row(
            row["view"],
            row["model"],
            ", ".join(row["entity"]),
            ", ".join(row["features"]),
            row["ttl"] or "none",
            online,
        )
    console.print(table)


class _progress:
    """A spinner on stderr counting the entity rows read, while a training set is built."""

    def __init__(self, console: Console):
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task = self._bar.add_task("reading entity rows")

    def __enter__(self) -> _progress:
        self._bar.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._bar.stop()

    def __call__(self, rows: int) -> None:
        self._bar.update(self._task, description=f"{rows:,} entity rows read, joining")


def _show(result: pa.Table | Path, fmt: str) -> None:
    """What was made: the file written, or the rows (JSON: all; a table: the first ones)."""
    from headwater.cli.main import _console, _print_json

    if isinstance(result, Path):
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(result).metadata.num_rows
        if fmt == "json":
            _print_json({"out": str(result), "rows": rows})
        else:
            _console().print(f"wrote {rows:,} rows to {result}", highlight=False)
        return
    if fmt == "json":
        _print_json(result.to_pylist())
        return
    from rich.table import Table

    table = Table(*result.column_names)
    for record in result.slice(0, SHOWN).to_pylist():
        table.add_row(*["" if v is None else str(v) for v in record.values()])
    _console().print(table)
    more = (
        f" (the first {SHOWN} shown; --out FILE writes them all)" if result.num_rows > SHOWN else ""
    )
    _console().print(f"{result.num_rows:,} rows{more}", highlight=False)
