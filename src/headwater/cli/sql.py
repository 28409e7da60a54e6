"""`headwater sql QUERY`: the warehouse as its users query it, read-only and sandboxed.

`--role R` runs one SELECT as a policies.yml role sees the data: every table it reads is
replaced by the role's masked, row-filtered view of it (`govern/guard.py`). `--out FILE`
exports the whole result through the same view. Every read is audited (its shape, not its
values).

By default the warehouse opens read-only and its SQL reads no file but the project's lake (the
raw views read Parquet files there): `--write` lets statements modify the warehouse,
`--allow-files` lets them read, write and attach other files. Each statement's kind comes from
DuckDB's own parser and is refused before anything runs unless a flag allows it; the engine's
sandbox (read-only file, file access off, locked settings) refuses it again if this list
misses one. On Spark (`engine: spark`) the kinds come from sqlglot's parse, and a query of
files by path (parquet.`/some/path`) or calling Java (reflect) counts as reaching files;
Spark has no read-only mode or sandbox of its own, so that refusal is the only one there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from headwater.errors import EngineError, HeadwaterError, UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from headwater.engine import Engine
    from headwater.project import Project

# statements that read, or change only the session (a locked setting still refuses to change)
READS = frozenset({"SELECT", "EXPLAIN", "CALL", "SET", "VARIABLE_SET", "TRANSACTION"})
# statements that reach files or other databases: writing the lake, attaching a file; on
# Spark, a query of files by path or one calling Java (FILES: engine/spark.py)
FILES = frozenset(
    {"COPY", "EXPORT", "ATTACH", "DETACH", "LOAD", "EXTENSION", "COPY_DATABASE", "FILES"}
)
WRITE_HINT = "pass --write to modify the warehouse"
FILES_HINT = "pass --allow-files to let SQL reach other files"


def open_warehouse(project: Project, *, write: bool, allow_files: bool) -> Engine:
    """The project's warehouse as `headwater sql` opens it (see the module's docstring)."""
    from headwater.orchestrate.stores import warehouse_engine

    path = project.root / project.settings.warehouse
    if project.settings.engine != "spark" and not path.exists():
        raise EngineError(
            f"the warehouse {path} does not exist yet", hint="run `headwater run` first"
        )
    files = None if allow_files else _lake_directories(project)
    return warehouse_engine(project, read_only=not write, files_under=files)


def refuse(kinds: list[str], *, write: bool, allow_files: bool) -> None:
    """Raise for the first statement kind the flags do not allow."""
    for kind in kinds:
        if kind in READS:
            continue
        shown = "this statement" if kind == "UNKNOWN" else kind.replace("_", " ")
        if kind in FILES:
            if not allow_files:
                raise EngineError(
                    f"{shown} reaches files or databases outside the warehouse", hint=FILES_HINT
                )
        elif not write:
            raise EngineError(
                f"{shown} may modify the warehouse, which headwater sql opens read-only",
                hint=WRITE_HINT,
            )


def first_rows(engine: Engine, query: str, limit: int, *, allow_files: bool) -> pa.Table:
    """The first `limit` rows of the last statement's result (a table without columns for a
    statement that returns none), with DuckDB's refusals explained."""
    try:
        return engine.head(query, limit)
    except HeadwaterError as err:
        raise _explained(err, allow_files=allow_files) from err


def _explained(err: HeadwaterError, *, allow_files: bool) -> HeadwaterError:
    """DuckDB's refusal with what to do about it (its message names no flag)."""
    if "read-only mode" in err.message:
        return EngineError(err.message, hint=WRITE_HINT)
    if not allow_files and err.message.startswith("Permission Error"):
        return EngineError(
            err.message, hint=f"headwater sql reads only the warehouse and the lake; {FILES_HINT}"
        )
    if "configuration has been locked" in err.message:
        return EngineError(err.message, hint="headwater sql locks DuckDB's settings")
    return err


def _lake_directories(project: Project) -> list[str | Path]:
    """The lake's folder (or its prefix on object storage): the raw views read their Parquet
    files there."""
    from headwater.contracts.secrets import Secrets

    lake = Secrets(os.environ).expand(project.settings.lake, where="headwater.yml: lake")
    if lake.startswith("file://"):
        lake = lake.removeprefix("file://")
    elif "://" in lake:
        return [lake]
    return [project.root / lake]


def run_as_role(
    project: Project, engine: Engine, query: str, role: str
) -> tuple[exp.Query, dict[str, Any]]:
    """`query` as `role` may run it (`govern/guard.py`), and what its policies did to it."""
    from headwater.govern.guard import guard
    from headwater.govern.masking import project_salt
    from headwater.govern.pii import project_tags

    if project.policies is None:
        raise UsageError(
            f"--role {role}: the project has no policies.yml, so it has no roles",
            hint="declare roles, their grants and masks in policies.yml",
        )
    policies = project.policies
    names = [t for c in project.contracts.values() for t in (c.table, c.quarantine, c.history)]
    names += list(project.models)
    tables = {name: _columns_of(engine, name) for name in names if name}
    guarded = guard(
        query,
        policies=policies,
        role=role,
        tables=tables,
        tags=lambda read: project_tags(project, [t for t in read if t in project.models]),
        salt=project_salt(project),
    )
    detail = {"tables": guarded.tables, "masked": guarded.masked, "rows_policy": guarded.filtered}
    return guarded.query, detail


@contextmanager
def as_role(project: Project, role: str | None) -> Iterator[None]:
    """An engine error of a query run as a role, without the query it ran: that is the
    rewrite, whose masks hold the hash salt (and the role's row policies)."""
    if role is None:
        yield
        return
    try:
        yield
    except EngineError as err:
        from headwater.govern.masking import project_salt

        message = err.message.replace(project_salt(project), "***")
        raise type(err)(
            message, hint=f"the query ran as role {role!r}, through its policies"
        ) from None


def _columns_of(engine: Engine, table: str) -> Callable[[], dict[str, str]]:
    def columns() -> dict[str, str]:
        try:
            return engine.columns(table)
        except HeadwaterError:
            raise UsageError(f"{table} is not built yet", hint="run `headwater run`") from None

    return columns


def shape(query: str) -> str:
    """The query with every literal a `?`: what the audit log keeps of a query (its values
    may be a person's, and the log must not hold them)."""
    import sqlglot

    from headwater.engine.dialect import AUTHORED

    try:
        parsed = sqlglot.parse(query, dialect=AUTHORED)
    except sqlglot.errors.ParseError:
        return "(does not parse)"
    shapes = []
    for statement in parsed:
        if statement is None:
            continue
        for literal in list(statement.find_all(exp.Literal)):
            literal.replace(exp.Placeholder())
        shapes.append(statement.sql(dialect=AUTHORED))
    return "; ".join(shapes)


def audit_read(project: Project, *, role: str | None, status: int, detail: dict[str, Any]) -> None:
    """One entry in the audit log for a `headwater sql` read (the catalog may not exist yet:
    a project never run has nothing to read, and nothing is logged)."""
    from datetime import UTC, datetime

    from headwater.orchestrate.running import audited
    from headwater.orchestrate.stores import LakeStores

    stores = LakeStores.open(project)
    try:
        subject = ",".join(detail.get("tables", [])) or None
        entry = audited("sql", subject, at=datetime.now(UTC), status=status, role=role, **detail)
        stores.catalog.audit([entry])
    finally:
        stores.close()


def export(engine: Engine, query: str | exp.Query, out: Path) -> int:
    """Every row of the query's result written to `out` (.parquet, .csv, .json/.jsonl), in
    batches; the number of rows."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv", ".json", ".jsonl"):
        raise UsageError(
            f"--out {out}: cannot tell the format from {suffix or 'no suffix'}",
            hint="end the file name with .parquet, .csv, .json or .jsonl",
        )
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: there is no folder {out.parent}", hint="make it first")
    reader = engine.stream(query)
    rows = 0
    part = out.with_name(f".{out.name}.part")  # the file appears whole, or not at all
    try:
        if suffix == ".parquet":
            with pq.ParquetWriter(part, reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
                    rows += batch.num_rows
        elif suffix == ".csv":
            with pacsv.CSVWriter(part, reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
                    rows += batch.num_rows
        else:
            import orjson

            with part.open("wb") as file:
                for batch in reader:
                    for record in batch.to_pylist():
                        file.write(orjson.dumps(record, default=str) + b"\n")
                    rows += batch.num_rows
        part.replace(out)
    except OSError as err:
        raise UsageError(f"--out {out}: cannot write it ({err.strerror or err})") from None
    finally:
        part.unlink(missing_ok=True)
    return rows
