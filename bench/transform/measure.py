"""The timed work, each in a fresh process so no run warms the next: prints one JSON line.

    measure.py headwater-build PROJECT   load + open + build every model + close
    measure.py headwater-noop PROJECT    the same on an up-to-date project
    measure.py headwater-ingest PROJECT  load + open + ingest the new source files + close
    measure.py headwater-incremental PROJECT    a build, with each model's intervals
    measure.py headwater-full-refresh PROJECT   a build with full_refresh (every interval)
    measure.py duckdb-sequential DB PLAN THREADS
    measure.py duckdb-parallel DB PLAN THREADS

Imports happen before the clock starts, the ones headwater makes lazily during a build too (the
DuckDB engine, sqlglot's DuckDB dialect, SQLAlchemy's SQLite dialect: about 0.07 s, paid once
per process; the CLI figures of `run.py` include them); wall time is `perf_counter`, CPU time is
`process_time` (every thread of the process, DuckDB's included).
"""

from __future__ import annotations

import graphlib
import importlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from headwater.orchestrate import RunReport, Stores, run
from headwater.project import load_project

# headwater imports these on first use; imported here, before the clock, as duckdb itself is
for _lazy in ("headwater.engine.duckdb", "sqlalchemy.dialects.sqlite", "sqlglot.dialects.duckdb"):
    importlib.import_module(_lazy)


class Clock:
    """Wall and CPU seconds of named phases, and of the whole."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.phases[name] = time.perf_counter() - wall
        self.cpu[name] = time.process_time() - cpu

    def result(self, **extra: Any) -> dict[str, Any]:
        return {
            "wall_s": sum(self.phases.values()),
            "cpu_s": sum(self.cpu.values()),
            "phases": self.phases,
            "phases_cpu": self.cpu,
            **extra,
        }


def timed_run(
    project_dir: str, stages: tuple[str, ...], *, full_refresh: bool = False
) -> tuple[Clock, RunReport]:
    """Load, open the stores, run `stages`, close: each a timed phase, as the CLI does them."""
    clock = Clock()
    with clock.phase("load"):
        project = load_project(project_dir)
    with clock.phase("open"):
        stores = Stores.open(project)
    with clock.phase("run"):
        report = run(
            project,
            stores,
            now=datetime.now(UTC),
            stages=stages,
            command=stages[0],
            full_refresh=full_refresh,
        )
    with clock.phase("close"):
        stores.close()
    return clock, report


def headwater(
    project_dir: str, *, full_refresh: bool = False, intervals: bool = False
) -> dict[str, Any]:
    """What `headwater build` does after its imports: load, open the stores, build, close.

    `intervals` adds each model's status and what it wrote: `[intervals, restated, late rows]`.
    """
    clock, report = timed_run(project_dir, ("build",), full_refresh=full_refresh)
    started = time.perf_counter()
    load_project(project_dir)
    warm_load = time.perf_counter() - started
    outcomes = report.models.values()
    extra: dict[str, Any] = {}
    if intervals:
        extra["intervals"] = {m.name: [m.intervals, m.restated, m.late_rows] for m in outcomes}
        extra["statuses_by_model"] = {m.name: m.status for m in outcomes}
    return clock.result(
        statuses=Counter(m.status for m in outcomes),
        errors={m.name: m.error for m in outcomes if m.error},
        rows={m.name: m.rows for m in outcomes},
        load_warm_s=warm_load,
        steps=report.timings,
        **extra,
    )


def ingest(project_dir: str) -> dict[str, Any]:
    """What `headwater ingest` does after its imports: load, open, land new files, close."""
    clock, report = timed_run(project_dir, ("ingest",))
    return clock.result(
        landed={x.table: x.rows for x in report.landed if x.batch_id},
        late={x.table: x.late for x in report.landed if x.batch_id},
        errors=report.ingest_errors,
    )


def direct(db: str, plan_file: str, threads: str, *, parallel: bool) -> dict[str, Any]:
    """The plan's statements on one DuckDB connection, one after another or on a pool."""
    steps = json.loads(Path(plan_file).read_text(encoding="utf-8"))
    clock = Clock()
    with clock.phase("run"):
        conn = duckdb.connect(db)
        conn.execute("SET TimeZone = 'UTC'")  # as headwater's engine does
        if parallel:
            _on_pool(conn, steps, int(threads))
        else:
            for step in steps:
                conn.execute(step["sql"])
        conn.close()
    with duckdb.connect(db, read_only=True) as check:
        rows = {
            s["model"]: check.execute(
                "select count(*) from query_table($t)", {"t": s["table"]}
            ).fetchone()[0]
            for s in steps
        }
    return clock.result(rows=rows)


def _on_pool(conn: duckdb.DuckDBPyConnection, steps: list[dict[str, Any]], threads: int) -> None:
    by_model = {s["model"]: s for s in steps}
    sorter = graphlib.TopologicalSorter({s["model"]: s["deps"] for s in steps})
    sorter.prepare()

    def execute(sql: str) -> None:
        with conn.cursor() as cursor:
            cursor.execute(sql)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        running: dict[Future[None], str] = {}
        while sorter.is_active():
            for name in sorter.get_ready():
                running[pool.submit(execute, by_model[name]["sql"])] = name
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()
                sorter.done(running.pop(future))


KINDS: dict[str, Callable[..., dict[str, Any]]] = {
    "headwater-build": headwater,
    "headwater-noop": headwater,
    "headwater-ingest": ingest,
    "headwater-incremental": lambda p: headwater(p, intervals=True),
    "headwater-full-refresh": lambda p: headwater(p, full_refresh=True, intervals=True),
    "duckdb-sequential": lambda *a: direct(*a, parallel=False),
    "duckdb-parallel": lambda *a: direct(*a, parallel=True),
}

if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    print(json.dumps(KINDS[kind](*args)))
