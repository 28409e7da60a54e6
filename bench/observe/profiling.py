"""Profile benchmark: what profiling every column adds to the rules' one scan, on 10M rows.

    .venv/bin/python bench/observe/profiling.py [--rows 10000000] [--repeat 9] [--cold] [--fresh]

Uses bench/quality's table (12 columns, generated once into bench/quality/out/) and its 20
rules. Times `quality.evaluate` as a model audit runs it — the statistics the write knows,
then the scan of the rules they do not answer — without and with the profile of every column
(`evaluate_profiled`: nulls, distinct, bounds, mean in that same scan; quantiles and top
values from a sample), `--repeat` times each, alternating, medians. By default in one
process, as a run audits what it just wrote: the table read once before the clock (its
blocks in DuckDB's buffers, as after the write). `--cold`: each measurement in a fresh
process instead (the first read of the table on the clock; noisier: on this VM the page
faults of the distinct counts' hash tables cost 0.1 to 1 s of system time, at random).
Reports wall, CPU and user CPU seconds and their ratios (target: profiles add at most 10%,
issue #20).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGET = 1.10
METRICS = ("wall_s", "cpu_s", "user_s")


def _quality() -> Any:
    """bench/quality/run.py as a module: its table and rules."""
    spec = importlib.util.spec_from_file_location("quality_bench", HERE.parent / "quality/run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one(engine: Any, profiled: bool) -> dict[str, Any]:
    """One audit of the bench's table on `engine`, with or without the profile: its times."""
    from headwater.contracts import Rule
    from headwater.quality import written
    from headwater.quality.rules import evaluate_profiled

    bench = _quality()
    rules = [Rule.model_validate(r) for r in bench.RULES]
    types = engine.columns("orders")
    wall, cpu = time.perf_counter(), time.process_time()
    user = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    rows = engine.row_counts(["orders"])["orders"]
    # what the write knows of the table: DuckDB's statistics of its columns (for the profile
    # too: which hold no NULL, their bounds, their distinct estimate)
    stats = written(engine, "orders", rules, rows, exact=True, profiled=types if profiled else ())
    results, profile = evaluate_profiled(
        rules,
        "orders",
        engine=engine,
        now=bench.NOW,
        columns=list(types),
        key=["id"],
        stats=stats,
        profile=types if profiled else None,
    )
    return {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "user_s": resource.getrusage(resource.RUSAGE_SELF).ru_utime - user,
        "rules": len(results),
        "columns": 0 if profile is None else len(profile.columns),
    }


def _engine(db: str, *, warm: bool) -> Any:
    from headwater.engine.duckdb import DuckDBEngine

    engine = DuckDBEngine(db)
    if warm:  # every column of the table read, as its write just did
        engine.rows("SELECT max(length(CAST(COLUMNS(*) AS VARCHAR))) FROM orders")
    return engine


def measure(db: Path, profiled: bool) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--measure", str(db), str(int(profiled))],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--fresh", action="store_true", help="generate the table again")
    parser.add_argument("--cold", action="store_true", help="each audit in a fresh process")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        engine = _engine(args.measure[0], warm=False)
        print(json.dumps(one(engine, args.measure[1] == "1")))
        return
    db = _quality().setup(args.rows, fresh=args.fresh)
    warm = None if args.cold else _engine(str(db), warm=True)
    if warm is not None:  # a round of each, untimed: the engine's memory as a run's would be
        one(warm, True), one(warm, False)
    runs: dict[str, list[dict[str, Any]]] = {"rules": [], "rules+profile": []}
    for i in range(args.repeat):
        for kind in ("rules", "rules+profile") if i % 2 else ("rules+profile", "rules"):
            profiled = kind == "rules+profile"
            runs[kind].append(measure(db, profiled) if warm is None else one(warm, profiled))
        print(
            f"  round {i + 1}: "
            + ", ".join(f"{k} {v[-1]['wall_s']:.2f}s" for k, v in runs.items()),
            flush=True,
        )
    how = "each in a fresh process" if args.cold else "in one process, warm"
    print(f"\n{args.rows:,} rows, {runs['rules+profile'][0]['columns']} columns profiled, {how}")
    print(f"{'':26}{'wall s':>10}{'cpu s':>10}{'user s':>10}")
    ratios = {}
    # noise on this VM only adds time (page faults, neighbours): the fastest of the rounds is
    # the steadiest figure, the median the one a run most often sees
    for label, pick in (("fastest", min), ("median", statistics.median)):
        got = {k: {m: pick(r[m] for r in v) for m in METRICS} for k, v in runs.items()}
        for kind, m in got.items():
            print(f"{kind + ' (' + label + ')':26}" + "".join(f"{m[x]:>10.3f}" for x in METRICS))
        ratios[label] = {m: got["rules+profile"][m] / got["rules"][m] for m in METRICS}
    for label, r in ratios.items():
        verdict = "met" if max(r["wall_s"], r["cpu_s"]) <= TARGET else "MISSED"
        print(
            f"ratio ({label}): wall {r['wall_s']:.2f}x, cpu {r['cpu_s']:.2f}x, "
            f"user cpu {r['user_s']:.2f}x (target <= {TARGET:.2f}x: {verdict})"
        )


if __name__ == "__main__":
    main()
