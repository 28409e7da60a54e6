"""`headwater status`: every table's freshness against its SLA, its newest run, its failing
rules and held batches, and open alerts; exit 1 when something needs someone."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from headwater.cli.main import app
from headwater.orchestrate import Stores, run
from headwater.project import load_project
from headwater.zones.catalog.alerts import Incident
from tests.badinput.harness import EVENTS, SETTINGS, write
from tests.cli.test_imports import heavy_imports
from tests.conftest import NOW

# its sla allows a second: the data landed at NOW, a month before the real clock
ORDERS = """\
source: shop.orders
schema_version: "1"
delivery: batch
privacy_level: internal
owner: data@example.com
connector: {kind: files, path: "data/orders/*.csv", format: csv}
primary_key: [order_id]
sla: {max_age: 1s}
columns:
  - {name: order_id, type: bigint, nullable: false}
  - {name: amount, type: "decimal(12,2)"}
rules:
  - {name: orders_amount_positive, type: valid_values, target: amount, min: 0, severity: error}
"""
# built by a run that ended on the real clock: fresh for a day
ORDER_LOG = """\
/* headwater
kind: append
sla: {max_age: 1d}
*/
select order_id, amount from raw.orders
"""
BROKEN = "select no_such_column from range(3)\n"
HEADER = "order_id,amount\n"


def hw(root: Path, *args: str) -> Result:
    """`headwater ARGS -p ROOT` in process; `.stdout` alone carries the JSON."""
    return CliRunner().invoke(app, [*args, "-p", str(root)], env={"COLUMNS": "200"})


def says(result: Result, text: str) -> bool:
    """Whether the output says `text`, however the terminal wrapped it."""
    return "".join(text.split()) in "".join(result.output.split())


def status_json(root: Path) -> Any:
    result = hw(root, "status", "--format", "json")
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def ran(root: Path, *batches: str) -> None:
    """Run the project once per batch of orders (a CSV body), an hour apart from NOW on."""
    project = load_project(root)
    stores = Stores.open(project)
    try:
        for n, body in enumerate(batches):
            write(root, f"data/orders/{n}.csv", HEADER + body)
            run(project, stores, now=NOW + timedelta(hours=n))
    finally:
        stores.close()


@pytest.fixture(scope="module")
def troubled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """raw.orders late against its sla, its second batch held by a failing error rule;
    marts.broken failing; marts.order_log fresh; raw.events without an sla."""
    root = tmp_path_factory.mktemp("status") / "probe"
    write(root, "headwater.yml", SETTINGS)
    write(root, "contracts/orders.yml", ORDERS)
    write(root, "contracts/events.yml", EVENTS)
    write(root, "data/events/events_1.jsonl", '{"event_id": 1, "kind": "view"}\n')
    write(root, "models/marts/order_log.sql", ORDER_LOG)
    write(root, "models/marts/broken.sql", BROKEN)
    ran(root, "1,10.00\n2,20.00\n", "3,-5.00\n4,7.00\n")
    return root


def test_a_late_table_is_shown_with_why_and_fails_the_status(troubled: Path) -> None:
    shown = hw(troubled, "status")
    assert shown.exit_code == 1, shown.output
    tables = {t["table"]: t for t in status_json(troubled)["tables"]}
    orders = tables["raw.orders"]
    assert orders["late"] is True and orders["sla"] == {"max_age": "1s"}
    assert orders["updated_at"].startswith("2026-11-01T13:00")  # the second landing, at NOW+1h
    assert "its sla allows 1s" in orders["freshness"]
    assert says(shown, "LATE") and says(shown, orders["freshness"])
    assert tables["marts.order_log"]["late"] is False
    assert tables["marts.order_log"]["freshness"] == "fresh"
    assert tables["raw.events"]["freshness"] == "no sla"


def test_every_problem_is_named_once(troubled: Path) -> None:
    answer = status_json(troubled)
    assert answer["ok"] is False
    kinds = sorted((p["table"], p["kind"]) for p in answer["problems"])
    assert kinds == [
        ("marts.broken", "failed"),
        ("marts.order_log", "skipped"),  # what it reads was held back
        ("raw.orders", "held"),
        ("raw.orders", "late"),
        ("raw.orders", "rule"),
    ]
    tables = {t["table"]: t for t in answer["tables"]}
    broken = tables["marts.broken"]["last_run"]
    assert broken["status"] == "failed" and "no_such_column" in broken["error"]
    assert broken["run_id"] == answer["runs"][0]["run_id"]  # the newest run built it last
    [rule] = tables["raw.orders"]["failing_rules"]
    assert rule["rule"] == "orders_amount_positive" and rule["blocking"] is True
    assert rule["metric"] == 1
    assert tables["raw.orders"]["held_batches"] == 1
    assert tables["raw.orders"]["last_run"]["status"] == "landed"
    shown = hw(troubled, "status")
    assert says(shown, "5 problem(s)")
    assert says(shown, "marts.order_log: its newest build was skipped")
    assert says(shown, "marts.broken: its newest build failed")
    assert says(shown, "raw.orders: rule orders_amount_positive fails: 1")
    assert says(shown, "raw.orders: 1 batch(es) held awaiting a decision")


def test_exit_zero_shows_the_same_and_exits_0(troubled: Path) -> None:
    shown = hw(troubled, "status", "--exit-zero")
    assert shown.exit_code == 0 and says(shown, "5 problem(s)"), shown.output


def test_json_has_tables_alerts_runs_and_streams(troubled: Path) -> None:
    answer = status_json(troubled)
    assert set(answer) == {"ok", "problems", "tables", "alerts", "runs", "streams", "releases"}
    [(env, release)] = answer["releases"].items()  # what prod shows: its first run's release
    assert env == "prod" and release["id"] == 1 and release["kind"] == "run"
    assert [t["table"] for t in answer["tables"]] == [
        "raw.events",
        "raw.orders",
        "marts.broken",
        "marts.order_log",
    ]
    assert set(answer["tables"][0]) == {
        "table",
        "kind",
        "sla",
        "updated_at",
        "late",
        "freshness",
        "last_run",
        "failing_rules",
        "held_batches",
        "problems",
    }
    assert [r["command"] for r in answer["runs"]] == ["run", "run"]
    assert answer["streams"] == []
    # the incidents the runs opened: the failing error rule, and marts.broken failing
    assert {a["key"] for a in answer["alerts"]} == {
        "rule:raw.orders:orders_amount_positive",
        "run_failed:run",
    }


def test_a_healthy_project_exits_0_and_lists_open_incidents(tmp_path: Path) -> None:
    write(tmp_path, "headwater.yml", SETTINGS)
    write(tmp_path, "contracts/orders.yml", ORDERS.replace("sla: {max_age: 1s}\n", ""))
    write(tmp_path, "models/marts/order_log.sql", ORDER_LOG)
    ran(tmp_path, "1,10.00\n")
    stores = Stores.open(load_project(tmp_path))
    try:
        incident = Incident("sla:raw.orders", "sla_freshness", "raw.orders", "error", "was late")
        stores.catalog.open_alert(incident, channels=[], now=NOW, extra={})
    finally:
        stores.close()
    shown = hw(tmp_path, "status")
    # an open incident is shown, and left to the scheduler: what is judged now decides
    assert shown.exit_code == 0, shown.output
    assert says(shown, "ok: 2 tables, none late, failing or held")
    assert says(shown, "Open alerts") and says(shown, "was late")
    [alert] = status_json(tmp_path)["alerts"]
    assert alert["key"] == "sla:raw.orders" and alert["opened_at"].startswith("2026-11-01T12:00")


def test_its_help_imports_nothing_heavy() -> None:
    assert heavy_imports(["status", "--help"]) == []
