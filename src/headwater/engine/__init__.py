"""Engine adapters (band 1): DuckDB now; Spark and PostgreSQL implement the same protocol.

This module is the composition root of engines: the only place that knows which adapter
serves which engine name. Adapters are imported when an engine is opened, never before
(`headwater --help` does not load DuckDB).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from headwater.engine.base import (
    Capabilities,
    ColumnStats,
    Engine,
    FileLoader,
    ObjectKind,
    StoredObject,
    verbatim,
)
from headwater.errors import SpecError, UsageError

__all__ = [
    "Capabilities",
    "ColumnStats",
    "Engine",
    "FileLoader",
    "ObjectKind",
    "StoredObject",
    "file_loader",
    "open_engine",
    "open_spark",
    "scratch",
    "verbatim",
]


def open_engine(
    name: str,
    path: str | Path = ":memory:",
    *,
    threads: int | None = None,
    read_only: bool = False,
    files_under: Sequence[str | Path] | None = None,
    lock_wait: float | None = None,
    filesystems: Mapping[str, Mapping[str, Any]] | None = None,
) -> Engine:
    """The engine `headwater.yml` names, on its warehouse at `path`.

    `read_only`: any number of readers, no writer. `files_under`: no file outside those
    directories can be read or written by SQL (None: every file the process can reach).
    `filesystems`: how SQL reads a lake on object storage (fsspec options by protocol).
    While another process holds the file, opening waits up to `lock_wait` seconds (default:
    `HEADWATER_LOCK_WAIT`, else 10).
    """
    if name == "duckdb":
        from headwater.engine.duckdb import LOCK_WAIT, DuckDBEngine

        wait = os.environ.get("HEADWATER_LOCK_WAIT", "")
        try:
            lock_wait = lock_wait if lock_wait is not None else float(wait) if wait else LOCK_WAIT
        except ValueError:
            raise UsageError(
                f"HEADWATER_LOCK_WAIT={wait!r} is not a number of seconds", hint="e.g. 30"
            ) from None
        return DuckDBEngine(
            path,
            threads=threads,
            read_only=read_only,
            files_under=files_under,
            lock_wait=lock_wait,
            filesystems=filesystems,
        )
    if name == "spark":  # a session needs the project's catalog: `open_spark`, by Stores
        raise SpecError(
            "a Spark session is opened over the project's catalog, not a warehouse file",
            hint="open it with orchestrate.stores.warehouse_engine(project) or Stores.open",
        )
    raise SpecError(
        f"engine {name!r} is not available in this version",
        hint="use `engine: duckdb` (the PostgreSQL engine comes later)",
    )


def open_spark(
    catalog_url: str,
    lake: str,
    *,
    master: str = "local[*]",
    remote: str | None = None,
    conf: Mapping[str, str] | None = None,
    profiles: bool = True,
    io: Mapping[str, str] | None = None,
) -> Engine:
    """A Spark session whose Iceberg catalogs are the project's catalog at `catalog_url`
    (the lake at `lake`, a URL, and the warehouse beside it): engine/spark.py. `profiles`:
    whether the tables it writes whole are measured for profiles (distinct counts, means,
    quantiles) or only for rules (NULLs, bounds). `io`: Iceberg's FileIO properties of a
    lake on object storage (`Lake.io`).

    Raises:
        EngineError: pyspark or Java is missing, or the session did not start.
        SpecError: the catalog is one Spark cannot share (not SQLite or PostgreSQL).
    """
    from headwater.engine.spark import SparkEngine, SparkOptions

    options = SparkOptions(master, remote, dict(conf or {}))
    return SparkEngine.open(catalog_url, lake, options, profiles=profiles, io=io)


def scratch(
    *,
    threads: int | None = None,
    files_under: Sequence[str | Path] | None = None,
    memory_limit: str | None = None,
    spill_to: str | Path | None = None,
    filesystems: Mapping[str, Mapping[str, Any]] | None = None,
) -> Engine:
    """An in-memory engine for work on Arrow data inside this process (conforming a batch,
    inferring types, running a model's unit test, reading the lake's data products): the
    embedded default's engine. `files_under`: SQL may read no file outside those folders.
    `memory_limit` (e.g. "1GB"): joins and sorts beyond it spill to `spill_to`.
    `filesystems`: how SQL reads a lake on object storage (`Lake.filesystems`)."""
    from headwater.engine.duckdb import DuckDBEngine

    return DuckDBEngine(
        threads=threads,
        files_under=files_under,
        memory_limit=memory_limit,
        spill_to=spill_to,
        filesystems=filesystems,
    )


def file_loader(workers: int) -> FileLoader:
    """The engine that lands local JSON-lines files itself (ingestion's direct lane), on
    `workers` threads: the embedded default's, DuckDB."""
    from headwater.engine.duckdb_files import DuckDBFiles

    return DuckDBFiles(workers)
