"""Profile benchmark: what profiling every column adds to the rules' one scan, on 10M rows.

    .venv/bin/python bench/observe/profiling.py [--rows 10000000] [--repeat 3] [--fresh]

Uses bench/quality's table (12 columns, generated once into bench/quality/out/) and its 20
rules. Times, each in a fresh process and `--repeat` times (median), `quality.evaluate` as a
model audit runs it — the statistics the write knows, then one scan of the rules they do not
answer — without and with the profile of every column (`evaluate_profiled`: nulls, distinct,
bounds, mean, sampled quantiles and top values, in that same scan). Reports wall and CPU
seconds and the ratio (target: profiles add at most 10%, issue #20).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGET = 1.10


def _quality() -> Any:
    """bench/quality/run.py as a module: its table and rules."""
    spec = importlib.util.spec_from_file_location("quality_bench", HERE.parent / "quality/run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one(db: str, profiled: bool) -> dict[str, Any]:
    from headwater.contracts import Rule
    from headwater.engine.duckdb import DuckDBEngine
    from headwater.quality import written
    from headwater.quality.rules import evaluate_profiled

    bench = _quality()
    rules = [Rule.model_validate(r) for r in bench.RULES]
    engine = DuckDBEngine(db)
    types = engine.columns("orders")
    wall, cpu = time.perf_counter(), time.process_time()
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
    out = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
    engine.close()
    out["rules"] = len(results)
    out["columns"] = 0 if profile is None else len(profile.columns)
    return out


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
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(one(args.measure[0], args.measure[1] == "1")))
        return
    db = _quality().setup(args.rows, fresh=args.fresh)
    runs: dict[str, list[dict[str, Any]]] = {"rules": [], "rules+profile": []}
    for i in range(args.repeat):
        for kind in ("rules", "rules+profile") if i % 2 else ("rules+profile", "rules"):
            runs[kind].append(measure(db, kind == "rules+profile"))
        print(
            f"  round {i + 1}: "
            + ", ".join(f"{k} {v[-1]['wall_s']:.2f}s" for k, v in runs.items()),
            flush=True,
        )
    med = {
        k: {m: statistics.median(r[m] for r in v) for m in ("wall_s", "cpu_s")}
        for k, v in runs.items()
    }
    base, more = med["rules"], med["rules+profile"]
    print(f"\n{args.rows:,} rows, {runs['rules+profile'][0]['columns']} columns profiled")
    print(f"{'':16}{'wall s':>10}{'cpu s':>10}")
    for kind, m in med.items():
        print(f"{kind:16}{m['wall_s']:>10.3f}{m['cpu_s']:>10.3f}")
    wall, cpu = more["wall_s"] / base["wall_s"], more["cpu_s"] / base["cpu_s"]
    verdict = "met" if wall <= TARGET else "MISSED"
    print(f"ratio: wall {wall:.2f}x, cpu {cpu:.2f}x (target <= {TARGET:.2f}x: {verdict})")


if __name__ == "__main__":
    main()
