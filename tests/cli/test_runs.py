"""`headwater runs [RUN]`: the run history, and one run's tasks with their attempts and full
errors, the rules that failed in it and its warnings; a run named by its id, a prefix, its
random part or `latest`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from headwater.cli.main import app
from headwater.orchestrate.stores import project_catalog_url
from headwater.project import load_project
from headwater.zones.catalog import Catalog
from tests.badinput.harness import write
from tests.cli.test_imports import heavy_imports
from tests.httpapi import Api
from tests.orchestrate.test_retry import CONTRACT

ORDERS = CONTRACT  # an API that may fail once: the project allows one retry
COUNTED = "select count(*) as n from raw.orders\n"
# a warn rule that fails: the model is built, the rule is reported
COUNTED_RULES = """\
rules:
  - {name: too_few, type: row_count, target: '*', threshold: 99, severity: warn}
"""
BROKEN = "select no_such_column from range(3)\n"
T0 = datetime(2026, 10, 1, tzinfo=UTC)


def hw(root: Path, *args: str) -> Result:
    """`headwater ARGS -p ROOT` in process; `.stdout` alone carries the JSON."""
    return CliRunner().invoke(app, [*args, "-p", str(root)], env={"COLUMNS": "200"})


def says(result: Result, text: str) -> bool:
    """Whether the output says `text`, however the terminal wrapped it."""
    return "".join(text.split()) in "".join(result.output.split())


def as_json(root: Path, *args: str) -> Any:
    result = hw(root, "runs", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project run twice: `run` (its landing retried once, a model failing, a warn rule
    failing), then `build` (the model failing again)."""
    root = tmp_path_factory.mktemp("runs") / "probe"
    records = [{"id": i, "updated_at": (T0 + timedelta(hours=i)).isoformat()} for i in range(5)]
    with Api(records) as api:
        api.fail(503, times=1)
        write(root, "headwater.yml", "name: probe\ndefaults: {retries: 1, backoff: 10ms}\n")
        write(root, "contracts/orders.yml", ORDERS.format(url=api.url))
        write(root, "models/marts/counted.sql", COUNTED)
        write(root, "models/marts/counted.yml", COUNTED_RULES)
        write(root, "models/marts/broken.sql", BROKEN)
        first = hw(root, "run")
    assert first.exit_code == 1, first.output  # the broken model failed
    second = hw(root, "build")
    assert second.exit_code == 1, second.output
    return root


def test_the_history_lists_every_run_newest_first(ran: Path) -> None:
    shown = hw(ran, "runs")
    assert shown.exit_code == 0, shown.output
    build, run = as_json(ran)["runs"]
    assert (build["command"], run["command"]) == ("build", "run")
    assert says(shown, build["run_id"]) and says(shown, run["run_id"])
    assert shown.output.index(build["run_id"]) < shown.output.index(run["run_id"])
    assert run["status"] == "failed" and run["landed"] == 5
    assert run["models_built"] == 1 and run["models_failed"] == 1
    assert run["rules_failed"] == 1 and run["rules_failed_error"] == 0
    assert run["tasks"] == {"ingest": {"landed": 1}, "build": {"built": 1, "failed": 1}}
    assert build["landed"] is None and build["models_failed"] == 1
    assert says(shown, "5") and says(shown, "1 built, 1 failed")
    assert [r["run_id"] for r in as_json(ran, "--limit", "1")["runs"]] == [build["run_id"]]


def test_a_run_shows_its_tasks_attempts_errors_rules_and_warnings(ran: Path) -> None:
    run_id = as_json(ran)["runs"][1]["run_id"]
    shown = hw(ran, "runs", run_id)
    assert shown.exit_code == 0, shown.output
    detail = as_json(ran, run_id)
    tasks = {t["task"]: t for t in detail["tasks"]}
    assert [t["stage"] for t in detail["tasks"]] == ["ingest", "build", "build"]
    landed = tasks["raw.orders"]
    assert (landed["status"], landed["rows"], landed["attempts"]) == ("landed", 5, 2)
    broken = tasks["marts.broken"]
    assert broken["status"] == "failed" and broken["attempts"] == 1
    assert "no_such_column" in broken["error"]
    assert tasks["marts.counted"]["status"] == "built"
    [rule] = [r for r in detail["rules"] if not r["passed"]]
    assert (rule["target"], rule["rule"], rule["severity"]) == ("marts.counted", "too_few", "warn")
    assert any("landed on attempt 2" in w for w in detail["warnings"]["raw.orders"])
    # what a user reads: each task, the second attempt, the whole error, the rule, the warning
    assert says(shown, f"Run {run_id}") and says(shown, "failed")
    assert says(shown, "ingest raw.orders landed 5") and says(shown, "marts.broken")
    assert says(shown, broken["error"])
    assert says(shown, "too_few") and says(shown, "Rules failed")
    assert says(shown, "warning: raw.orders: landed on attempt 2")


def test_latest_a_prefix_and_the_random_part_name_a_run(ran: Path) -> None:
    newest, older = (r["run_id"] for r in as_json(ran)["runs"])
    assert as_json(ran, "latest")["run_id"] == newest
    assert as_json(ran, "LAST")["run_id"] == newest
    assert as_json(ran, older.rpartition("-")[2][:6])["run_id"] == older
    if newest[:15] != older[:15]:  # two runs in the same second share their time
        assert as_json(ran, older[:15])["run_id"] == older
    detail = as_json(ran, newest)
    assert detail["command"] == "build" and [t["stage"] for t in detail["tasks"]] == [
        "build",
        "build",
    ]


def test_an_unknown_or_ambiguous_run_is_one_line_and_exit_2(ran: Path) -> None:
    newest = as_json(ran)["runs"][0]["run_id"]
    unknown = hw(ran, "runs", newest[:-1] + "x")
    assert unknown.exit_code == 2, unknown.output
    assert says(unknown, f"no run {newest[:-1]}x") and says(unknown, f"did you mean {newest}")
    assert "Traceback" not in unknown.output
    ambiguous = hw(ran, "runs", "20")
    assert ambiguous.exit_code == 2 and says(ambiguous, "ambiguous"), ambiguous.output


def test_a_project_without_runs(tmp_path: Path) -> None:
    write(tmp_path, "headwater.yml", "name: empty\n")
    assert says(hw(tmp_path, "runs"), "No run recorded yet")
    assert as_json(tmp_path) == {"runs": []}
    latest = hw(tmp_path, "runs", "latest")
    assert latest.exit_code == 2 and says(latest, "no run recorded yet")


def test_a_run_killed_while_running_shows_as_interrupted(tmp_path: Path) -> None:
    """No process holds the project's lease: the run left `running` was killed."""
    write(tmp_path, "headwater.yml", "name: killed\n")
    catalog = Catalog(project_catalog_url(load_project(tmp_path)))
    try:
        run_id = catalog.start_run("run", now=T0)
    finally:
        catalog.close()
    [run] = as_json(tmp_path)["runs"]
    assert run["run_id"] == run_id and run["status"] == "interrupted"
    assert run["ended_at"] is None and run["seconds"] is None
    assert says(hw(tmp_path, "runs"), "interrupted")
    shown = hw(tmp_path, "runs", "latest")
    assert says(shown, "interrupted") and says(shown, "not ended")


def test_its_help_imports_nothing_heavy() -> None:
    assert heavy_imports(["runs", "--help"]) == []
