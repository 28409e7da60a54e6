"""`headwater batches`: a batch a blocking rule held is listed with the rule that failed, and an
operator releases it into raw (and the models) or discards it for good, recorded with who and
why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import Result
from typer.testing import CliRunner

from headwater.cli.main import app
from headwater.orchestrate.stores import project_catalog_url
from headwater.project import load_project
from headwater.zones.catalog import Catalog
from tests.badinput.harness import SETTINGS, write
from tests.cli.test_imports import heavy_imports
from tests.conftest import NOW

ORDERS = """\
source: shop.orders
schema_version: "1"
delivery: batch
privacy_level: internal
owner: data@example.com
connector: {kind: files, path: "data/orders/*.csv", format: csv}
primary_key: [order_id]
columns:
  - {name: order_id, type: bigint, nullable: false}
  - {name: amount, type: "decimal(12,2)"}
rules:
  - {name: orders_amount_positive, type: valid_values, target: amount, min: 0, severity: error}
"""
STRICT = "min: 0, severity: error}"
# every batch the model has not seen: a released batch must reach it too
ORDER_LOG = """\
/* headwater
kind: append
*/
select order_id, amount from raw.orders
"""
HEADER = "order_id,amount\n"


def hw(root: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """`headwater ARGS -p ROOT` in process; `.stdout` alone carries the JSON."""
    return CliRunner().invoke(app, [*args, "-p", str(root)], env={"COLUMNS": "200", **(env or {})})


def says(result: Result, text: str) -> bool:
    """Whether the output says `text`, however the terminal wrapped it."""
    return "".join(text.split()) in "".join(result.output.split())


def count(root: Path, table: str) -> int:
    with duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True) as conn:
        found = conn.execute(f"select count(*) from {table}").fetchone()  # the test's own names
    assert found is not None
    return int(found[0])


def held_batches(root: Path, *args: str) -> list[dict[str, Any]]:
    result = hw(root, "batches", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout)["batches"])


@pytest.fixture
def held(tmp_path: Path) -> tuple[Path, str]:
    """A project whose second batch (two orders, one of a negative amount) is held; the first
    (two orders) is in raw. Returns the project and the held batch's id."""
    root = tmp_path / "probe"
    write(root, "headwater.yml", SETTINGS)
    write(root, "contracts/orders.yml", ORDERS)
    write(root, "models/marts/order_log.sql", ORDER_LOG)
    write(root, "data/orders/a.csv", HEADER + "1,10.00\n2,20.00\n")
    assert hw(root, "run").exit_code == 0
    write(root, "data/orders/b.csv", HEADER + "3,-5.00\n4,7.00\n")
    ran = hw(root, "run")
    assert ran.exit_code == 1, ran.output  # the rule failed: the batch is held
    assert count(root, "raw.orders") == 2 and count(root, "marts.order_log") == 2
    [batch] = held_batches(root)
    return root, batch["batch_id"]


def test_a_held_batch_is_listed_with_the_rule_that_failed(held: tuple[Path, str]) -> None:
    root, batch = held

    [record] = held_batches(root, "--held")

    assert record["table"] == "raw.orders" and record["state"] == "held"
    assert record["rows"] == 2
    assert record["reason"] == "error rule(s) failed: orders_amount_positive"
    [rule] = record["failed_rules"]
    assert rule["rule"] == "orders_amount_positive" and rule["type"] == "valid_values"
    assert rule["metric"] == 1  # one order out of range
    assert rule["threshold"] is not None
    assert record["decided_at"] is None and record["decided_by"] is None
    assert record["held_at"].endswith("+00:00")
    shown = hw(root, "batches")
    assert shown.exit_code == 0
    assert says(shown, batch) and says(shown, "orders_amount_positive: 1")
    assert held_batches(root, "--table", "orders") == [record]  # raw. may be left out


def test_a_released_batch_is_in_raw_at_once_and_in_the_models_after_the_next_run(
    held: tuple[Path, str],
) -> None:
    root, batch = held

    released = hw(root, "batches", "release", batch[:8], "--reason", "refund, not an error")

    assert released.exit_code == 0, released.output
    assert says(released, f"Released batch {batch} of raw.orders (2 rows)")
    assert count(root, "raw.orders") == 4  # `headwater sql` sees it now
    assert hw(root, "run").exit_code == 0
    assert count(root, "marts.order_log") == 4  # the append model took the batch in
    assert held_batches(root) == []
    [record] = held_batches(root, "--all")
    assert record["state"] == "released"
    assert record["decision_note"] == "refund, not an error"
    assert record["decided_by"]  # the login name, with no --by nor $HEADWATER_USER


def test_a_discarded_batch_stays_out_even_once_its_rule_would_pass(
    held: tuple[Path, str],
) -> None:
    root, batch = held

    discarded = hw(
        root,
        "batches",
        "discard",
        batch,
        "--reason",
        "test data from staging",
        env={"HEADWATER_USER": "ana"},
    )

    assert discarded.exit_code == 0, discarded.output
    assert says(discarded, "stays out of raw.orders for good")
    contract = root / "contracts/orders.yml"
    contract.write_text(contract.read_text().replace(STRICT, "min: 0, severity: warn}"))
    ran = hw(root, "run", "--format", "json")  # the rule would pass now: never checked again
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.stdout)["held"] == {}  # nor reported as held
    assert count(root, "raw.orders") == 2 and count(root, "marts.order_log") == 2
    assert held_batches(root) == []
    [record] = held_batches(root, "--all")
    assert record["state"] == "discarded"
    assert (record["decided_by"], record["decision_note"]) == ("ana", "test data from staging")
    listed = hw(root, "batches", "--all")
    assert says(listed, "discarded") and says(listed, "test data from staging")
    again = hw(root, "batches", "release", batch, "--reason", "changed my mind")
    assert again.exit_code == 2
    assert says(again, f"batch {batch} of raw.orders was discarded by ana")


def test_a_batch_released_by_its_rules_cannot_be_decided_again(held: tuple[Path, str]) -> None:
    root, batch = held
    contract = root / "contracts/orders.yml"
    contract.write_text(contract.read_text().replace(STRICT, "min: 0, severity: warn}"))
    assert hw(root, "run").exit_code == 0  # re-checked: it passes now, released

    refused = hw(root, "batches", "discard", batch, "--reason", "too late")

    assert refused.exit_code == 2
    assert says(refused, f"batch {batch} of raw.orders was released")
    assert says(refused, "its rules pass now")
    [record] = held_batches(root, "--all")
    assert record["state"] == "released" and record["decided_by"] is None


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["release", "0123456789abcdef", "--reason", "x"], "no held batch 0123456789abcdef"),
        (["release", "abc", "--reason", "x"], "too short"),
        (["release", "ID"], "release needs --reason"),
        (["discard", "ID", "--reason", "  "], "discard needs --reason"),
        (["release", "--reason", "x"], "which batch?"),
        (["--held", "--all"], "--held and --all"),
        (["--reason", "x"], "only with release or discard"),
        (["--table", "raw.ordres"], "did you mean raw.orders?"),
        (["--format", "yaml"], "expected table or json"),
        (["publish", "ID"], "Invalid value"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_a_wrong_request_is_one_clear_line_and_exit_2(
    held: tuple[Path, str], args: list[str], said: str
) -> None:
    root, batch = held
    args = [batch if a == "ID" else a for a in args]

    result = hw(root, "batches", *args)

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert says(result, said), result.output
    assert held_batches(root)[0]["state"] == "held"  # nothing was decided


def test_an_unknown_id_suggests_the_held_one(held: tuple[Path, str]) -> None:
    root, batch = held
    typo = batch[:-1] + ("0" if batch[-1] != "0" else "1")

    result = hw(root, "batches", "release", typo, "--reason", "x")

    assert result.exit_code == 2
    assert says(result, f"did you mean {batch} (raw.orders)?")


def test_a_prefix_of_two_batches_is_ambiguous(held: tuple[Path, str]) -> None:
    root, batch = held
    catalog = Catalog(project_catalog_url(load_project(root)))
    try:  # a second held batch whose id shares the first 10 characters
        catalog.hold("raw.orders", batch[:10] + "ffffff", reason="error rule(s) failed: x", now=NOW)
    finally:
        catalog.close()

    result = hw(root, "batches", "discard", batch[:10], "--reason", "x")

    assert result.exit_code == 2
    assert says(result, f"{batch[:10]} is ambiguous")
    assert says(result, batch) and says(result, batch[:10] + "ffffff")
    assert hw(root, "batches", "discard", batch, "--reason", "x").exit_code == 0  # whole id


def test_a_release_while_another_process_writes_the_warehouse_waits_for_the_next_run(
    held: tuple[Path, str],
) -> None:
    root, batch = held
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "sys.stdin.read()",
            str(root / ".headwater/warehouse.duckdb"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = hw(root, "batches", "release", batch, "--reason", "ok", "--format", "json")
    finally:
        holder.communicate("", timeout=30)

    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["action"] == "release" and answer["batch"]["state"] == "released"
    assert answer["batch"]["decided_by"] and answer["raw_view_stale"]
    assert count(root, "raw.orders") == 2  # not yet ...
    assert hw(root, "run").exit_code == 0
    assert count(root, "raw.orders") == 4 and count(root, "marts.order_log") == 4  # ... now


def test_json_of_a_decision(held: tuple[Path, str]) -> None:
    root, batch = held

    result = hw(
        root, "batches", "discard", batch, "--reason", "dup", "--by", "ops", "--format", "json"
    )

    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer == {
        "action": "discard",
        "batch": {
            **answer["batch"],
            "table": "raw.orders",
            "batch_id": batch,
            "state": "discarded",
            "decided_by": "ops",
            "decision_note": "dup",
        },
        "raw_view_stale": None,
    }
    assert set(answer["batch"]) == {
        "table",
        "batch_id",
        "state",
        "held_at",
        "rows",
        "reason",
        "failed_rules",
        "decided_at",
        "decided_by",
        "decision_note",
    }


def test_its_help_imports_nothing_heavy() -> None:
    assert heavy_imports(["batches", "--help"]) == []
