"""The `headwater` command as a user types it (typer's runner, in process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headwater.cli.main import app

runner = CliRunner()


def hw(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def project(ran_shop: Path) -> Path:
    return ran_shop


def test_init_scaffolds_a_runnable_project(tmp_path: Path) -> None:
    code, out = hw("init", str(tmp_path / "shop"), "--events", "900")
    assert code == 0, out
    assert "900 events" in out
    assert (tmp_path / "shop/headwater.yml").exists()
    assert len(list((tmp_path / "shop/data/events").glob("*.jsonl"))) == 90
    code, out = hw("init", str(tmp_path / "shop"))
    assert code == 3 and "is not empty" in out


def test_run_prints_landed_quarantined_built_and_rules(shop: Path) -> None:
    code, out = hw("run", "-p", str(shop))
    assert code == 0, out
    assert "raw.events" in out and "4,497" in out
    assert "amount: cannot cast '12,50' to DECIMAL(12, 2)" in out
    assert "customers_id_unique" in out and "warn" in out
    assert "Zones now hold — raw:" in out
    # the data is from the fixture's fixed date, so the two freshness rules warn as well
    assert "ok — 30,504 rows landed, 6 quarantined, 8 models built, 13/23 rules passed" in out
    assert "seed.countries" in out and "seed: 8 rows" in out
    assert "marts.customer_orders" in out and "hw_marts" not in out


def test_second_run_reports_everything_up_to_date(project: Path) -> None:
    code, out = hw("run", "-p", str(project))
    assert code == 0
    assert "0 rows landed" in out and "up to date" in out and "0 models built" in out


def test_sql_queries_the_current_environment(project: Path) -> None:
    code, out = hw(
        "sql",
        "select event_type, sum(event_count) as n from marts.events_daily group by 1 order by 1",
        "-p",
        str(project),
    )
    assert code == 0, out
    assert "page_view" in out and "purchase" in out


def test_sql_error_is_one_line(project: Path) -> None:
    code, out = hw("sql", "select nope from marts.events_daily", "-p", str(project))
    assert code == 1
    assert out.startswith("error: Binder Error")


def test_check_json_for_ci(project: Path) -> None:
    code, out = hw("check", "raw.customers", "--format", "json", "-p", str(project))
    assert code == 0  # only warn rules fail
    answer = json.loads(out)
    assert answer["ok"] is True and answer["unpublished"] == []
    results = {r["rule"]: r for r in answer["results"]}
    assert results["customers_id_unique"]["passed"] is False
    assert results["customers_id_unique"]["samples"] == [{"customer_id": 42, "copies": 2}]


def test_check_exits_non_zero_when_an_error_rule_fails(project: Path) -> None:
    sidecar = project / "models/marts/events_daily.yml"
    original = sidecar.read_text()
    rule = "{name: too_few, type: row_count, target: '*', threshold: 99999}"
    sidecar.write_text(original.replace("\nserve:", f"\n  - {rule}\nserve:"))
    try:
        code, out = hw("check", "marts.events_daily", "-p", str(project))
    finally:
        sidecar.write_text(original)
    assert code == 1
    assert "too_few" in out and "FAIL" in out


def test_dag_status_and_schema(project: Path, tmp_path: Path) -> None:
    code, out = hw("dag", "-p", str(project))
    assert code == 0 and "raw.events" in out and "marts.funnel_daily (table)" in out
    code, out = hw("status", "-p", str(project))
    assert code == 0 and "success" in out
    code, out = hw("schema", "--out", str(tmp_path / "schemas"))
    assert code == 0
    contract = json.loads((tmp_path / "schemas/contract.schema.json").read_text())
    assert {"source", "schema_version", "delivery", "watermark", "privacy_level"} <= set(
        contract["properties"]
    )
    assert "name" not in contract["properties"]


def test_status_answers_while_another_process_writes_the_warehouse(project: Path) -> None:
    """`status` reads the catalog only: a writer holding the warehouse does not stop it."""
    warehouse = project / ".headwater" / "warehouse.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "sys.stdin.read()",
            str(warehouse),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        code, out = hw("status", "-p", str(project))
        assert code == 0 and "success" in out, out
    finally:
        holder.communicate("", timeout=30)


def test_a_bad_project_gives_one_line_and_exit_3(tmp_path: Path) -> None:
    code, out = hw("run", "-p", str(tmp_path))
    assert code == 3
    assert out.strip().count("\n") == 0
    assert "no headwater.yml" in out
