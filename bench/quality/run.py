"""Quality benchmark: 20 rules over one table, headwater vs ONE hand-written DuckDB query.

The table's keys are unique, and four row-level rules fail on a handful of rows: headwater
reports their samples too (from the same scan). A failing uniqueness rule would cost one more
aggregation, for the samples of its duplicated keys.

    .venv/bin/python bench/quality/run.py [--rows 10000000] [--repeat 3] [--fresh] [--all-pass]
                                          [--scan-only]

Builds (once, cached in out/) a DuckDB table of `--rows` orders with a few deliberate defects
(written by the CREATE TABLE itself, as a model's defects are),
then times, each in a fresh process (imports before the clock) and `--repeat` times (median):

- headwater: `quality.evaluate` of the 20 rules in RULES, as a model audit runs them — what
  the write knows of the table (its row count, and DuckDB's statistics of its columns: which
  hold no NULL, the bounds of their values; `quality.written`), then the one scan of the rules
  those do not answer, plus the queries that fetch sample rows for the rules that fail
  (`--scan-only`: no statistics, every rule scanned, as before #14's point 6);
- hand-written: HAND, one SQL query a person would write for the same 20 metrics.

Reports wall and CPU seconds, the ratio (target: within 1.1x, issue #14) and each side's
peak RSS, and checks both computed the same metric for every rule.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
NOW = datetime(2026, 11, 1, tzinfo=UTC)
TARGET = 1.1  # issue #14: <= 1.10x with failing rules' samples, <= 1.0x when all pass

RULES: list[dict[str, Any]] = [
    {"name": "id_not_null", "type": "not_null", "target": "id"},
    {"name": "customer_not_null", "type": "not_null", "target": "customer_id"},
    {"name": "status_not_null", "type": "not_null", "target": "status"},
    {"name": "created_not_null", "type": "not_null", "target": "created_at"},
    {"name": "id_unique", "type": "uniqueness", "target": "id"},
    {"name": "line_unique", "type": "uniqueness", "target": "customer_id, created_at"},
    {"name": "email_complete", "type": "completeness", "target": "email", "threshold": "5%"},
    {"name": "country_complete", "type": "completeness", "target": "country", "threshold": "1%"},
    {"name": "amount_complete", "type": "completeness", "target": "amount", "threshold": "1%"},
    {
        "name": "status_known",
        "type": "valid_values",
        "target": "status",
        "values": ["placed", "paid", "shipped", "delivered", "cancelled", "refunded"],
    },
    {
        "name": "currency_known",
        "type": "valid_values",
        "target": "currency",
        "values": ["EUR", "USD", "GBP"],
    },
    {
        "name": "country_known",
        "type": "valid_values",
        "target": "country",
        "values": ["DE", "FR", "GB", "NL", "US", "ES", "IT", "SE"],
    },
    {"name": "amount_range", "type": "valid_values", "target": "amount", "min": 0, "max": 10000},
    {"name": "quantity_range", "type": "valid_values", "target": "quantity", "min": 1, "max": 100},
    {"name": "created_recent", "type": "valid_values", "target": "created_at", "min": "2020-01-01"},
    {
        "name": "email_format",
        "type": "valid_values",
        "target": "email",
        "pattern": "[^@ ]+@[^@ ]+[.][a-z]+",
    },
    {
        "name": "code_length",
        "type": "valid_values",
        "target": "code",
        "min_length": 2,
        "max_length": 4,
    },
    {"name": "discount_range", "type": "valid_values", "target": "discount", "min": 0, "max": 1},
    {"name": "fresh", "type": "freshness", "target": "updated_at", "threshold": "3 days"},
    {"name": "not_empty", "type": "row_count", "target": "*", "threshold": 1},
]

# the same 20 metrics, as a person would write them: one query, one scan
HAND = """
select
  count(*) filter (where id is null) as id_not_null,
  count(*) filter (where customer_id is null) as customer_not_null,
  count(*) filter (where status is null) as status_not_null,
  count(*) filter (where created_at is null) as created_not_null,
  count(id) - count(distinct id) as id_unique,
  count(*) filter (where customer_id is not null and created_at is not null)
    - count(distinct (customer_id, created_at)) as line_unique,
  count(*) filter (where email is null) / count(*) as email_complete,
  count(*) filter (where country is null) / count(*) as country_complete,
  count(*) filter (where amount is null) / count(*) as amount_complete,
  count(*) filter (where status not in
    ('placed', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded')) as status_known,
  count(*) filter (where currency not in ('EUR', 'USD', 'GBP')) as currency_known,
  count(*) filter (where country not in
    ('DE', 'FR', 'GB', 'NL', 'US', 'ES', 'IT', 'SE')) as country_known,
  count(*) filter (where amount < 0 or amount > 10000) as amount_range,
  count(*) filter (where quantity < 1 or quantity > 100) as quantity_range,
  count(*) filter (where created_at < '2020-01-01') as created_recent,
  count(*) filter (where not regexp_full_match(email, '[^@ ]+@[^@ ]+[.][a-z]+')) as email_format,
  count(*) filter (where length(code) < 2 or length(code) > 4) as code_length,
  count(*) filter (where discount < 0 or discount > 1) as discount_range,
  date_diff('second', max(updated_at), timestamptz '2026-11-01 00:00:00+00') as fresh,
  count(*) as not_empty
from orders
"""

GENERATE = """
create macro h(i, k, n) as (hash(i, k) % (n))::bigint;
create table orders as
select
  i as id,
  h(i, 1, 500000)::bigint as customer_id,
  case when {defects} and i = 123456 then 'lost'
    else (['placed', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded'])[1 + h(i, 2, 6)]
  end as status,
  case when {defects} and i in (17, 4242) then -5
    else round(h(i, 3, 50000) / 100.0, 2) end::double as amount,
  (['EUR', 'EUR', 'USD', 'GBP'])[1 + h(i, 4, 4)] as currency,
  (['DE', 'FR', 'GB', 'NL', 'US', 'ES', 'IT', 'SE'])[1 + h(i, 5, 8)] as country,
  case when {defects} and i = 99 then 'not-an-email'
    when h(i, 6, 50) = 0 then null else 'user' || (i % 99991) || '@example.com' end as email,
  (1 + h(i, 7, 20))::integer as quantity,
  h(i, 8, 30) / 100.0 as discount,
  substr('ABCD', 1, (2 + h(i, 9, 3))::integer) as code,
  timestamp '2026-08-01' + to_seconds(h(i, 10, 90 * 86400))
    + to_microseconds(i % 1000000) as created_at,
  timestamptz '2026-08-01 00:00:00+00' + to_seconds((i * 90 * 86400 // {rows})::bigint)
    as updated_at
from range({rows}) t(i);
"""


def setup(rows: int, *, fresh: bool, defects: bool = True) -> Path:
    """The table, generated once per row count (and with or without its defects)."""
    db = OUT / f"orders-v2-{rows}{'' if defects else '-clean'}.duckdb"
    if db.exists() and not fresh:
        return db
    import duckdb

    OUT.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    started = time.perf_counter()
    print(f"generating {rows:,} rows into {db} ...", flush=True)
    with duckdb.connect(str(db)) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        # deliberate defects: a few rows break a few rules (left out with --all-pass)
        conn.execute(GENERATE.format(rows=rows, defects=str(defects).lower()))
        conn.execute("CHECKPOINT")
    print(f"  {time.perf_counter() - started:.1f}s", flush=True)
    return db


def headwater(db: str, *, scan_only: bool = False) -> dict[str, Any]:
    from headwater.contracts import Rule
    from headwater.engine.duckdb import DuckDBEngine
    from headwater.quality import evaluate, written
    from headwater.quality.rules import METADATA

    rules = [Rule.model_validate(r) for r in RULES]
    engine = DuckDBEngine(db)
    columns = [f.name for f in engine.read("select * from orders limit 0").schema]
    wall, cpu = time.perf_counter(), time.process_time()
    stats = None
    if not scan_only:
        # a model's write reports its row count; here DuckDB answers it from metadata
        rows = engine.row_counts(["orders"])["orders"]
        stats = written(engine, "orders", rules, rows, exact=True)
    results = evaluate(
        rules, "orders", engine=engine, now=NOW, columns=columns, key=["id"], stats=stats
    )
    out = _timing(wall, cpu)
    engine.close()
    out["metrics"] = {r.rule.name: r.metric for r in results}
    out["failed"] = sorted(r.rule.name for r in results if not r.passed)
    out["from_metadata"] = sorted(r.rule.name for r in results if r.sql == METADATA)
    return out


def hand(db: str) -> dict[str, Any]:
    import duckdb

    conn = duckdb.connect(db)
    conn.execute("SET TimeZone = 'UTC'")
    wall, cpu = time.perf_counter(), time.process_time()
    row = conn.sql(HAND).fetchall()[0]
    out = _timing(wall, cpu)
    names = [r["name"] for r in RULES]
    out["metrics"] = {n: float(v) for n, v in zip(names, row, strict=True)}
    conn.close()
    return out


def _timing(wall: float, cpu: float) -> dict[str, Any]:
    return {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(kind: str, db: Path, *, scan_only: bool = False) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--measure", kind, str(db), str(int(scan_only))],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument(
        "--all-pass", action="store_true", help="the table without its defects: every rule passes"
    )
    parser.add_argument(
        "--scan-only", action="store_true", help="no statistics: every rule in the scan"
    )
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        kind, db, scan_only = args.measure
        ours = kind == "headwater"
        result = headwater(db, scan_only=scan_only == "1") if ours else hand(db)
        print(json.dumps(result, default=str))
        return
    db = setup(args.rows, fresh=args.fresh, defects=not args.all_pass)
    samples: dict[str, list[dict[str, Any]]] = {"headwater": [], "hand": []}
    for i in range(args.repeat):
        order = ("headwater", "hand") if i % 2 else ("hand", "headwater")
        for kind in order:
            samples[kind].append(measure(kind, db, scan_only=args.scan_only))
        print(
            f"  round {i + 1}: "
            + ", ".join(f"{k} {v[-1]['wall_s']:.2f}s" for k, v in samples.items()),
            flush=True,
        )
    med = {
        k: {m: statistics.median(s[m] for s in v) for m in ("wall_s", "cpu_s", "peak_rss_mb")}
        for k, v in samples.items()
    }
    ours, theirs = samples["headwater"][0]["metrics"], samples["hand"][0]["metrics"]
    mismatched = [n for n in theirs if abs((ours[n] or 0) - theirs[n]) > 1e-9]
    result = {
        "rows": args.rows,
        "rules": len(RULES),
        "repeat": args.repeat,
        "headwater": med["headwater"],
        "hand_written": med["hand"],
        "ratio": med["headwater"]["wall_s"] / med["hand"]["wall_s"],
        "cpu_ratio": med["headwater"]["cpu_s"] / med["hand"]["cpu_s"],
        "target": TARGET,
        "failed_rules": samples["headwater"][0]["failed"],
        "from_metadata": samples["headwater"][0]["from_metadata"],
        "scan_only": args.scan_only,
        "metrics_match": not mismatched,
        "mismatched": mismatched,
        "samples": samples,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    suffix = ("-all-pass" if args.all_pass else "") + ("-scan-only" if args.scan_only else "")
    written = OUT / f"result{suffix}.json"
    written.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\n{len(RULES)} rules over {args.rows:,} rows, median of {args.repeat}")
    print(f"{'':16}{'wall s':>9}{'cpu s':>9}{'peak MB':>9}")
    for label, key in (("headwater", "headwater"), ("hand-written", "hand_written")):
        r = result[key]
        print(f"{label:16}{r['wall_s']:9.3f}{r['cpu_s']:9.3f}{r['peak_rss_mb']:9.0f}")
    print(
        f"ratio {result['ratio']:.2f}x (target <= {TARGET}x), cpu ratio "
        f"{result['cpu_ratio']:.2f}x; failing rules: "
        f"{', '.join(result['failed_rules']) or 'none'}; "
        f"answered from statistics: {len(result['from_metadata'])}; "
        f"metrics match: {result['metrics_match']} {mismatched or ''}"
    )
    print(f"wrote {written}")


if __name__ == "__main__":
    main()
