"""dbt-core + dbt-duckdb in their own virtualenv, installed once into `<repo>/.cache/dbt-venv`
and reused by every later run. A file lock keeps two runs from installing at once; a marker
file says the install finished (a killed install is redone)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
VENV = REPO / ".cache" / "dbt-venv"
REQUIREMENTS = ("dbt-core~=1.11.0", "dbt-duckdb~=1.11.0")
_DONE = VENV / ".installed"


def dbt_executable() -> Path:
    """The `dbt` of the cached virtualenv, installing it first if needed.

    Skips the calling test when it cannot be installed (no network), but fails it when
    CI=true: the CI installs everything.
    """
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / "dbt-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _DONE.exists():
            problem = _install()
            if problem:
                if os.environ.get("CI") == "true":
                    pytest.fail(f"dbt could not be installed: {problem}")
                pytest.skip(f"dbt could not be installed: {problem}")
    return VENV / "bin" / "dbt"


def _install() -> str | None:
    shutil.rmtree(VENV, ignore_errors=True)
    steps = (
        [sys.executable, "-m", "venv", str(VENV)],
        [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", *REQUIREMENTS],
    )
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            return lines[-1] if lines else f"{step[2]} exited {done.returncode}"
    _DONE.write_text(" ".join(REQUIREMENTS) + "\n")
    return None
