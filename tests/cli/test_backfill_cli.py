"""`headwater backfill`: 90 daily intervals on 4 threads, killed (SIGKILL) or interrupted
(Ctrl-C) part way and asked again, equal a full refresh; bad input says why, with the exit
codes of errors.py."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from headwater.cli.main import app
from tests.cli.test_imports import heavy_imports
from tests.orchestrate.test_backfill import (
    DAYS,
    MODEL,
    catalog,
    make_project,
    rows,
    run_project,
)

COMMAND = ["backfill", MODEL, "--start", "2026-01-01", "--end", "2026-04-01", "--parallel", "4"]


def _cli(root: Path) -> list[str]:
    return [sys.executable, "-m", "headwater", *COMMAND, "-p", str(root), "--format", "json"]


def _stopped(root: Path, sig: signal.Signals, *, after: int = 5) -> tuple[int, str]:
    """Run the backfill in a process and send it `sig` once `after` units are recorded done
    (polling the catalog); its exit status and output."""
    env = {**os.environ, "COLUMNS": "200"}
    process = subprocess.Popen(
        _cli(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        # Ctrl-C's default in the child even when this test process ignores it (a child
        # that inherits SIG_IGN for SIGINT gets no KeyboardInterrupt from Python)
        preexec_fn=_default_sigint,
    )
    try:
        while process.poll() is None:
            if _recorded(root) >= after:
                process.send_signal(sig)
                break
            time.sleep(0.01)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, output


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _recorded(root: Path) -> int:
    try:
        return int(catalog(root, "select count(*) from hw_backfill_intervals")[0][0])
    except sqlite3.OperationalError:  # the catalog is not made yet, or not migrated
        return 0


def _resume(root: Path) -> dict[str, Any]:
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(_cli(root), capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.fixture
def full(tmp_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    root = make_project(tmp_path / "full", slow=True)
    run_project(root, full_refresh=True)
    return {t: rows(root, t) for t in (MODEL, f"{MODEL}__quarantine")}


@pytest.mark.slow
def test_90_intervals_on_4_threads_killed_then_resumed_equal_a_full_refresh(
    tmp_path: Path, full: dict[str, list[tuple[Any, ...]]]
) -> None:
    root = make_project(tmp_path / "p", slow=True)
    run_project(root, select=["clean.events"])  # marts.daily never built: 90 intervals to write

    code, output = _stopped(root, signal.SIGKILL)
    assert code == -signal.SIGKILL, f"the backfill ended before the kill:\n{output}"
    killed_at = _recorded(root)
    assert 0 < killed_at < DAYS
    assert catalog(root, "select status from hw_backfills") == [("running",)]
    assert catalog(root, "select name from hw_env_pointers") == [("clean.events",)]

    report = _resume(root)
    assert (report["status"], report["resumed"], report["published"]) == ("done", True, True)
    assert (report["skipped"], report["written"]) == (killed_at, DAYS - killed_at)
    assert rows(root) == full[MODEL]
    assert rows(root, f"{MODEL}__quarantine") == full[f"{MODEL}__quarantine"]
    assert catalog(root, "select status from hw_backfills") == [("done",)]

    after = run_project(root).models[MODEL]
    assert (after.status, after.error) == ("up_to_date", None)


@pytest.mark.slow
def test_ctrl_c_stops_between_units_and_the_same_command_continues(
    tmp_path: Path, full: dict[str, list[tuple[Any, ...]]]
) -> None:
    root = make_project(tmp_path / "p", slow=True)
    run_project(root)  # published: the backfill writes it in place, each unit audited

    code, output = _stopped(root, signal.SIGINT)
    assert code == 130, output
    stopped = json.loads(output[output.index("{") :])
    assert (stopped["status"], stopped["interrupted"]) == ("interrupted", True)
    assert 0 < stopped["written"] == _recorded(root) < DAYS
    assert catalog(root, "select status from hw_backfills") == [("interrupted",)]

    report = _resume(root)
    assert (report["resumed"], report["skipped"]) == (True, stopped["written"])
    assert report["written"] == DAYS - stopped["written"]
    assert rows(root) == full[MODEL]
    assert run_project(root).models[MODEL].status == "up_to_date"


def test_a_finished_backfill_prints_what_it_did(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    run_project(root, select=["clean.events"])
    args = [*COMMAND[:5], "2026-01-03T06:00", "-p", str(root)]
    done = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    lines = [line.strip() for line in done.output.splitlines() if line.strip()]
    assert f"Backfill {MODEL} [2026-01-01, 2026-01-04) into its new version" in lines[0]
    assert "note --end 2026-01-03 06:00 is inside a day: rounded up to 2026-01-04" in lines
    assert lines[-2].endswith("done — 3 of 3 days written; 5 rows now.")
    assert lines[-1].startswith("Not published yet: it still lacks [2026-01-04, 2026-04-01)")


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["marts.dialy"], 2, "no model named 'marts.dialy'; did you mean 'marts.daily'?"),
        (["clean.events"], 2, "clean.events is a table model"),
        ([MODEL, "--start", "2026-03-01", "--end", "2026-02-01"], 2, "is not before --end"),
        ([MODEL, "--start", "last week"], 2, "--start 'last week' is not a date or time"),
        ([MODEL, "--parallel", "0"], 2, "--parallel"),
        ([MODEL, "--format", "yaml"], 2, "--format 'yaml': expected table or json"),
    ],
)
def test_bad_input_says_why_with_its_exit_code(
    ran: Path, args: list[str], code: int, says: str
) -> None:
    given = {"--start": "2026-01-01", "--end": "2026-02-01"}
    for flag in ("--start", "--end"):
        if flag not in args:
            args = [*args, flag, given[flag]]
    done = CliRunner().invoke(app, ["backfill", *args, "-p", str(ran)], env={"COLUMNS": "300"})
    assert done.exit_code == code, done.output
    assert says in " ".join(done.output.split())


def test_a_model_that_cannot_tell_its_times_is_a_spec_error(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", watermark=False)
    run_project(root, select=["clean.events"])
    done = CliRunner().invoke(app, [*COMMAND, "-p", str(root)], env={"COLUMNS": "300"})
    assert done.exit_code == 3, done.output
    assert "cannot tell which times its upstream data covers" in done.output


def test_backfill_help_imports_nothing_heavy() -> None:
    assert heavy_imports(["backfill", "--help"]) == []


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_project(tmp_path_factory.mktemp("ran") / "p")
    run_project(root)
    return root
