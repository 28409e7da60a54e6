"""Ingest benchmark: N nested JSON records into raw, headwater vs the physical limit.

    .venv/bin/python bench/ingest/run.py [--records 1000000] [--rounds 3] [--case all]

Generates (once, cached in out/data-<N>/) N nested orders as JSON-lines files, then times,
each in a fresh process (measure.py; imports before the clock) and `--rounds` times (median),
alternating which side goes first:

- jsonl: headwater's `ingest` of the files into `raw.orders` (an Iceberg table) vs DuckDB's
  own `read_json` of the same files with the declared types, written to Parquet; DuckDB's
  `read_json` into an in-memory table is a second reference line;
- jsonl-sparse: the same, on the same records with null-valued keys left out (headwater's
  read_json tier instead of its exact tier);
- http: the same records from a paginated local API (server.py, its own process, started once
  per case) — headwater's `ingest` with an http connector vs a plain httpx loop writing Arrow.

Reports rows/s, wall and CPU seconds, peak RSS and the ratios headwater / baseline (target:
within 1.5x), and checks every output against the generator's checksums.
"""

from __future__ import annotations

import argparse
import json
import math
import pstats
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import data
import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # bench/machine.py
from machine import (  # noqa: E402
    add_disturbance_options,
    describe,
    machine_cpu,
    our_cpu,
    wait_idle,
)

OUT = HERE / "out"
MEASURE = HERE / "measure.py"
SERVER = HERE / "server.py"
RESULTS = OUT / "results.json"
TARGET = 1.5


@dataclass(frozen=True)
class Case:
    name: str
    baseline: str
    headwater: str
    references: tuple[str, ...] = ()

    @property
    def contenders(self) -> tuple[str, ...]:
        return (self.baseline, *self.references, self.headwater)


CASES = {
    "jsonl": Case("jsonl", "duckdb-parquet", "headwater-jsonl", ("duckdb-table",)),
    "jsonl-sparse": Case(
        "jsonl-sparse", "duckdb-parquet-sparse", "headwater-jsonl-sparse", ("duckdb-table-sparse",)
    ),
    "http": Case("http", "httpx-arrow", "headwater-http"),
}
LABELS = {
    "duckdb-parquet": "duckdb read_json -> parquet",
    "duckdb-table": "duckdb read_json -> table",
    "headwater-jsonl": "headwater ingest (files)",
    "duckdb-parquet-sparse": "duckdb read_json -> parquet",
    "duckdb-table-sparse": "duckdb read_json -> table",
    "headwater-jsonl-sparse": "headwater ingest (files)",
    "httpx-arrow": "httpx loop -> arrow -> parquet",
    "headwater-http": "headwater ingest (http)",
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    folder = OUT / f"data-{args.records}"
    if args.fresh:
        shutil.rmtree(folder, ignore_errors=True)
    manifest = data.prepare(folder, records=args.records, files=args.files)
    names = list(CASES) if args.case == "all" else [args.case]
    sparse = ""
    if "jsonl-sparse" in names:
        sparse = f" ({manifest['sparse_bytes'] / 1e6:.0f} MB without nulls)"
    print(
        f"{args.records:,} records, {manifest['bytes'] / 1e6:.0f} MB of JSON lines{sparse}",
        flush=True,
    )
    setup = {
        "records": args.records,
        "rounds": args.rounds,
        "files": args.files,
        "data_bytes": manifest["bytes"],
        "machine": machine(),
    }
    ran: dict[str, Any] = {}
    try:
        for name in names:
            ran[name] = setup | run_case(CASES[name], folder, manifest, args)
            if name == "jsonl-sparse":
                ran[name]["data_bytes"] = manifest["sparse_bytes"]
            if name == "http":
                ran[name]["page_size"] = args.page_size
    finally:
        if not args.keep:
            shutil.rmtree(OUT / "work", ignore_errors=True)
    save(ran)
    print_table(ran)
    print(f"wrote {RESULTS}")
    return ran


def save(ran: dict[str, Any]) -> None:
    """Update RESULTS with the cases just run; the latest result of the others stays."""
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        cases = json.loads(RESULTS.read_text(encoding="utf-8"))["cases"]
    except (OSError, ValueError, KeyError):
        cases = {}
    results = {"target": TARGET, "cases": cases | ran}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def run_case(
    case: Case, folder: Path, manifest: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    print(f"\n{case.name}:", flush=True)
    samples: dict[str, list[dict[str, Any]]] = {k: [] for k in case.contenders}
    errors: dict[str, str] = {}
    with _source(case, folder, page_size=args.page_size) as source:
        for i in range(args.rounds):
            order = case.contenders if i % 2 == 0 else case.contenders[::-1]
            for kind in (k for k in order if k not in errors):
                try:
                    samples[kind].append(_undisturbed(kind, source, case, manifest, args))
                except RuntimeError as err:
                    errors[kind] = str(err)
                    print(f"  {kind} failed: {str(err).splitlines()[-1]}", flush=True)
            print(
                f"  round {i + 1}: "
                + ", ".join(
                    f"{k} {v[-1]['wall_s']:.2f}s (others {v[-1]['other_cpu_s']:.1f} cpu s)"
                    for k, v in samples.items()
                    if v
                ),
                flush=True,
            )
        if args.profile:
            profile(case, source)
    return summarize(case, samples, errors, records=manifest["records"])


def _undisturbed(
    kind: str, source: str, case: Case, manifest: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """A timing during which other processes used at most `--max-other-cpu` CPU seconds
    (the API server's excluded), once the machine is idle; at most `--retries` more tries."""
    for attempt in range(1 + args.retries):
        wait_idle()
        busy, ours = machine_cpu(), our_cpu()
        result = _timed(kind, source, case, manifest)
        others = (machine_cpu() - busy) - (our_cpu() - ours) - result.get("server_cpu_s", 0)
        result["other_cpu_s"] = max(0.0, others)
        if result["other_cpu_s"] <= args.max_other_cpu or attempt == args.retries:
            break
        print(f"    {kind} disturbed (others used {others:.1f} CPU s): again", flush=True)
    return result


def _timed(kind: str, source: str, case: Case, manifest: dict[str, Any]) -> dict[str, Any]:
    """One contender in a fresh process on a fresh work folder; its output checked."""
    work = OUT / "work" / case.name / kind
    shutil.rmtree(work, ignore_errors=True)
    server_before = _server_cpu(source) if case.name == "http" else None
    done = subprocess.run(
        [sys.executable, str(MEASURE), kind, source, str(work)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip() or f"exit status {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if server_before is not None:
        result["server_cpu_s"] = _server_cpu(source) - server_before
    mismatched = _mismatches(result["checks"], manifest["checks"])
    if mismatched or result.get("quarantined"):
        raise RuntimeError(
            f"{kind}: output differs from the source: {mismatched}; "
            f"quarantined {result.get('quarantined')} {result.get('reasons')}"
        )
    return result


def profile(case: Case, source: str, *, top: int = 25) -> None:
    """One headwater run under cProfile, saved and summarized."""
    stats = OUT / f"profile-{case.name}.pstats"
    work = OUT / "work" / case.name / "profile"
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(
        [sys.executable, str(MEASURE), case.headwater, source, str(work), str(stats)],
        capture_output=True,
        check=True,
    )
    print(f"  profile of {case.headwater} in {stats} (main thread, imports excluded):")
    for order in ("cumulative", "tottime"):
        pstats.Stats(str(stats)).sort_stats(order).print_stats(top)


def _mismatches(got: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    def same(key: str) -> bool:
        if key == "amount_sum":  # summed in a different order
            return math.isclose(got[key], expected[key], rel_tol=1e-9)
        return bool(got.get(key) == expected[key])

    return {k: (got.get(k), v) for k, v in expected.items() if not same(k)}


@contextmanager
def _source(case: Case, folder: Path, *, page_size: int) -> Iterator[str]:
    """The data folder for jsonl; for http, a server process over it, stopped afterwards."""
    if case.name != "http":
        yield str(folder)
        return
    server = subprocess.Popen(
        [sys.executable, str(SERVER), str(folder), "--page-size", str(page_size)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline() if server.stdout else ""
        if not line.startswith("listening on "):
            raise SystemExit(f"the API server did not start (exit status {server.poll()})")
        url = line.removeprefix("listening on ").strip()
        _server_cpu(url)  # answers: ready
        print(f"  API server (pid {server.pid}) at {url}", flush=True)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _server_cpu(url: str) -> float:
    for _ in range(50):
        try:
            return float(httpx.get(f"{url}/stats", timeout=5).json()["cpu_s"])
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"the API server at {url} does not answer")


def summarize(
    case: Case,
    samples: dict[str, list[dict[str, Any]]],
    errors: dict[str, str],
    *,
    records: int,
) -> dict[str, Any]:
    def med(kind: str, key: str) -> float | None:
        values = [s[key] for s in samples[kind] if key in s]
        return statistics.median(values) if values else None

    contenders: dict[str, Any] = {}
    for kind, runs in samples.items():
        if not runs:
            continue
        wall = med(kind, "wall_s")
        contenders[kind] = {
            "wall_s": wall,
            "cpu_s": med(kind, "cpu_s"),
            "peak_rss_mb": med(kind, "peak_rss_mb"),
            "rows_per_s": records / wall if wall else None,
            "server_cpu_s": med(kind, "server_cpu_s"),
            "other_cpu_s": [round(s["other_cpu_s"], 2) for s in runs],
        }
        if "direct" in runs[-1]:  # a headwater contender: the lanes its files took
            contenders[kind] |= _lanes(runs)
    base, ours = contenders.get(case.baseline), contenders.get(case.headwater)
    return {
        "baseline": case.baseline,
        "headwater": case.headwater,
        "contenders": contenders,
        "ratio": ours["wall_s"] / base["wall_s"] if base and ours else None,
        "cpu_ratio": ours["cpu_s"] / base["cpu_s"] if base and ours else None,
        "errors": errors,
        "samples": samples,
    }


def _lanes(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The direct lane's files per tier and the careful lane's file count: one value when
    every run agrees, else one per run."""
    out: dict[str, Any] = {}
    for key in ("direct", "careful"):
        values = [s.get(key) for s in runs]
        out[key] = values[0] if all(v == values[0] for v in values) else values
    return out


def lanes_text(contender: dict[str, Any]) -> str:
    """The lanes a headwater contender's files took, as `  direct: read_json 10, careful 0`;
    empty for the other contenders, and when no file took either lane (http pages)."""
    if "direct" not in contender:
        return ""
    direct, careful = contender["direct"], contender["careful"]
    if isinstance(direct, list) or isinstance(careful, list):
        return f"  direct: {direct}, careful: {careful} (differs by run)"
    if not direct and not careful:
        return ""
    tiers = ", ".join(f"{tier} {n}" for tier, n in direct.items()) or "none"
    return f"  direct: {tiers}, careful {careful}"


def print_table(ran: dict[str, Any]) -> None:
    head = f"{'':34}{'wall s':>8}{'cpu s':>8}{'rows/s':>11}{'peak MB':>9}{'wall x':>8}{'cpu x':>7}"
    for name, case in ran.items():
        print(f"\n{name}: {case['records']:,} nested records, median of {case['rounds']}\n{head}")
        base = case["contenders"].get(case["baseline"])
        for kind in CASES[name].contenders:
            c = case["contenders"].get(kind)
            if c is None:
                print(f"{LABELS[kind]:34}  failed: {case['errors'][kind].splitlines()[-1][:80]}")
                continue
            ratios = (
                f"{c['wall_s'] / base['wall_s']:8.2f}{c['cpu_s'] / base['cpu_s']:7.2f}"
                if base
                else ""
            )
            print(
                f"{LABELS[kind]:34}{c['wall_s']:8.2f}{c['cpu_s']:8.2f}{c['rows_per_s']:11,.0f}"
                f"{c['peak_rss_mb']:9.0f}{ratios}{lanes_text(c)}"
            )
        if case["ratio"] is not None:
            print(
                f"ratio {case['ratio']:.2f}x (target <= {TARGET}x), cpu ratio "
                f"{case['cpu_ratio']:.2f}x, vs {LABELS[case['baseline']]}"
            )
        served = {k: c["server_cpu_s"] for k, c in case["contenders"].items() if c["server_cpu_s"]}
        if served:
            print(
                "API server CPU s (not in the above): "
                + ", ".join(f"{k} {v:.2f}" for k, v in served.items())
            )


def machine() -> dict[str, Any]:
    import duckdb
    import pyarrow

    return describe(duckdb=duckdb.__version__, pyarrow=pyarrow.__version__, httpx=httpx.__version__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records (1M)")
    parser.add_argument("--rounds", type=int, default=3, help="timings per contender (3)")
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    parser.add_argument("--files", type=int, default=10, help="JSON-lines files (10)")
    parser.add_argument("--page-size", type=int, default=1000, help="records per API page")
    parser.add_argument(
        "--keep", action="store_true", help="keep out/work/ (each contender's last output)"
    )
    parser.add_argument("--fresh", action="store_true", help="generate the records again")
    add_disturbance_options(
        parser,
        max_other_cpu=1.0,
        unit="timing",
        profiled="one headwater run per case (out/profile-<case>.pstats)",
    )
    return parser


if __name__ == "__main__":
    main()
