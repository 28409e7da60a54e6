"""A second engine for the conformance tests: DuckDB behind a dialect of another name.

`RecordingEngine` runs on DuckDB, but its dialect is `hwrecording` (a sqlglot dialect that
writes what DuckDB's writes). So everything headwater sends it must be rendered for *its*
dialect — a path that hard-codes DuckDB, or text compiled for DuckDB's dialect, does not
apply — and every statement it is sent is recorded, so a test can say that all of them were
ASTs (headwater generates SQL as ASTs, never as text).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlglot.dialects.duckdb import DuckDB

from headwater.engine.base import Capabilities
from headwater.engine.duckdb import DuckDBEngine


class HwRecording(DuckDB):
    """Registered with sqlglot as `hwrecording`: DuckDB's SQL under another name."""


class RecordingEngine(DuckDBEngine):
    dialect = "hwrecording"

    def __init__(self, *args: Any, log: list[object], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log = log
        self._depth = 0

    # what callers send: recorded. The adapter's own catalog queries (objects, stored, …)
    # are its business, so statements sent while one runs are not.
    def execute(self, statement: Any, params: Any = None) -> int | None:
        self._record(statement)
        return super().execute(statement, params)

    def read(self, statement: Any, params: Any = None) -> Any:
        self._record(statement)
        return super().read(statement, params)

    def rows(self, statement: Any, params: Any = None) -> Any:
        self._record(statement)
        return super().rows(statement, params)

    def stream(self, statement: Any, *, batch_rows: int = 100_000) -> Any:
        self._record(statement)
        return super().stream(statement, batch_rows=batch_rows)

    def columns(self, relation: Any) -> dict[str, str]:
        return self._inside(super().columns, relation)

    def objects(self) -> Any:
        return self._inside(super().objects)

    def stored(self, name: str) -> Any:
        return self._inside(super().stored, name)

    def row_counts(self, tables: Any) -> dict[str, int]:
        return self._inside(super().row_counts, tables)

    def _record(self, statement: object) -> None:
        if not self._depth:
            self.log.append(statement)

    def _inside(self, method: Any, *args: Any) -> Any:
        self._depth += 1
        try:
            return method(*args)
        finally:
            self._depth -= 1

    def cursor(self) -> RecordingEngine:
        cursor = RecordingEngine(self.path, log=self.log, _conn=self._conn.cursor())
        return cursor


class MinimalEngine(RecordingEngine):
    """The recording engine with only the capabilities no engine can do without: it reports
    no row counts (so writes count rows themselves) and keeps no comments (so raw views are
    refreshed every time)."""

    capabilities = Capabilities()

    def execute(self, statement: Any, params: Any = None) -> int | None:
        super().execute(statement, params)
        return None

    def cursor(self) -> MinimalEngine:
        return MinimalEngine(self.path, log=self.log, _conn=self._conn.cursor())


ENGINES = ["duckdb", "recording", "minimal"]
# the projects of the conformance suite (the `engine` fixture of tests/conftest.py) run on
# those and on Spark (a local session of pyspark's own JVM: tests/spark.py)
SPARK = pytest.param("spark", marks=pytest.mark.spark)
CONFORMANCE = [*ENGINES, SPARK]


@contextmanager
def engine_named(name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Make every project opened inside run on the engine `name`; yields the statements the
    recording engine was sent (empty for DuckDB itself)."""
    log: list[object] = []
    if name in ("recording", "minimal"):
        kind = RecordingEngine if name == "recording" else MinimalEngine

        def open_recording(_name: str, path: Any = ":memory:", **options: Any) -> RecordingEngine:
            return kind(path, log=log, **options)

        monkeypatch.setattr("headwater.orchestrate.stores.open_engine", open_recording)
    if name == "spark":
        from headwater.engine import open_spark
        from tests.spark import require

        require()

        def open_on_spark(_project: Any, _path: Any, catalog_url: str, lake: Any) -> Any:
            # as `engine: spark` in headwater.yml opens it (orchestrate/stores.py::_engine)
            lake.prepare()
            engine = open_spark(catalog_url, lake.warehouse, master="local[2]")
            log.append(engine)  # opened: the fixture checks it was
            return engine

        monkeypatch.setattr("headwater.orchestrate.stores._engine", open_on_spark)
    yield log


def text_statements(log: list[object]) -> list[str]:
    """The statements sent as text, not as ASTs."""
    return [s for s in log if isinstance(s, str)]


def make_engine(name: str, log: list[object]) -> Any:
    """An in-memory engine of one of `ENGINES`, recording into `log`; or "spark": a session
    over a catalog and lake in a folder of their own (close it)."""
    if name == "spark":
        import atexit
        import shutil
        import tempfile

        from headwater.engine.spark import SparkEngine, SparkOptions
        from headwater.zones.lake import Lake
        from tests.spark import require

        require()
        folder = Path(tempfile.mkdtemp(prefix="hw-spark-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)  # not left in /tmp
        catalog = f"sqlite:///{folder}/catalog.db"
        lake = Lake(catalog, "lake", folder)
        lake.prepare()  # the catalog's tables, as opening a project's stores makes them
        return SparkEngine.open(catalog, lake.warehouse, SparkOptions("local[2]"))
    if name == "recording":
        return RecordingEngine(log=log)
    if name == "minimal":
        return MinimalEngine(log=log)
    return DuckDBEngine()
