"""Feature store benchmark: a point-in-time training set of a 10M-row feature table and a
1M-row entity file within 2 GB of peak memory (the issue's acceptance figure), and the online
store's refresh of the same table.

    .venv/bin/python bench/features/run.py [--rows 10000000] [--entities 1000000]
                                           [--customers 1000000] [--format table|json]

Builds (once, cached in out/project/) a project whose model `marts.activity` makes `--rows`
feature rows itself (`--customers` entities, each with rows spread over 2025, a 7-day TTL),
published with `headwater run`; writes the entity file (out/entities.csv: customer id, a time,
a label; `--entities` rows in random order). Then, each in a fresh process, measured by the
parent (`resource.getrusage(RUSAGE_CHILDREN)` after each: that child's peak RSS):

- `training_set(..., out=FILE)`: the Parquet file written by the engine (the CLI's path);
- `training_set(...)`: the same, returned as an Arrow table;
- plain DuckDB: the same ASOF LEFT JOIN with DuckDB's defaults (no memory cap, the entity
  file read by DuckDB itself): the reference for time, and what an uncapped join costs;
- `refresh`: the online store (SQLite) made anew from the product: the latest row per
  entity (`--customers` keys).

Checks the training set against a correlated subquery for a sample of 2,000 entity rows
(the answer a person would write: the latest value at or before the row's time, NULL past the
TTL), and that the rows come back in the entity file's order. Writes out/latest.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # bench/machine.py
from machine import describe, run_project  # noqa: E402

OUT = HERE / "out"
PROJECT = OUT / "project"
LIMIT_MB = 2048  # the acceptance: peak memory under 2 GB
MODEL_SQL = """select i % {customers} as customer_id,
       timestamp '2025-01-01' + to_seconds(((i * 2654435761) % 31536000)::bigint) as updated_at,
       (i * 7) % 1000 as orders,
       ((i * 13) % 100000) / 100.0 as spend,
       'segment_' || (i % 17) as segment
from range({rows}) t(i)
"""
SIDECAR = """description: Generated activity of the feature benchmark.
features:
  activity:
    entity: customer_id
    event_time: updated_at
    features: [orders, spend, segment]
    ttl: 7d
"""
# the child processes: each prints one JSON line {"rows": …} after its work
TRAINING = """
import json, sys
from headwater.serve.features import training_set
out = sys.argv[2] if sys.argv[2] != "-" else None
result = training_set(sys.argv[1], "activity", sys.argv[3], out=out, memory_limit=sys.argv[4])
rows = result.num_rows if out is None else __import__("pyarrow.parquet").parquet.ParquetFile(
    result).metadata.num_rows
done = {"rows": rows}
"""
PLAIN = """
import duckdb, json, sys
from headwater.orchestrate.stores import LakeStores
from headwater.project import load_project
loaded = load_project(sys.argv[1])
stores = LakeStores.open(loaded)
product = stores.catalog.served("prod", ["marts.activity"])["marts.activity"]
files = stores.lake.snapshot_files(product.product, product.snapshot_id)
stores.close()
conn = duckdb.connect()
conn.execute("SET TimeZone = 'UTC'")
rows = conn.execute('''
    COPY (
      SELECT e.* EXCLUDE (_n),
             CASE WHEN f.updated_at >= e.event_timestamp - INTERVAL 7 DAY THEN f.orders END
               AS orders,
             CASE WHEN f.updated_at >= e.event_timestamp - INTERVAL 7 DAY THEN f.spend END
               AS spend,
             CASE WHEN f.updated_at >= e.event_timestamp - INTERVAL 7 DAY THEN f.segment END
               AS segment
      FROM (SELECT *, row_number() OVER () AS _n FROM read_csv($e)) e
      ASOF LEFT JOIN read_parquet($f) f
        ON e.customer_id = f.customer_id AND e.event_timestamp >= f.updated_at
      ORDER BY e._n
    ) TO $o (FORMAT parquet)''', {"e": sys.argv[3], "f": files, "o": sys.argv[2]}).fetchone()[0]
done = {"rows": rows}
"""
REFRESH = """
import json, sys
from datetime import UTC, datetime
from headwater.change.online import refresh
from headwater.orchestrate import Stores
from headwater.project import load_project
loaded = load_project(sys.argv[1])
stores = Stores.open(loaded)
try:
    views = refresh(loaded, stores.engine, stores.lake, stores.catalog, "prod",
                    now=datetime.now(UTC))
finally:
    stores.close()
done = {"views": views}
"""
# what every child prints last: its result and its own peak RSS (the kernel's high-water mark)
FOOTER = """
import json as _json
_peak = next(int(line.split()[1]) for line in open("/proc/self/status")
             if line.startswith("VmHWM:"))
print("\\nRESULT " + _json.dumps({**done, "peak_kb": _peak}))
"""


def build_project(rows: int, customers: int, say: Any) -> None:
    """out/project with `marts.activity` of `rows` rows, published (kept while unchanged)."""
    sql = MODEL_SQL.format(customers=customers, rows=rows)
    marker = PROJECT / "bench.json"
    wanted = {"rows": rows, "sql": sql, "sidecar": SIDECAR}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        say(f"project: {PROJECT} (cached, {rows:,} feature rows)")
        return
    shutil.rmtree(PROJECT, ignore_errors=True)
    (PROJECT / "models/marts").mkdir(parents=True)
    (PROJECT / "headwater.yml").write_text("name: bench\n")
    (PROJECT / "models/marts/activity.sql").write_text(sql)
    (PROJECT / "models/marts/activity.yml").write_text(SIDECAR)
    seconds = run_project(PROJECT)
    marker.write_text(json.dumps(wanted))
    say(f"project: {PROJECT} (built, {rows:,} rows, {seconds:.1f}s)")


def write_entities(path: Path, entities: int, customers: int) -> None:
    """`entities` label rows in random order: a customer (some unknown), a time in 2025
    (some before every feature row), a label."""
    import duckdb

    marker = path.with_suffix(".json")
    if (
        path.exists()
        and marker.exists()
        and json.loads(marker.read_text()) == [entities, customers]
    ):
        return
    conn = duckdb.connect()
    conn.execute(
        f"""COPY (SELECT (hash(i) % {customers + customers // 50})::bigint AS customer_id,
                  timestamp '2025-01-01' + to_seconds((hash(i * 31) % 31536000)::bigint)
                    AS event_timestamp,
                  (hash(i * 7) % 2)::int AS label
           FROM range({entities}) t(i)) TO '{path}' (HEADER)"""
    )
    path.with_suffix(".json").write_text(json.dumps([entities, customers]))


def measure(code: str, *args: str) -> dict[str, Any]:
    """Run `code` in a fresh Python process: its seconds (wall, CPU) and its peak RSS in MB
    (VmHWM, which the child reads of itself as it ends; `getrusage(RUSAGE_CHILDREN)` in the
    parent agrees when this child is the largest so far)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code + FOOTER, *args], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"a measured process failed:\n{done.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # the marked line: a query's progress bar (DuckDB draws one on stdout) may precede it
    told = json.loads(done.stdout.rsplit("RESULT ", 1)[1])
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_mb": round(told.pop("peak_kb") / 1024),
        **told,
    }


def check(result: Path, entities: Path, files_of: Path) -> dict[str, Any]:
    """The training set against a correlated subquery for 2,000 sampled rows, and its order."""
    import duckdb

    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    files = json.loads(files_of.read_text())
    conn.execute("CREATE TABLE f AS SELECT * FROM read_parquet($f)", {"f": files})
    conn.execute(
        "CREATE TABLE e AS SELECT *, row_number() OVER () - 1 AS n FROM read_csv($e)",
        {"e": str(entities)},
    )
    conn.execute(
        "CREATE TABLE r AS SELECT *, row_number() OVER () - 1 AS n FROM read_parquet($r)",
        {"r": str(result)},
    )
    same_order = (
        conn.execute(
            "SELECT count(*) FROM e JOIN r USING (n) WHERE e.customer_id = r.customer_id "
            "AND e.event_timestamp = r.event_timestamp AND e.label = r.label"
        ).fetchone()[0]
        == conn.execute("SELECT count(*) FROM e").fetchone()[0]
    )
    wrong = conn.execute(
        """SELECT count(*) FROM (SELECT * FROM r USING SAMPLE 2000 ROWS (reservoir, 7)) s
           WHERE s.spend IS DISTINCT FROM (
             SELECT CASE WHEN f.updated_at >= s.event_timestamp - INTERVAL 7 DAY
                         THEN f.spend END
             FROM f WHERE f.customer_id = s.customer_id AND f.updated_at <= s.event_timestamp
             ORDER BY f.updated_at DESC LIMIT 1)"""
    ).fetchone()[0]
    present = conn.execute("SELECT count(spend), count(*) FROM r").fetchone()
    return {"in_order": same_order, "sample_mismatches": wrong, "with_value": present[0]}


def product_files(path: Path) -> None:
    from headwater.orchestrate.stores import LakeStores
    from headwater.project import load_project

    stores = LakeStores.open(load_project(PROJECT))
    try:
        product = stores.catalog.served("prod", ["marts.activity"])["marts.activity"]
        assert product is not None
        path.write_text(
            json.dumps(stores.lake.snapshot_files(product.product, product.snapshot_id))
        )
    finally:
        stores.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--memory-limit", default="1GB", help="training_set's engine cap (1GB, its default)"
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args()
    say = print if args.format == "table" else (lambda *_: None)
    OUT.mkdir(exist_ok=True)
    build_project(args.rows, args.customers, say)
    entities = OUT / "entities.csv"
    write_entities(entities, args.entities, args.customers)
    say(f"entities: {entities} ({args.entities:,} rows)")
    results: dict[str, Any] = {}
    runs = [
        ("training_set, out=FILE", TRAINING, str(OUT / "training.parquet")),
        ("training_set, Arrow table", TRAINING, "-"),
        ("refresh (online, SQLite)", REFRESH, "-"),
        ("plain DuckDB, uncapped", PLAIN, str(OUT / "plain.parquet")),
    ]
    for name, code, out in runs:
        if code is REFRESH:  # from nothing: a store already holding the snapshot does no work
            for stale in (PROJECT / ".headwater").glob("online.db*"):
                stale.unlink()
        results[name] = measure(code, str(PROJECT), out, str(entities), args.memory_limit)
        shown = results[name]
        say(
            f"{name:<28} {shown['seconds']:>7.1f} s wall {shown['cpu_seconds']:>7.1f} s CPU"
            f"  peak {shown['peak_mb']:>6,} MB"
        )
    files = OUT / "files.json"
    product_files(files)
    checked = check(OUT / "training.parquet", entities, files)
    say(f"check: {checked}")
    capped = [r["peak_mb"] for n, r in results.items() if n.startswith("training_set")]
    right = checked["sample_mismatches"] == 0 and checked["in_order"]
    verdict = "met" if max(capped) < LIMIT_MB and right else "NOT met"
    say(f"peak memory of the training sets: {max(capped):,} MB (target < {LIMIT_MB:,}): {verdict}")
    plain = results["plain DuckDB, uncapped"]
    for name in ("training_set, out=FILE", "training_set, Arrow table"):
        say(
            f"{name} / plain DuckDB: {results[name]['seconds'] / plain['seconds']:.2f}x wall, "
            f"{results[name]['cpu_seconds'] / plain['cpu_seconds']:.2f}x CPU"
        )
    report = {
        "machine": describe(),
        "rows": args.rows,
        "entities": args.entities,
        "memory_limit": args.memory_limit,
        "results": results,
        "check": checked,
        "verdict": verdict,
    }
    (OUT / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    if args.format == "json":
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
