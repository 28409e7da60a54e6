"""Transform benchmark: headwater's full build of an N-model DAG vs the same SQL run directly.

    .venv/bin/python bench/transform/run.py [--models 100] [--events 1000000] [--repeat 3]

Scaffolds the example project once (cached in out/work/), ingests it, adds N generated models
in the `bench` zone, then times, each in a fresh process and `--repeat` times (median):
headwater's build from a fresh post-ingest state, a no-op re-run, and the same statements on
a copy of the post-ingest warehouse in plain DuckDB, sequentially and on the same thread pool.
The ratio is headwater's wall time over the faster of the two plain-DuckDB runs
(DESIGN.md §9: within 1.15x; no-op re-run and project load under 0.5 s at 500 models).
Then the command line as a user types it, interpreter start included: `headwater --help`
(issue #14: <= 0.25 s) and `headwater build` with nothing to do (<= 0.35 s), answered from
the last build's stamp and, for reference, decided by a whole build.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import direct
import duckdb
import generate
import sqlglot

from headwater.cli import scaffold as scaffold_module
from headwater.cli.scaffold import TEMPLATE, scaffold
from headwater.orchestrate import Stores, run
from headwater.project import load_project

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # bench/machine.py
from machine import describe  # noqa: E402

MEASURE = HERE / "measure.py"
TARGETS = {"ratio": 1.15, "noop_rerun_s": 0.5, "project_load_s": 0.5}
DIRECT_MODES = ("sequential", "parallel")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    work = args.out.parent / "work"
    base = prepare_base(work / f"shop-{args.events}", events=args.events, fresh=args.fresh)
    project = work / "project"
    models = prepare_project(base, project, count=args.models, seed=args.seed)
    steps = direct.plan(project)
    plan_file = work / "plan.json"
    plan_file.write_text(json.dumps([asdict(s) for s in steps]), encoding="utf-8")
    # the parse cache trusts a file's stat only once the file is 2 s old (git's "racily clean"
    # rule): load once after that, so every copy starts as a user's project does after its
    # first load, each file's digest known by its stat (not read and hashed again)
    time.sleep(2.1)
    threads = load_project(project).settings.defaults.threads or 4
    print(
        f"{len(models)} generated + {len(steps) - len(models)} clean models, "
        f"{args.events:,} events, {threads} threads, {args.repeat} repeats",
        flush=True,
    )
    samples: list[dict[str, Any]] = []
    for i in range(args.repeat):
        samples.append(
            one_round(project, work, plan_file, threads=threads, total=len(steps), index=i)
        )
        print(
            f"  round {i + 1}: "
            + ", ".join(
                f"{k} {v['wall_s']:.2f}s" for k, v in samples[-1].items() if k != "rows_match"
            ),
            flush=True,
        )
    cli = cli_figures(work / "headwater", repeat=max(args.repeat, 5))
    result = cli | summarize(
        samples,
        models=len(models),
        total=len(steps),
        events=args.events,
        threads=threads,
        repeat=args.repeat,
        seed=args.seed,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_table(result)
    print(f"wrote {args.out}")
    if args.profile:
        subprocess.run(
            [sys.executable, str(HERE / "hotspots.py"), str(project), str(args.out.parent)],
            check=True,
        )
    return result


def cli_figures(project: Path, *, repeat: int) -> dict[str, Any]:
    """The command as a user types it, interpreter start included (medians of `repeat`):
    `headwater --help`, and `headwater build` on the built project with nothing to do —
    answered from the last build's stamp, and decided by a whole build (stamp removed)."""
    headwater = Path(sys.executable).with_name("headwater")

    def timed(*args: str, before: Any = None) -> tuple[float, float]:
        walls, cpus = [], []
        for _ in range(repeat):
            if before is not None:
                before()
            start, children = time.perf_counter(), _children_cpu()
            subprocess.run([str(headwater), *args], capture_output=True, check=True)
            walls.append(time.perf_counter() - start)
            cpus.append(_children_cpu() - children)
        return statistics.median(walls), statistics.median(cpus)

    stamp = project / ".headwater" / "cache" / "uptodate.json"
    subprocess.run([str(headwater), "build", "-p", str(project)], capture_output=True, check=True)
    help_s, help_cpu = timed("--help")
    answered_s, answered_cpu = timed("build", "-p", str(project))
    whole_s, whole_cpu = timed(
        "build", "-p", str(project), before=lambda: stamp.unlink(missing_ok=True)
    )
    return {
        "cli_help_s": help_s,
        "cli_help_cpu_s": help_cpu,
        "cli_noop_build_s": answered_s,
        "cli_noop_build_cpu_s": answered_cpu,
        "cli_noop_whole_build_s": whole_s,
        "cli_noop_whole_build_cpu_s": whole_cpu,
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def prepare_base(base: Path, *, events: int, fresh: bool) -> Path:
    """The example project with `events` events, ingested once; its own marts removed.

    Reused while the example and its generator are unchanged; `--fresh` forces a new one.
    """
    marker = base / ".bench-setup.json"
    example = example_hash()
    setup = json.loads(marker.read_text(encoding="utf-8")) if marker.exists() else {}
    if not fresh and setup.get("example") == example:
        return base
    shutil.rmtree(base, ignore_errors=True)
    started = time.perf_counter()
    print(f"scaffolding the example with {events:,} events into {base} ...", flush=True)
    scaffold(base, events=events, now=datetime.now(UTC))
    # the marts carry audit rules the plain-DuckDB baseline would not run; drop them
    shutil.rmtree(base / "models" / "marts")
    scaffolded = time.perf_counter()
    project = load_project(base)
    stores = Stores.open(project)
    try:
        report = run(project, stores, now=datetime.now(UTC), stages=("ingest",), command="ingest")
    finally:
        stores.close()
    if report.ingest_errors:
        raise SystemExit(f"ingest failed: {report.ingest_errors}")
    setup = {
        "events": events,
        "example": example,
        "scaffold_s": scaffolded - started,
        "ingest_s": time.perf_counter() - scaffolded,
    }
    marker.write_text(json.dumps(setup), encoding="utf-8")
    print(f"  scaffold {setup['scaffold_s']:.1f}s, ingest {setup['ingest_s']:.1f}s", flush=True)
    return base


def prepare_project(
    base: Path, project: Path, *, count: int, seed: int
) -> list[generate.GeneratedModel]:
    """A copy of the post-ingest base (without its source files) plus the generated models."""
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(base, project, ignore=lambda d, _: {"data"} if Path(d) == base else set())
    models = generate.generate(count, seed=seed)
    generate.write(models, project)
    return models


def one_round(
    project: Path, work: Path, plan_file: Path, *, threads: int, total: int, index: int
) -> dict[str, Any]:
    """One timing of each contender, each from its own fresh copy of the post-ingest state.

    Odd rounds run headwater first, so slow drift of the machine does not favour one side.
    """
    out: dict[str, Any] = {}

    def plain() -> None:
        for mode in DIRECT_MODES:
            db = work / "direct.duckdb"
            fresh_copy(project / ".headwater" / "warehouse.duckdb", db)
            out[f"duckdb_{mode}"] = measure(f"duckdb-{mode}", db, plan_file, threads)

    def ours() -> None:
        copy = work / "headwater"
        fresh_copy(project, copy)
        out["headwater_build"] = _expect(measure("headwater-build", copy), "built", total)
        out["headwater_noop"] = _expect(measure("headwater-noop", copy), "up_to_date", total)

    for job in (ours, plain) if index % 2 else (plain, ours):
        job()
    out["rows_match"] = all(
        out["headwater_build"]["rows"] == out[f"duckdb_{m}"]["rows"] for m in DIRECT_MODES
    )
    return out


def measure(kind: str, *args: Any) -> dict[str, Any]:
    """Run one timed job of measure.py in a fresh interpreter; its last line is the result."""
    done = subprocess.run(
        [sys.executable, str(MEASURE), kind, *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def summarize(
    samples: list[dict[str, Any]],
    *,
    models: int,
    total: int,
    events: int,
    threads: int,
    repeat: int,
    seed: int,
) -> dict[str, Any]:
    def med(job: str, key: str = "wall_s") -> float:
        return statistics.median(s[job][key] for s in samples)

    def phase(job: str, name: str, key: str = "phases") -> float:
        return statistics.median(s[job][key][name] for s in samples)

    fastest = min(DIRECT_MODES, key=lambda m: med(f"duckdb_{m}"))
    baseline, baseline_cpu = med(f"duckdb_{fastest}"), med(f"duckdb_{fastest}", "cpu_s")
    build, build_cpu = med("headwater_build"), med("headwater_build", "cpu_s")
    return {
        "models": models,
        "models_total": total,
        "events": events,
        "threads": threads,
        "repeat": repeat,
        "seed": seed,
        "headwater_build_s": build,
        "headwater_build_cpu_s": build_cpu,
        "duckdb_direct_s": baseline,
        "duckdb_direct_cpu_s": baseline_cpu,
        "duckdb_direct_mode": fastest,
        "ratio": build / baseline,
        "cpu_ratio": build_cpu / baseline_cpu,
        "overhead_ms_per_model": 1000 * (build - baseline) / total,
        # how light the DAG is: each model's work, run alone in plain DuckDB
        "duckdb_ms_per_model": 1000 * med("duckdb_sequential") / total,
        "overhead_cpu_ms_per_model": 1000 * (build_cpu - baseline_cpu) / total,
        "noop_rerun_s": med("headwater_noop"),
        "noop_rerun_cpu_s": med("headwater_noop", "cpu_s"),
        "project_load_s": phase("headwater_noop", "load"),
        "project_load_cpu_s": phase("headwater_noop", "load", "phases_cpu"),
        "project_load_warm_s": med("headwater_noop", "load_warm_s"),
        **{f"duckdb_{m}_s": med(f"duckdb_{m}") for m in DIRECT_MODES},
        **{f"duckdb_{m}_cpu_s": med(f"duckdb_{m}", "cpu_s") for m in DIRECT_MODES},
        "headwater_build_phases_s": {
            p: phase("headwater_build", p) for p in samples[0]["headwater_build"]["phases"]
        },
        # the run's fixed steps (see RunReport.timings), of a build and of a no-op
        "headwater_build_steps_s": {
            p: phase("headwater_build", p, "steps") for p in samples[0]["headwater_build"]["steps"]
        },
        "headwater_noop_steps_s": {
            p: phase("headwater_noop", p, "steps") for p in samples[0]["headwater_noop"]["steps"]
        },
        "rows_match": all(s["rows_match"] for s in samples),
        "targets": TARGETS,
        "machine": machine(),
        "samples": [
            {
                job: {k: v for k, v in r.items() if k not in ("rows", "errors")}
                for job, r in s.items()
                if job != "rows_match"
            }
            for s in samples
        ],
    }


def print_table(r: dict[str, Any]) -> None:
    rows = [
        ("headwater build", r["headwater_build_s"], r["headwater_build_cpu_s"], ""),
        ("duckdb direct, sequential", r["duckdb_sequential_s"], r["duckdb_sequential_cpu_s"], ""),
        ("duckdb direct, parallel", r["duckdb_parallel_s"], r["duckdb_parallel_cpu_s"], ""),
        ("no-op re-run", r["noop_rerun_s"], r["noop_rerun_cpu_s"], "< 0.5 s"),
        ("project load", r["project_load_s"], r["project_load_cpu_s"], "< 0.5 s"),
        ("cli: headwater --help", r["cli_help_s"], r["cli_help_cpu_s"], "<= 0.25 s"),
        ("cli: build, nothing to do", r["cli_noop_build_s"], r["cli_noop_build_cpu_s"], "<= 0.35"),
        (
            "  ... decided by building",
            r["cli_noop_whole_build_s"],
            r["cli_noop_whole_build_cpu_s"],
            "",
        ),
    ]
    print(
        f"\n{r['models']} generated models ({r['models_total']} built), {r['events']:,} "
        f"events, median of {r['repeat']}; a model takes {r['duckdb_ms_per_model']:.0f} ms "
        "in plain DuckDB on average"
    )
    print(f"{'':28}{'wall s':>9}{'cpu s':>9}  target")
    for label, wall, cpu, target in rows:
        print(f"{label:28}{wall:9.3f}{cpu:9.3f}  {target}")
    phases = ", ".join(f"{k} {v:.3f}" for k, v in r["headwater_build_phases_s"].items())
    print(f"headwater build phases (s): {phases}")
    for job in ("build", "noop"):
        steps = ", ".join(f"{k} {v:.3f}" for k, v in r[f"headwater_{job}_steps_s"].items())
        print(f"  steps of the run, {job} (s): {steps}")
    print(
        f"ratio (wall, vs {r['duckdb_direct_mode']}) {r['ratio']:.2f}x  target <= 1.15x;  "
        f"cpu ratio {r['cpu_ratio']:.2f}x;  overhead {r['overhead_ms_per_model']:.1f} ms/model"
        f";  rows match: {r['rows_match']}"
    )


def _expect(result: dict[str, Any], status: str, total: int) -> dict[str, Any]:
    if result["statuses"] != {status: total}:
        raise SystemExit(
            f"expected {total} models {status}, got {result['statuses']}: {result['errors']}"
        )
    return result


def example_hash() -> str:
    """Hash of the example project's files and of the code that scaffolds it."""
    files = sorted(p for p in TEMPLATE.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for path in [*files, Path(scaffold_module.__file__)]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def fresh_copy(source: Path, target: Path) -> None:
    if target.is_dir():
        shutil.rmtree(target)
    for path in (target, target.with_name(target.name + ".wal")):
        path.unlink(missing_ok=True)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)


def machine() -> dict[str, Any]:
    return describe(duckdb=duckdb.__version__, sqlglot=sqlglot.__version__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=100, help="generated models (100)")
    parser.add_argument("--events", type=int, default=1_000_000, help="example events (1M)")
    parser.add_argument("--repeat", type=int, default=3, help="timings per contender (3)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated DAG")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "result.json")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="scaffold and ingest again instead of reusing out/work/",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="afterwards, profile one headwater build and no-op (cProfile)",
    )
    return parser


if __name__ == "__main__":
    main()
