"""The README's team workflow (branch → `--env` → plan → apply → diff → promote → releases →
rollback → gc), run as a user runs it: each line in bash, in order, every one succeeding."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
pytestmark = pytest.mark.slow


def walkthrough() -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- walkthrough -->\n```bash\n(.*?)```", text, re.S)
    assert found, "the README lost its walkthrough block"
    return found.group(1)


def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    script = walkthrough()
    # the one liberty taken: a smaller example project, so the test takes seconds
    script = script.replace("headwater init shop ", "headwater init shop --events 3000 ", 1)
    assert "--events 3000" in script
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ["PATH"],
        "COLUMNS": "120",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    out = " ".join(done.stdout.split())
    assert "column biggest added" in out  # the plan
    assert "promoted dev to prod: marts.revenue_daily" in out
    assert "prod now shows release 1" in out  # the rollback went back to the first release

    shop = tmp_path / "shop"
    releases = json.loads(
        subprocess.run(
            ["headwater", "releases", "--format", "json"],
            cwd=shop,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    kinds = [(r["env"], r["kind"]) for r in reversed(releases)]
    assert kinds == [
        ("prod", "run"),
        ("dev", "fork"),
        ("dev", "apply"),
        ("prod", "promote"),
        ("prod", "rollback"),
    ]
    assert releases[1]["code_version"].endswith("+dirty")  # promoted from the edited branch
    with duckdb.connect(str(shop / ".headwater/warehouse.duckdb"), read_only=True) as conn:
        columns = [c[0] for c in conn.execute("describe marts.revenue_daily").fetchall()]
        dev = [c[0] for c in conn.execute("describe marts__dev.revenue_daily").fetchall()]
    assert "biggest" not in columns and "biggest" in dev  # prod rolled back, dev kept
