"""Column lineage benchmark: tracing the example project cold, then warm (every model known).

    .venv/bin/python bench/lineage/run.py [--repeat N]

Target: cold under 1 s, warm under 50 ms (the warm trace runs on every `headwater lineage`).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from headwater.cli.scaffold import scaffold
from headwater.models.lineage import trace
from headwater.orchestrate.lineage import raw_schema
from headwater.project import load_project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timings per case (5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "shop"
        scaffold(root, events=1_000, now=datetime.now(UTC))
        project = load_project(root)
        schema = raw_schema(project)
        cold, warm = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            lineage = trace(project.models, schema, order=project.dag.order)
            cold.append(time.perf_counter() - started)
            started = time.perf_counter()
            trace(project.models, schema, order=project.dag.order, known=lineage.models)
            warm.append(time.perf_counter() - started)
    print(f"{len(project.models)} models, median of {args.repeat}")
    print(f"cold trace  {statistics.median(cold) * 1000:8.1f} ms   target < 1000 ms")
    print(f"warm trace  {statistics.median(warm) * 1000:8.1f} ms   target < 50 ms")


if __name__ == "__main__":
    main()
