"""Profile one headwater build and one no-op re-run of a benchmark project, every thread included.

    hotspots.py PROJECT OUT_DIR

cProfile sees only the thread that enables it, so each pool thread gets its own profiler
(`threading.setprofile`) and the stats are merged. Writes OUT_DIR/profile-{build,noop}.pstats
and prints the functions with the most own time, outside DuckDB's execution first.
"""

from __future__ import annotations

import cProfile
import pstats
import shutil
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from headwater.orchestrate import Stores, run
from headwater.project import load_project

TOP = 25


def profiled(project_dir: Path) -> pstats.Stats:
    profiles: list[cProfile.Profile] = []

    def start(*_: Any) -> None:
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()

    threading.setprofile(start)
    main = cProfile.Profile()
    main.enable()
    project = load_project(project_dir)
    stores = Stores.open(project)
    run(project, stores, now=datetime.now(UTC), stages=("build",), command="build")
    stores.close()
    main.disable()
    threading.setprofile(None)  # type: ignore[arg-type]
    stats = pstats.Stats(main)
    for profile in profiles:
        profile.disable()
        stats.add(profile)
    return stats


def report(stats: pstats.Stats, title: str) -> None:
    print(f"\n== {title}: top {TOP} by own time (tottime), then by cumulative time in headwater")
    stats.sort_stats("tottime").print_stats(TOP)
    stats.sort_stats("cumulative").print_stats(r"headwater/", TOP)


if __name__ == "__main__":
    source, out = Path(sys.argv[1]), Path(sys.argv[2])
    copy = out / "work" / "profiled"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(source, copy)
    for label in ("build", "noop"):
        result = profiled(copy)
        result.dump_stats(out / f"profile-{label}.pstats")
        report(result, label)
