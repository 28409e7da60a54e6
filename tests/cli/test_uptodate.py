"""`headwater build` with nothing to do answers from the state the last build left — and only
then: every input a build decides from, changed, sends it back to the whole build."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from headwater.orchestrate import uptodate
from tests.cli.test_cli import hw

# what differs between a build answered from the stamp and a whole build with nothing to do
NOT_COMPARED = ("run_id", "recorded", "kinds", "warehouse")


def build(root: Path, *args: str) -> dict[str, Any]:
    code, out = hw("build", "-p", str(root), "--format", "json", *args)
    assert code == 0, out
    result: dict[str, Any] = json.loads(out[out.index("{") :])
    return result


def answered(result: dict[str, Any]) -> bool:
    return result["run_id"] is None and result.get("recorded") is False


@pytest.fixture(scope="module")
def ran_once(ran_shop: Path) -> Path:
    return ran_shop


@pytest.fixture
def ran(shop: Path) -> Path:
    code, out = hw("run", "-p", str(shop))
    assert code == 0, out
    assert (shop / uptodate.STAMP).exists()  # what each test below must not answer from
    return shop


def test_a_build_after_a_run_answers_what_the_whole_build_would(ran: Path) -> None:
    assert (ran / uptodate.STAMP).exists()
    fast = build(ran)
    assert answered(fast)
    uptodate.forget(ran)
    whole = build(ran)  # the same question, answered by building
    assert whole["run_id"] is not None
    assert {m["status"] for m in whole["models"]} <= {"up_to_date", "inlined"}
    for key in NOT_COMPARED:
        fast.pop(key, None)
        whole.pop(key, None)
    for m in whole["models"]:
        m["seconds"] = 0.0
    assert fast == whole
    # the whole build with nothing to do stamped again
    assert answered(build(ran))


def test_the_table_says_nothing_to_do_and_records_no_run(ran: Path) -> None:
    code, before = hw("status", "-p", str(ran))
    code, out = hw("build", "-p", str(ran))
    assert code == 0, out
    assert "Nothing to do" in out and "marts.events_daily" in out and "up to date" in out
    assert hw("status", "-p", str(ran))[1] == before


def test_an_edited_model_is_built(ran: Path) -> None:
    model = ran / "models/marts/revenue_daily.sql"
    model.write_text(model.read_text() + "\n-- a comment: the same model\n", encoding="utf-8")
    result = build(ran)
    assert not answered(result)  # decided by the build: its SQL is the same, nothing built
    assert "built" not in {m["status"] for m in result["models"]}
    model.write_text(model.read_text().replace("count(*) as orders", "count(*) as n_orders"))
    result = build(ran)
    assert not answered(result)
    statuses = {m["model"]: m["status"] for m in result["models"]}
    assert statuses["marts.revenue_daily"] == "built"


def test_new_raw_data_is_built(ran: Path) -> None:
    events = sorted((ran / "data/events").glob("*.jsonl"))
    shutil.copy(events[0], events[0].with_name("zz-late.jsonl"))
    code, out = hw("ingest", "-p", str(ran))
    assert code == 0, out
    result = build(ran)
    assert not answered(result)
    assert "built" in {m["status"] for m in result["models"]}


@pytest.mark.parametrize(
    "statement",
    ["drop view marts.events_daily", "delete from {table} where true"],
    ids=["a view dropped", "rows deleted"],
)
def test_a_warehouse_changed_outside_headwater_is_built(ran: Path, statement: str) -> None:
    if "{table}" in statement:
        with sqlite3.connect(ran / ".headwater/catalog.db") as conn:
            (physical,) = conn.execute(
                "select physical from hw_env_pointers where name = 'marts.events_daily'"
            ).fetchone()
        statement = statement.format(table=physical)
    code, out = hw("sql", statement, "-p", str(ran), "--write")
    assert code == 0, out
    result = build(ran)
    assert not answered(result)
    statuses = {m["model"]: m["status"] for m in result["models"]}
    assert statuses["marts.events_daily"] == "built"


@pytest.mark.parametrize("args", [["--full-refresh"], ["--select", "marts.funnel_daily"]])
def test_a_build_asked_for_more_or_less_than_the_project_builds(ran: Path, args: list[str]) -> None:
    assert not answered(build(ran, *args))


def test_a_failed_build_leaves_no_stamp(ran: Path) -> None:
    model = ran / "models/marts/revenue_daily.sql"
    good = model.read_text()
    model.write_text(good.replace("from", "from no_such_table, ", 1), encoding="utf-8")
    code, out = hw("build", "-p", str(ran))
    assert code != 0 and "no_such_table" in out
    assert not (ran / uptodate.STAMP).exists()
    model.write_text(good, encoding="utf-8")
    assert not answered(build(ran))  # built again, then stamped
    assert answered(build(ran))


def test_settings_that_read_the_environment_are_never_answered(
    ran: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_WAREHOUSE", ".headwater/warehouse.duckdb")
    settings = ran / "headwater.yml"
    text = settings.read_text()
    settings.write_text(
        text.replace("warehouse: .headwater/warehouse.duckdb", "warehouse: ${SHOP_WAREHOUSE}"),
        encoding="utf-8",
    )
    assert not answered(build(ran))
    assert not answered(build(ran))


def test_a_copied_project_decides_from_its_own_state(ran: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(ran, copy)
    assert not answered(build(copy))


@pytest.mark.parametrize(
    "change",
    [
        "update iceberg_tables set metadata_location = metadata_location || '?'",
        "insert into hw_held_batches (table_name, batch_id, reason, held_at) "
        "values ('raw.orders', 'b1', 'why', '2026-01-01')",
        "update hw_env_pointers set fingerprint = 'other'",
        "update hw_model_versions set rows = rows + 1",
        'insert into hw_intervals (name, fingerprint, start, "end") '
        "values ('m', 'f', '2026-01-01', '2026-01-02')",
        "insert into hw_schema values (99, 'later', '2026-01-01')",
    ],
    ids=["lake", "holds", "pointers", "versions", "intervals", "schema"],
)
def test_every_catalog_table_a_build_decides_from_is_in_the_state(
    ran_once: Path, tmp_path: Path, change: str
) -> None:
    catalog, warehouse = tmp_path / "catalog.db", ran_once / ".headwater/warehouse.duckdb"
    with (
        sqlite3.connect(ran_once / ".headwater/catalog.db") as source,
        sqlite3.connect(catalog) as copy,
    ):
        source.backup(copy)  # changed here, not in the project
    before = uptodate.state_key(catalog, warehouse)
    assert before is not None and before == uptodate.state_key(catalog, warehouse)
    with sqlite3.connect(catalog) as conn:
        conn.execute(change)
    after = uptodate.state_key(catalog, warehouse)
    assert after is not None and after != before


FILES_READ = """
import sys
from datetime import UTC, datetime
from pathlib import Path

root = Path(sys.argv[1]).resolve()
opened = set()


def hook(event, args):
    if event == "open" and isinstance(args[0], (str, Path)):
        path = Path(args[0]).resolve()
        if path.is_relative_to(root):
            opened.add(str(path.relative_to(root)))


sys.addaudithook(hook)
from headwater.orchestrate import Stores, run
from headwater.project import load_project

project = load_project(root)
stores = Stores.open(project)
run(project, stores, now=datetime.now(UTC), stages=("build",), command="build")
stores.close()
print("\\n".join(sorted(opened)))
"""


def test_every_project_file_a_build_reads_is_in_the_stamp(ran_once: Path, tmp_path: Path) -> None:
    """What a build reads of the project (its parse cache emptied, so that every file is
    read, not only looked at) lies in the folders the stamp digests, or is headwater.yml;
    a loader that learns to read another folder fails here until the stamp digests it."""
    root = tmp_path / "shop"
    shutil.copytree(ran_once, root)
    shutil.rmtree(root / ".headwater/cache", ignore_errors=True)
    done = subprocess.run(
        [sys.executable, "-c", FILES_READ, str(root)], capture_output=True, text=True, check=True
    )
    read = [line for line in done.stdout.splitlines() if not line.startswith(".headwater/")]
    assert any(p.startswith("models/") for p in read) and any(
        p.startswith("contracts/") for p in read
    )
    outside = [
        p
        for p in read
        if p != uptodate.SETTINGS_FILE and p.split("/")[0] not in uptodate.PROJECT_FOLDERS
    ]
    assert outside == []


def test_a_build_killed_midway_leaves_no_stamp_to_answer_from(ran: Path) -> None:
    """The stamp goes when a build starts and comes back only after it closed: a build
    killed (SIGKILL) in between leaves nothing that could answer for the state it changed."""
    assert answered(build(ran))
    model = ran / "models/marts/revenue_daily.sql"
    good = model.read_text()
    model.write_text(good.replace("count(*) as orders", "count(*) as orders, 1 as edited"))
    script = (
        "import os, signal, sys\n"
        "from headwater.orchestrate import build as b\n"
        "work = b.BuildStage.work\n"
        "def killed(self, task):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "b.BuildStage.work = killed\n"
        "from headwater.cli.main import app\n"
        "app(['build', '-p', sys.argv[1]])\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(ran)], capture_output=True)
    assert done.returncode == -signal.SIGKILL
    assert not (ran / uptodate.STAMP).exists()
    model.write_text(good, encoding="utf-8")  # back as it was stamped: still not answered
    assert not answered(build(ran))
    assert answered(build(ran))
