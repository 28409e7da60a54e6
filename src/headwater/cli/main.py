"""The `headwater` command line: typer for commands, rich for progress and tables.

Every command loads the project (`-p/--project`, default the current folder), does its work
through `orchestrate`, and prints one clear line on failure (`--debug` adds the traceback).

This module imports typer and the standard library only: a command imports what it needs when
it runs, so `headwater --help` answers at once (tests/cli/test_imports.py keeps it so).
"""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, cast

import typer

from headwater import __version__
from headwater.cli.alerts import alerts
from headwater.cli.audit import audit
from headwater.cli.backfill import backfill
from headwater.cli.batches import batches
from headwater.cli.classify import classify
from headwater.cli.docs import docs
from headwater.cli.environments import envs, promote
from headwater.cli.features import features
from headwater.cli.forget import forget
from headwater.cli.gc import gc
from headwater.cli.importing import importer
from headwater.cli.lineage import lineage
from headwater.cli.metrics import metrics
from headwater.cli.plan import plan
from headwater.cli.profile import profile
from headwater.cli.releases import apply, diff, releases, rollback
from headwater.cli.report import report
from headwater.cli.runs import runs
from headwater.cli.scheduler import scheduler
from headwater.cli.serve import keys, serve
from headwater.cli.status import status
from headwater.cli.testing import run_model_tests
from headwater.errors import HeadwaterError, SpecError

if TYPE_CHECKING:
    from rich.console import Console

    from headwater.orchestrate import Stores
    from headwater.project import Project
    from headwater.zones.catalog import Catalog

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="headwater: contracts, raw zone, SQL models and quality gates in one tool.",
    pretty_exceptions_show_locals=False,  # locals hold expanded secrets
)
ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]
_state: dict[str, Any] = {"debug": False}


def _version(shown: bool) -> None:
    if shown:
        typer.echo(f"headwater {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    _state["debug"] = debug
    # sqlglot logs what its optimizer cannot resolve; headwater reports what matters itself
    logging.getLogger("sqlglot").setLevel(logging.WARNING if debug else logging.ERROR)
    # the consoles are made when first used, so the terminal width (COLUMNS) is read then
    _state["out"] = _state["err"] = None
    _state["scrub"] = None


class _Scrubbed(io.TextIOBase):
    """sys.stdout or sys.stderr, less the project's secrets once its stores are open."""

    def __init__(self, name: str) -> None:
        self._name = name

    def write(self, text: str) -> int:
        scrub = _state.get("scrub")
        return getattr(sys, self._name).write(scrub(text) if scrub else text)  # type: ignore[no-any-return]

    def flush(self) -> None:
        getattr(sys, self._name).flush()

    def isatty(self) -> bool:
        return bool(getattr(sys, self._name).isatty())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(getattr(sys, self._name), "encoding", None) or "utf-8"


def _console() -> Console:
    """The console on stdout (secrets scrubbed)."""
    from rich.console import Console

    if _state.get("out") is None:
        _state["out"] = Console(file=cast(IO[str], _Scrubbed("stdout")))
    return cast("Console", _state["out"])


def _stderr() -> Console:
    """The console on stderr (secrets scrubbed): errors, warnings, progress beside JSON."""
    from rich.console import Console

    if _state.get("err") is None:
        _state["err"] = Console(file=cast(IO[str], _Scrubbed("stderr")), stderr=True)
    return cast("Console", _state["err"])


def _print_json(data: Any) -> None:
    """JSON for machines on stdout, through the same secret scrubbing as everything shown."""
    text = json.dumps(data, indent=2, default=str) + "\n"
    _console().file.write(text)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to create the project.")],
    events: Annotated[int, typer.Option(help="How many events to generate.")] = 200_000,
    force: Annotated[bool, typer.Option(help="Write into a non-empty folder.")] = False,
    kafka: Annotated[
        str | None,
        typer.Option(
            help="Kafka bootstrap servers: add the optional stream source live_events (topic "
            "shop.events), for `headwater ingest --follow`"
        ),
    ] = None,
) -> None:
    """Scaffold the example project "shop" with generated data."""
    from headwater.cli.scaffold import scaffold

    with _errors():
        counts = scaffold(directory, events=events, force=force, now=datetime.now(UTC), kafka=kafka)
    _console().print(
        f"Created the example project in [bold]{directory}[/] "
        f"({', '.join(f'{v:,} {k}' for k, v in counts.items())})."
    )
    _console().print(f"Next: [bold]headwater run -p {directory}[/]")
    if kafka:
        _console().print(
            f"Stream: produce JSON events to topic shop.events on {kafka}, then "
            f"[bold]headwater ingest --follow live_events -p {directory}[/]"
        )


FullRefresh = Annotated[
    bool, typer.Option("--full-refresh", help="Rebuild every model from scratch.")
]
Select = Annotated[
    list[str] | None,
    typer.Option(
        "--select",
        "-s",
        help="Models to build: name, name+ (and downstream), "
        "+name (and upstream), marts.*, tag:finance. Repeat or space-separate.",
    ),
]


Format = Annotated[
    str,
    typer.Option(
        "--format", help="table (for people) | json (the whole summary, for machines and CI)"
    ),
]


@app.command(name="run")
def run_(
    project: ProjectDir = Path("."),
    full_refresh: FullRefresh = False,
    select: Select = None,
    fmt: Format = "table",
) -> None:
    """Ingest, build and check the whole project end to end."""
    _run(project, ("ingest", "build"), "run", full_refresh=full_refresh, select=select, fmt=fmt)


@app.command()
def ingest(
    contracts: Annotated[
        list[str] | None,
        typer.Argument(help="With --follow: the contracts to follow (default: every stream)"),
    ] = None,
    project: ProjectDir = Path("."),
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            help="Keep landing stream contracts (Kafka) batch by batch until SIGTERM or "
            "Ctrl-C, which finish the batch at hand",
        ),
    ] = False,
    metrics_port: Annotated[
        int,
        typer.Option(
            min=0,
            max=65535,
            help="With --follow: serve Prometheus /metrics (live stream lag) on 127.0.0.1 at "
            "this port (0: off)",
        ),
    ] = 0,
    fmt: Format = "table",
) -> None:
    """Land new source data into the raw zone (contract rules run on each batch)."""
    if follow:
        from headwater.cli.follow import following

        _check_format(fmt)
        with _errors():
            code = following(project, contracts or [], fmt, metrics_port=metrics_port)
        raise typer.Exit(code)
    if metrics_port:
        _stderr().print("[red]error:[/] --metrics-port goes with --follow")
        raise typer.Exit(2)
    if contracts:
        _stderr().print(
            "[red]error:[/] naming contracts needs --follow: `headwater ingest` lands every "
            "contract's new data"
        )
        raise typer.Exit(2)
    _run(project, ("ingest",), "ingest", fmt=fmt)


@app.command()
def seed(project: ProjectDir = Path("."), fmt: Format = "table") -> None:
    """Load the seeds (seeds/*.csv, .parquet, .jsonl) into seed.<name>, nothing else."""
    _run(project, ("ingest",), "seed", fmt=fmt, zones=("seed",))


@app.command()
def build(
    project: ProjectDir = Path("."),
    full_refresh: FullRefresh = False,
    select: Select = None,
    fmt: Format = "table",
    env: Annotated[
        str,
        typer.Option(
            "--env",
            help="Build into this environment (e.g. dev): it starts as a copy of prod, and "
            "only models it does not show yet are built; prod is untouched until promoted.",
        ),
    ] = "prod",
) -> None:
    """Build the models in dependency order (each audited by its rules before publishing).

    When nothing the last build decided from has changed (files, catalog, warehouse), the
    answer is that build's, at once, and no run is recorded."""
    _check_env(env)
    if env != "prod":
        _run(project, ("build",), "build", select=select, fmt=fmt, env=env)
        return
    if not full_refresh and not select:
        from headwater.orchestrate import uptodate

        _check_format(fmt)
        answered = uptodate.answer(project.resolve())
        if answered is not None:
            if fmt == "json":
                _print_json(answered)
            else:
                from headwater.cli import render

                render.answered(_console(), answered)
            return
    _run(project, ("build",), "build", full_refresh=full_refresh, select=select, fmt=fmt)


@app.command()
def check(
    target: Annotated[str | None, typer.Argument(help="A table, e.g. marts.events_daily")] = None,
    project: ProjectDir = Path("."),
    fmt: Format = "table",
) -> None:
    """Evaluate every rule against what is published now; exit 1 if an error rule fails or a
    model's newest build did not publish (blocked, failed, skipped, never built)."""
    from headwater.cli import render
    from headwater.orchestrate import check_all, unpublished

    _check_format(fmt)
    with _errors(), _opened(project) as (loaded, stores):
        targets = {target} if target else None
        if target and target not in loaded.models and target not in loaded.raw_tables:
            raise SpecError(
                f"unknown table {target!r}",
                hint="name a model (zone.name) or a raw table (raw.<contract>)",
            )
        results = check_all(loaded, stores, now=datetime.now(UTC), targets=targets)
        stale = {
            name: why
            for name, why in unpublished(loaded, stores).items()
            if targets is None or name in targets
        }
    failed = any(r.blocking for r in results) or bool(stale)
    if fmt == "json":
        _print_json(
            {
                "ok": not failed,
                "results": [render.check_json(r) for r in results],
                "unpublished": [{"model": n, "why": why} for n, why in stale.items()],
            }
        )
    else:
        _console().print(render.checks_table(results))
        for name, why in stale.items():
            _console().print(f"[red]not published[/] {name}: {why}", highlight=False)
    if failed:
        raise typer.Exit(1)


@app.command()
def dag(project: ProjectDir = Path(".")) -> None:
    """Show the model DAG as a tree, from raw tables down."""
    from rich.tree import Tree

    from headwater.project import load_project

    with _errors():
        loaded = load_project(project)
    tree = Tree(f"[bold]{loaded.settings.name}[/]")
    for raw in sorted(loaded.raw_tables):
        _grow(tree.add(f"[cyan]{raw}[/]"), raw, loaded)
    _console().print(tree)


app.command()(lineage)
app.command()(profile)
app.command()(metrics)
app.command()(alerts)
app.command()(report)
app.command()(audit)
app.command()(classify)
app.command()(docs)
app.command()(forget)
app.command()(gc)
app.command()(status)
app.command()(runs)
app.command()(plan)
app.command()(envs)
app.command()(promote)
app.command()(apply)
app.command()(releases)
app.command()(rollback)
app.command()(diff)
app.command()(batches)
app.command()(backfill)
app.command()(scheduler)
app.command(name="test")(run_model_tests)
app.add_typer(importer, name="import")
app.command()(serve)
app.add_typer(keys, name="keys")
app.add_typer(features, name="features")


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL to run on the warehouse (DuckDB).")],
    project: ProjectDir = Path("."),
    limit: Annotated[int, typer.Option(help="Rows to show at most.")] = 50,
    write: Annotated[
        bool,
        typer.Option(
            "--write",
            help="Open the warehouse read-write, for INSERT, UPDATE, DELETE, CREATE, DROP; "
            "the next run rebuilds a model whose table no longer matches the catalog.",
        ),
    ] = False,
    allow_files: Annotated[
        bool,
        typer.Option(
            "--allow-files",
            help="Let SQL read and write files outside the project's lake "
            "(read_csv, COPY … TO, ATTACH, INSTALL/LOAD).",
        ),
    ] = False,
    role: Annotated[
        str | None,
        typer.Option(
            help="Run the query as this policies.yml role sees the data: its grants, masks, "
            "row policies; restricted columns refused.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Export every row of the result to FILE (.parquet, .csv, .jsonl)."),
    ] = None,
    fmt: Format = "table",
) -> None:
    """Query the warehouse's current environment and print the result as a table.

    The warehouse opens read-only, and SQL reads no file but the project's lake, unless
    --write or --allow-files says otherwise. With --role, one SELECT runs through the role's
    policies. Every read is written to the audit log (`headwater audit`).
    """
    from headwater.cli import render
    from headwater.cli.sql import (
        as_role,
        audit_read,
        export,
        first_rows,
        open_warehouse,
        refuse,
        run_as_role,
        shape,
    )
    from headwater.errors import Denied
    from headwater.project import load_project

    _check_format(fmt)
    if role is not None and (write or allow_files):
        _stderr().print(
            "[red]error:[/] --role reads only: it goes without --write and --allow-files"
        )
        raise typer.Exit(2)
    detail: dict[str, Any] = {"query": shape(query)}
    with _errors():
        loaded = load_project(project)
        engine = open_warehouse(loaded, write=write, allow_files=allow_files)
        try:
            statement: Any = query
            if role is not None:
                try:
                    statement, policy = run_as_role(loaded, engine, query, role)
                except Denied as err:
                    audit_read(
                        loaded,
                        role=role,
                        status=Denied.exit_code,
                        detail={**detail, "refused": err.message},
                    )
                    raise
                detail.update(policy)
            else:
                refuse(engine.statement_kinds(query), write=write, allow_files=allow_files)
            with as_role(loaded, role):
                if out is not None:
                    detail["rows"] = export(engine, statement, out)
                    detail["out"] = str(out)
                else:
                    table = first_rows(engine, statement, limit, allow_files=allow_files)
                    detail["rows"] = table.num_rows
        finally:
            engine.close()
        audit_read(loaded, role=role, status=0, detail=detail)
    if out is not None:
        _console().print(f"wrote {detail['rows']} rows to {out}")
    elif fmt == "json":
        _print_json(table.to_pylist())
    elif table.column_names in ([], ["Success"]):  # a statement that returns no rows
        _console().print("done")
    else:
        _console().print(render.arrow_table(table))


@app.command()
def schema(
    out: Annotated[Path, typer.Option(help="Folder for the JSON Schema files.")] = Path("schemas"),
) -> None:
    """Write the JSON Schema of each project file kind (for editor autocompletion)."""
    from headwater.contracts.schema import write_schemas

    for path in write_schemas(out):
        _console().print(f"wrote {path}")


def main() -> None:
    app()


def _run(
    project_dir: Path,
    stages: tuple[str, ...],
    command: str,
    *,
    full_refresh: bool = False,
    select: list[str] | None = None,
    fmt: str = "table",
    zones: tuple[str, ...] | None = None,
    env: str = "prod",
    apply: bool = False,
    approve: bool = False,
) -> None:
    from headwater.cli import render
    from headwater.orchestrate import run, uptodate
    from headwater.orchestrate.stores import project_catalog_url

    _check_format(fmt)
    root = project_dir.resolve()
    uptodate.forget(root)  # what this command changes, the stamp no longer answers for
    # taken before the project loads: a file edited while this runs counts as changed
    stamping = "build" in stages and not select and zones is None and env == "prod"
    key = uptodate.project_key(root) if stamping else None
    with _errors(), _opened(project_dir) as (loaded, stores):
        # the progress bar goes to stderr when stdout carries JSON
        shown = _stderr() if fmt == "json" else _console()
        with render.Progress(shown, loaded, stages, zones=zones) as progress:
            report = run(
                loaded,
                stores,
                now=datetime.now(UTC),
                sink=progress.sink,
                stages=stages,
                command=command if env == "prod" else f"{command} --env {env}",
                full_refresh=full_refresh,
                select=select,
                zones=zones,
                env=env,
                apply=apply,
                approve=approve,
            )
        catalog = project_catalog_url(loaded, stores.secrets)
        if fmt == "json":
            _print_json(render.report_json(report))
        else:
            render.report(_console(), report, loaded)
    if key is not None and report.ok and len(report.models) == len(loaded.models):
        uptodate.write(
            root,
            key,
            catalog=catalog,
            warehouse=root / loaded.settings.warehouse,
            report=render.nothing_to_do(report, loaded),
            private=loaded.settings.private,
        )
    if not report.ok:
        raise typer.Exit(1)


def _check_env(env: str) -> None:
    import re

    if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", env):
        _stderr().print(
            f"[red]error:[/] --env {env!r}: an environment's name is lower-case letters, digits "
            "and _ (it names the views' schemas, e.g. marts__dev)"
        )
        raise typer.Exit(2)


def _check_format(fmt: str) -> None:
    if fmt not in ("table", "json"):
        _stderr().print(f"[red]error:[/] --format {fmt!r}: expected table or json")
        raise typer.Exit(2)


@contextmanager
def _opened(project_dir: Path) -> Iterator[tuple[Project, Stores]]:
    from headwater.orchestrate import Stores
    from headwater.orchestrate.stores import scrubbed
    from headwater.project import load_project

    loaded = load_project(project_dir)
    stores = Stores.open(loaded)
    _state["scrub"] = stores.secrets.scrub
    try:
        with scrubbed(stores):
            yield loaded, stores
    finally:
        stores.close()


@contextmanager
def _catalog(loaded: Project) -> Iterator[Catalog]:
    """The project's catalog alone (no lake, no warehouse), for commands that only read it;
    secrets are scrubbed from what they print."""
    from headwater.orchestrate.stores import project_catalog_url, project_secrets
    from headwater.zones.catalog import Catalog

    secrets = project_secrets(loaded)
    _state["scrub"] = secrets.scrub
    catalog = Catalog(project_catalog_url(loaded, secrets), scrub=secrets.scrub)
    try:
        yield catalog
    finally:
        catalog.close()


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except HeadwaterError as err:
        if _state["debug"]:
            _stderr().print_exception()
        _stderr().print(f"[red]error:[/] {err.render()}", highlight=False, soft_wrap=True)
        raise typer.Exit(err.exit_code) from None


def _grow(node: Any, name: str, project: Project, seen: set[str] | None = None) -> None:
    seen = set() if seen is None else seen
    children = sorted(n for n, m in project.models.items() if name in m.depends_on)
    for child in children:
        kind = project.models[child].config.kind.value
        branch = node.add(f"{child} [dim]({kind})[/]")
        if child not in seen:
            seen.add(child)
            _grow(branch, child, project, seen)
