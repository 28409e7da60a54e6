"""`headwater sql QUERY`: the warehouse as its users query it, read-only and sandboxed.

By default the warehouse opens read-only and its SQL reads no file but the project's lake (the
raw views read Parquet files there): `--write` lets statements modify the warehouse,
`--allow-files` lets them read, write and attach other files. Each statement's kind comes from
DuckDB's own parser and is refused before anything runs unless a flag allows it; the engine's
sandbox (read-only file, file access off, locked settings) refuses it again if this list
misses one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from headwater.errors import EngineError, HeadwaterError

if TYPE_CHECKING:
    import pyarrow as pa

    from headwater.engine import Engine
    from headwater.project import Project

# statements that read, or change only the session (a locked setting still refuses to change)
READS = frozenset({"SELECT", "EXPLAIN", "CALL", "SET", "VARIABLE_SET", "TRANSACTION"})
# statements that reach files or other databases: writing the lake, attaching a file
FILES = frozenset({"COPY", "EXPORT", "ATTACH", "DETACH", "LOAD", "EXTENSION", "COPY_DATABASE"})
WRITE_HINT = "pass --write to modify the warehouse"
FILES_HINT = "pass --allow-files to let SQL reach other files"


def open_warehouse(project: Project, *, write: bool, allow_files: bool) -> Engine:
    """The project's warehouse as `headwater sql` opens it (see the module's docstring)."""
    from headwater.engine import open_engine

    path = project.root / project.settings.warehouse
    if not path.exists():
        raise EngineError(
            f"the warehouse {path} does not exist yet", hint="run `headwater run` first"
        )
    files = None if allow_files else _lake_directories(project)
    return open_engine(project.settings.engine, path, read_only=not write, files_under=files)


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


def _lake_directories(project: Project) -> list[Path]:
    """The lake folder, when it is local: the raw views read their Parquet files there."""
    from headwater.contracts.secrets import Secrets

    lake = Secrets(os.environ).expand(project.settings.lake, where="headwater.yml: lake")
    if lake.startswith("file://"):
        lake = lake.removeprefix("file://")
    elif "://" in lake:
        return []  # object storage: DuckDB reads no s3:// path without --allow-files
    return [project.root / lake]
