"""Spark benchmark (issue #21): the transform bench's DAG built by headwater on Spark, against
the same statements run directly with `spark.sql` in the same session, and against DuckDB.

    .venv/bin/python bench/spark/run.py                      # 1M events, 30 models, 3 rounds
    .venv/bin/python bench/spark/run.py --events 10000000 --repeat 2

The project is bench/transform's: the example with `--events` events ingested once (cached in
bench/transform/out/work/shop-<events>/), plus `--models` generated models (bench/transform/
generate.py, seeded). Every contender starts from its own copy of that post-ingest state, in
this one process, in an order that alternates round by round, the Spark context started
before any clock (its JVM start is not what is compared; `headwater run` on Spark pays it
once, about 10 s):

- `headwater spark`: `load_project` + `Stores.open` + `run(stages=("build",))` + close, with
  `engine: spark` (a local session, `local[2]`): every model built, audited and profiled on
  Spark, its versions Iceberg tables in the lake; its raw views made before the clock, as
  the landing makes them (as DuckDB's are in the post-ingest state);
- `spark.sql direct`: bench/transform/direct.py's plan (each model file as `CREATE TABLE
  zone_name AS ...`, references rewritten), rendered for Spark as headwater renders
  (sqlglot + engine/spark_sql.py), each statement run with `session.sql` in dependency order,
  as Iceberg tables of the same catalog (namespace `direct`), reading the raw and seed
  tables in the lake (what headwater's raw views show);
- `headwater duckdb` and `duckdb direct`: the same two on the embedded default, for the
  crossover.

Reports medians of wall seconds, the ratio headwater/direct on each engine (goal on Spark:
<= 1.15x), Spark against DuckDB, and where the crossover would be: each engine's time fitted
as fixed + per-row cost over the event counts measured (run it at two sizes; results are
kept per size in out/result-<events>.json).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TRANSFORM = HERE.parent / "transform"
OUT = HERE / "out"
TARGET = 1.15
NOW = datetime(2026, 12, 6, tzinfo=UTC)


def _transform() -> Any:
    """bench/transform/run.py as a module: its setup of the project."""
    sys.path.insert(0, str(TRANSFORM))
    spec = importlib.util.spec_from_file_location("transform_bench", TRANSFORM / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def on_engine(project: Path, engine: str, *, profile: bool = True) -> None:
    """`project`'s headwater.yml set to run on `engine` (Spark: a local session of 2 cores),
    profiling every version it builds or not."""
    settings = project / "headwater.yml"
    lines = settings.read_text().splitlines()
    kept = [line for line in lines if not line.startswith(("engine:", "spark:"))]
    if not profile:
        defaults = [i for i, line in enumerate(kept) if line.startswith("defaults: {")]
        if not defaults:
            raise SystemExit(f"{settings}: no `defaults: {{...}}` line to turn profiles off in")
        kept[defaults[0]] = kept[defaults[0]].replace("defaults: {", "defaults: {profile: false, ")
    extra = ["engine: spark", "spark: {master: 'local[2]'}"] if engine == "spark" else []
    settings.write_text("\n".join([*kept, *extra, ""]))


def build(project: Path) -> tuple[float, int]:
    """headwater's build of every model of `project`: wall seconds, models built."""
    from headwater.orchestrate import Stores, run
    from headwater.project import load_project

    started = time.perf_counter()
    loaded = load_project(project)
    stores = Stores.open(loaded)
    try:
        report = run(loaded, stores, now=NOW, stages=("build",), command="build")
    finally:
        stores.close()
    wall = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"the build failed: {report.summary()}")
    return wall, sum(1 for m in report.models.values() if m.status == "built")


def direct_spark(project: Path, steps: list[Any]) -> float:
    """The plan's statements with spark.sql, in a session over `project`'s catalog: its raw
    and seed tables read in the lake itself (what headwater's raw views show)."""
    import sqlglot
    from sqlglot import exp

    from headwater.engine.spark import CATALOG
    from headwater.orchestrate import Stores
    from headwater.project import load_project

    def in_lake(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and node.db in ("raw", "seed") and not node.catalog:
            node.set("catalog", exp.to_identifier(CATALOG))
        return node

    stores = Stores.open(load_project(project))
    try:
        engine: Any = stores.engine
        session = engine.session
        session.sql("CREATE NAMESPACE IF NOT EXISTS direct").collect()
        session.sql("USE direct").collect()
        statements = [
            engine.render(sqlglot.parse_one(s.sql, read="duckdb").transform(in_lake)) for s in steps
        ]
        started = time.perf_counter()
        for sql in statements:
            session.sql(sql).collect()
        return time.perf_counter() - started
    finally:
        stores.close()


def direct_duckdb(project: Path, steps: list[Any]) -> float:
    import duckdb

    conn = duckdb.connect(str(project / ".headwater" / "warehouse.duckdb"))
    try:
        conn.execute("CREATE SCHEMA IF NOT EXISTS direct; USE direct")
        started = time.perf_counter()
        for step in steps:
            conn.execute(step.sql)
        return time.perf_counter() - started
    finally:
        conn.close()


def fresh(base: Path, to: Path) -> Path:
    shutil.rmtree(to, ignore_errors=True)
    shutil.copytree(base, to)
    return to


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed rounds first (the first build in a fresh JVM runs 1.5-2x slower)",
    )
    parser.add_argument(
        "--no-profile",
        action="store_true",
        help="headwater profiles no version (`defaults: {profile: false}`): its own cost alone",
    )
    args = parser.parse_args()

    transform = _transform()
    work = OUT / "work"
    base = transform.prepare_base(
        TRANSFORM / "out" / "work" / f"shop-{args.events}", events=args.events, fresh=False
    )
    project = work / "project"
    transform.prepare_project(base, project, count=args.models, seed=args.seed)
    steps = transform.direct.plan(project)
    total = len(steps)

    # the Spark context up before any clock, and the raw views headwater on Spark reads made
    # as `headwater ingest` makes them when data lands (DuckDB's are in the post-ingest state)
    from headwater.orchestrate import Stores
    from headwater.orchestrate.raw import refresh_raw_views
    from headwater.project import load_project

    on_spark = fresh(project, work / "on-spark")
    on_engine(on_spark, "spark")
    loaded = load_project(on_spark)
    stores = Stores.open(loaded)
    try:
        if refresh_raw_views(loaded, stores):
            raise SystemExit("the raw views could not all be made on Spark")
    finally:
        stores.close()

    runs: dict[str, list[float]] = {k: [] for k in ("hw_spark", "spark", "hw_duckdb", "duckdb")}

    def measure(kind: str) -> float:
        engine = kind.removeprefix("hw_")
        copy = fresh(on_spark if kind == "hw_spark" else project, work / kind)
        on_engine(copy, engine, profile=not args.no_profile)
        if kind == "spark":
            return direct_spark(copy, steps)
        if kind == "duckdb":
            # DuckDB's raw views are in the warehouse file, made when the example landed
            return direct_duckdb(copy, steps)
        wall, built = build(copy)
        if built != total:
            raise SystemExit(f"{engine}: {built} of {total} models built")
        return wall

    for _ in range(args.warmup):  # untimed: the JVM's JIT warm for whichever goes first
        for kind in runs:
            measure(kind)
    for i in range(args.repeat):
        order = list(runs) if i % 2 == 0 else list(reversed(runs))
        for kind in order:  # alternating, so neither side has the warmer JVM or caches
            runs[kind].append(measure(kind))
        print(
            f"  round {i + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in runs.items()),
            flush=True,
        )
    median = {k: statistics.median(v) for k, v in runs.items()}
    result = {
        "events": args.events,
        "profile": not args.no_profile,
        "models": total,
        "rounds": args.repeat,
        "warmup": args.warmup,
        "median_s": median,
        "samples_s": runs,
        "spark_ratio": median["hw_spark"] / median["spark"],
        "duckdb_ratio": median["hw_duckdb"] / median["duckdb"],
        "spark_vs_duckdb": median["hw_spark"] / median["hw_duckdb"],
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    OUT.mkdir(exist_ok=True)
    suffix = "-no-profile" if args.no_profile else ""
    (OUT / f"result-{args.events}{suffix}.json").write_text(json.dumps(result, indent=2))
    print(f"\n{args.events:,} events, {total} models, medians of {args.repeat}:")
    for key, label in (
        ("hw_spark", "headwater on Spark"),
        ("spark", "spark.sql direct"),
        ("hw_duckdb", "headwater on DuckDB"),
        ("duckdb", "DuckDB direct"),
    ):
        print(f"  {label:22}{median[key]:>9.2f} s")
    verdict = "met" if result["spark_ratio"] <= TARGET else "MISSED"
    print(
        f"headwater/direct on Spark {result['spark_ratio']:.2f}x (target <= {TARGET}x: "
        f"{verdict}); on DuckDB {result['duckdb_ratio']:.2f}x; headwater Spark/DuckDB "
        f"{result['spark_vs_duckdb']:.1f}x"
    )
    crossover()


def crossover() -> None:
    """Each engine's build time as fixed + per-event cost, fitted on the sizes measured (the
    two smallest and largest), and the event count where Spark's would fall under DuckDB's."""
    done = sorted(
        (
            result
            for result in (json.loads(p.read_text()) for p in OUT.glob("result-*.json"))
            if result.get("profile", True)
        ),
        key=lambda r: r["events"],
    )
    if len(done) < 2:
        print("crossover: run a second size (--events) to fit the costs")
        return
    small, large = done[0], done[-1]
    span = large["events"] - small["events"]
    fit = {}
    for key in ("hw_spark", "hw_duckdb"):
        slope = (large["median_s"][key] - small["median_s"][key]) / span
        fit[key] = (small["median_s"][key] - slope * small["events"], slope)
    (a_s, b_s), (a_d, b_d) = fit["hw_spark"], fit["hw_duckdb"]
    print(
        f"fitted on {small['events']:,} and {large['events']:,} events: Spark {a_s:.1f} s + "
        f"{b_s * 1e6:.2f} s per million, DuckDB {a_d:.1f} s + {b_d * 1e6:.2f} s per million"
    )
    if b_s < b_d:
        print(f"crossover: about {(a_s - a_d) / (b_d - b_s) / 1e6:.0f}M events")
        return
    times = b_s / b_d
    # a cluster of k machines like this one, used perfectly, costs b_s / k a row: with twice
    # the machines that just match DuckDB's cost per row, Spark's fixed cost is paid back at
    # (a_s - a_d) / (b_d - b_s / k) rows
    k = 2 * times
    print(
        f"crossover: none on this machine (Spark's cost per event is {times:.1f}x DuckDB's). "
        f"On a cluster of {k:.0f} such machines (perfectly used), Spark would pass one "
        f"DuckDB at about {(a_s - a_d) / (b_d - b_s / k) / 1e6:.0f}M events"
    )


if __name__ == "__main__":
    main()
