"""What the benchmarks need to know about the machine: CPU used by everyone, by us, and
waiting until the others are idle (a 2-core machine shared with other jobs moves wall times)."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def add_disturbance_options(
    parser: argparse.ArgumentParser, *, max_other_cpu: float, unit: str, profiled: str
) -> None:
    """`--max-other-cpu`, `--retries` (a `unit` timed while other processes used more CPU
    seconds than that is redone) and `--profile` (afterwards, profile `profiled`)."""
    parser.add_argument(
        "--max-other-cpu",
        type=float,
        default=max_other_cpu,
        help=f"CPU seconds other processes may use during a {unit} before it is redone "
        f"({max_other_cpu:g})",
    )
    parser.add_argument(
        "--retries", type=int, default=3, help=f"times a disturbed {unit} is redone (3)"
    )
    parser.add_argument(
        "--profile", action="store_true", help=f"afterwards, profile {profiled} (cProfile)"
    )


def wait_idle(*, limit: float = 0.1, probe: float = 2, timeout: float = 600) -> None:
    """Wait (at most `timeout` s) until other processes use under `limit` of a CPU."""
    deadline = time.monotonic() + timeout
    told = False
    while time.monotonic() < deadline:
        busy, ours = machine_cpu(), our_cpu()
        time.sleep(probe)
        if ((machine_cpu() - busy) - (our_cpu() - ours)) / probe < limit:
            return
        if not told:
            print("    waiting for other processes to finish ...", flush=True)
            told = True


def machine_cpu() -> float:
    """CPU seconds every process of the machine has used (Linux /proc/stat; else 0)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq = map(int, fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def our_cpu() -> float:
    """CPU seconds of this process and of its finished children (the measured jobs)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def describe(**versions: str) -> dict[str, Any]:
    """The machine and code a result was measured on: cores, load, Python, the given package
    versions, headwater's version and commit, and whether `src/` had uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {
        "cpus": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        **versions,
        "headwater": version("headwater"),
        "commit": git("rev-parse", "--short", "HEAD"),
        "src_modified": bool(git("status", "--porcelain", "--", "../src")),
    }


def run_project(project: Path) -> float:
    """`headwater run -p PROJECT` with this interpreter's headwater; its wall seconds (a
    failure stops the benchmark with the run's output)."""
    import sys

    started = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "headwater"), "run", "-p", str(project)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"headwater run failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started
