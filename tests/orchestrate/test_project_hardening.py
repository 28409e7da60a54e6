"""What a real project hit on its first week (issue #11, points 1-6 and 10): rules that read
other models, rule edits, a build before any ingest, `check` after a blocked run, model files
headwater must place, output a CI log can read, and a Python model that exits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.badinput.harness import Outcome, assert_no_traceback, hw, probe_project, write

# marts.a_orders is ready in the first wave (it reads raw); the model its rule points at is
# two levels down: only a dependency on it makes the audit wait for it
CUSTOMERS_STAGE = "select distinct customer_id from raw.orders\n"
CUSTOMERS = "select customer_id from clean.customers_stage\n"
A_ORDERS = "select order_id, customer_id from raw.orders\n"
RI_RULE = """\
rules:
  - {name: orders_customer_known, type: referential_integrity, target: customer_id,
     to: marts.z_customers.customer_id}
"""


@pytest.fixture
def referencing(tmp_path: Path) -> Path:
    root = probe_project(tmp_path / "probe")
    settings = root / "headwater.yml"
    settings.write_text(settings.read_text() + "defaults: {threads: 1}\n")
    write(root, "models/clean/customers_stage.sql", CUSTOMERS_STAGE)
    write(root, "models/marts/z_customers.sql", CUSTOMERS)
    write(root, "models/marts/a_orders.sql", A_ORDERS)
    write(root, "models/marts/a_orders.yml", RI_RULE)
    return root


def run_json(root: Path, *args: str) -> tuple[Outcome, dict]:
    outcome = hw(root, *args, "--format", "json")
    assert_no_traceback(outcome)
    start = outcome.output.index("{\n")
    return outcome, json.loads(outcome.output[start:])


def models(summary: dict) -> dict[str, dict]:
    return {m["model"]: m for m in summary["models"]}


def test_a_rule_pointing_at_another_model_waits_for_it_on_a_fresh_project(
    referencing: Path,
) -> None:
    outcome, summary = run_json(referencing, "run")

    assert outcome.code == 0, outcome
    checks = {c["rule"]: c for c in summary["checks"]}
    assert checks["orders_customer_known"]["passed"] is True


def test_the_audit_reads_the_new_version_of_the_model_its_rule_points_at(
    referencing: Path,
) -> None:
    assert hw(referencing, "run").code == 0
    # the customers model now leaves out customer 10; a_orders itself is unchanged
    write(referencing, "models/marts/z_customers.sql", CUSTOMERS + "where customer_id <> 10\n")

    outcome, summary = run_json(referencing, "run")

    assert outcome.code == 1
    built = models(summary)
    assert built["marts.z_customers"]["status"] == "built"
    assert built["marts.a_orders"]["status"] == "blocked"
    assert "orders_customer_known" in built["marts.a_orders"]["error"]
    assert "stays published" in built["marts.a_orders"]["error"]


def test_when_the_referenced_model_is_blocked_the_message_says_so(referencing: Path) -> None:
    write(
        referencing,
        "models/marts/z_customers.yml",
        "rules:\n  - {name: none_allowed, type: row_count, target: '*', threshold: 0, max: 0}\n",
    )

    outcome, summary = run_json(referencing, "run")

    assert outcome.code == 1
    built = models(summary)
    assert built["marts.z_customers"]["status"] == "blocked"
    assert built["marts.a_orders"]["status"] == "skipped"
    assert built["marts.a_orders"]["error"] == (
        "rule 'orders_customer_known' reads marts.z_customers, which was blocked in this run"
    )
    assert "does not exist" not in outcome.output


def test_a_rule_pointing_at_a_table_that_does_not_exist_is_refused_at_load(
    referencing: Path,
) -> None:
    write(referencing, "models/marts/a_orders.yml", RI_RULE.replace("z_customers", "z_customer"))

    outcome = hw(referencing, "run")

    assert outcome.code == 3
    assert "models/marts/a_orders.yml:3: rules[0].to: table 'marts.z_customer' does not exist" in (
        outcome.output
    )
    assert "did you mean 'marts.z_customers'?" in outcome.output


def test_an_added_rule_audits_the_published_version_without_rebuilding_it(tmp_path: Path) -> None:
    root = probe_project(tmp_path / "probe")
    assert hw(root, "run").code == 0
    sidecar = root / "models/clean/orders.yml"
    original = sidecar.read_text()
    sidecar.write_text(
        original + "  - {name: only_paid, type: valid_values, target: status, values: [paid]}\n"
    )

    outcome, summary = run_json(root, "run")

    assert outcome.code == 1
    built = models(summary)
    assert built["clean.orders"]["status"] == "blocked"
    assert "only_paid" in built["clean.orders"]["error"]
    assert not any(m["status"] == "built" for m in summary["models"])  # nothing was rebuilt
    assert {c["rule"]: c["passed"] for c in summary["checks"]}["only_paid"] is False

    # made a warning, it passes the audit: the version is published as it was, audited
    sidecar.write_text(
        original + "  - {name: only_paid, type: valid_values, target: status, values: [paid], "
        "severity: warn}\n"
    )
    outcome, summary = run_json(root, "run")
    assert outcome.code == 0, outcome
    assert models(summary)["clean.orders"]["audited"] is True
    assert models(summary)["marts.orders_daily"]["status"] == "up_to_date"

    # and a run with nothing changed audits nothing again
    outcome, summary = run_json(root, "run")
    assert outcome.code == 0 and summary["checks"] == []
    assert not any(m["audited"] for m in summary["models"])


def test_a_misspelt_rule_target_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    root = probe_project(tmp_path / "probe")
    sidecar = root / "models/clean/orders.yml"
    sidecar.write_text(sidecar.read_text().replace("target: order_id", "target: order_idd"))

    outcome = hw(root, "build")

    assert outcome.code == 3
    assert (
        "models/clean/orders.yml:3: rules[0].target: rule 'clean_orders_unique': "
        "target column 'order_idd' does not exist in clean.orders; did you mean 'order_id'?"
    ) in outcome.output
    assert not (root / ".headwater/warehouse.duckdb").exists()


def test_a_grain_naming_a_missing_column_is_refused_at_load(tmp_path: Path) -> None:
    root = probe_project(tmp_path / "probe")
    model = root / "models/clean/orders.sql"
    model.write_text(model.read_text().replace("grain: [order_id]", "grain: [order_no]"))

    outcome = hw(root, "run")

    assert outcome.code == 3
    assert "models/clean/orders.sql:3: grain: grain: 'order_no' is not a column" in outcome.output
    assert "did you mean 'order_id'?" in outcome.output


def test_build_before_any_ingest_builds_on_the_declared_columns(tmp_path: Path) -> None:
    root = probe_project(tmp_path / "probe")

    outcome = hw(root, "build")

    assert_no_traceback(outcome)
    assert outcome.code == 0, outcome
    with duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True) as conn:
        columns = [r[0] for r in conn.execute("describe raw.orders").fetchall()]
        assert columns[:5] == ["order_id", "customer_id", "status", "amount", "ordered_at"]
        assert conn.execute("select count(*) from clean.orders").fetchone() == (0,)


def test_build_before_ingest_of_an_inferred_contract_says_to_ingest_first(
    tmp_path: Path,
) -> None:
    root = probe_project(tmp_path / "probe")
    contract = root / "contracts/events.yml"
    contract.write_text(contract.read_text().split("columns:")[0])  # columns are inferred
    write(root, "models/clean/events.sql", "select * from raw.events\n")

    outcome, summary = run_json(root, "build")

    assert outcome.code == 1
    error = models(summary)["clean.events"]["error"]
    assert "raw.events has no data yet" in error and "run `headwater ingest` first" in error
    assert models(summary)["clean.orders"]["status"] == "built"


def test_check_after_a_blocked_run_names_what_is_not_published_and_fails(
    tmp_path: Path,
) -> None:
    root = probe_project(tmp_path / "probe")
    assert hw(root, "run").code == 0
    write(
        root,
        "models/clean/orders.sql",
        (root / "models/clean/orders.sql").read_text() + "where order_id > 2\n",
    )
    write(
        root,
        "models/clean/orders.yml",
        "rules:\n  - {name: few_orders, type: row_count, target: '*', threshold: 0, max: 5}\n",
    )
    assert hw(root, "run").code == 1

    outcome = hw(root, "check")

    assert_no_traceback(outcome)
    assert outcome.code == 1
    assert "not published clean.orders: blocked in the last build" in outcome.output
    assert "few_orders" in outcome.output
    assert "not published marts.orders_daily: skipped in the last build" in outcome.output
    assert "prod serves its previous version" in outcome.output
    answer = json.loads(hw(root, "check", "--format", "json").output)
    assert answer["ok"] is False
    assert [u["model"] for u in answer["unpublished"]] == ["clean.orders", "marts.orders_daily"]


def test_check_before_any_run_says_nothing_is_published(tmp_path: Path) -> None:
    root = probe_project(tmp_path / "probe")

    outcome = hw(root, "check")

    assert_no_traceback(outcome)
    assert outcome.code == 1
    assert "not published clean.orders: never built" in outcome.output


def test_models_in_nested_folders_take_the_zone_of_their_first_folder(tmp_path: Path) -> None:
    root = probe_project(tmp_path / "probe")
    write(root, "models/marts/core/customers.sql", "select distinct customer_id from raw.orders\n")
    write(root, "models/marts/core/customers.yml", "description: Customers.\n")
    write(root, "models/README.md", "notes are not models\n")

    outcome, summary = run_json(root, "run")

    assert outcome.code == 0, outcome
    assert models(summary)["marts.customers"]["status"] == "built"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("models/customers.sql", "models/customers.sql: a model belongs in a zone folder"),
        ("models/orders.py", "models/orders.py: a model belongs in a zone folder"),
        ("models/raw/orders2.sql", "models/raw/orders2.sql: the raw zone holds landed data"),
        ("models/clean/2fast.sql", "models/clean/2fast.sql: a model's zone folder and file name"),
        ("models/clean/order.yml", "models/clean/order.yml: this sidecar has no model beside it"),
        ("models/clean/orders.yaml", "models/clean/orders.yaml: a model's sidecar is named"),
        ("models/marts/x/orders.sql", "models/marts/x/orders.sql: model marts.orders"),
        ("contracts/orders.yaml", "contracts/orders.yaml: contract 'orders' is defined twice"),
        ("contracts/old/orders.yml", "contracts/old/orders.yml: contracts are read from"),
    ],
    ids=lambda v: v if v.startswith(("models", "contracts")) and ":" not in v else "",
)
def test_a_file_headwater_cannot_place_is_an_error_naming_it(
    tmp_path: Path, name: str, expected: str
) -> None:
    root = probe_project(tmp_path / "probe")
    if name.startswith("contracts"):
        write(root, name, (root / "contracts/orders.yml").read_text())
    elif name.endswith((".yml", ".yaml")):
        write(root, name, "description: x\n")
    elif name == "models/marts/x/orders.sql":  # two files name marts.orders
        write(root, "models/marts/orders.sql", "select 1 as one\n")
        write(root, name, "select 2 as two\n")
    else:
        write(root, name, "select 1 as one\n")

    outcome = hw(root, "run")

    assert_no_traceback(outcome)
    assert outcome.code == 3, outcome
    assert expected in " ".join(outcome.output.split()), outcome


def test_a_removed_or_moved_model_leaves_no_view_behind(tmp_path: Path) -> None:
    root = probe_project(tmp_path / "probe")
    assert hw(root, "run").code == 0
    (root / "models/marts/orders_daily.sql").rename(root / "models/clean/orders_daily.sql")

    outcome, summary = run_json(root, "run")

    assert outcome.code == 0, outcome
    assert summary["removed"] == ["marts.orders_daily"]
    with duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True) as conn:
        views = {
            f"{s}.{v}"
            for s, v in conn.execute(
                "select schema_name, view_name from duckdb_views() where not internal"
            ).fetchall()
        }
    assert "clean.orders_daily" in views and "marts.orders_daily" not in views


def test_names_are_never_cut_in_an_80_column_log(tmp_path: Path) -> None:
    root = probe_project(tmp_path / "probe")
    shutil.move(root / "models/clean/orders.yml", root / "models/clean/orders.yml.bak")
    long_a = "clean_orders_customer_id_is_present_for_every_order"
    long_b = "clean_orders_customer_id_is_present_for_every_refund"
    write(
        root,
        "models/clean/orders.yml",
        f"rules:\n  - {{name: {long_a}, type: not_null, target: customer_id}}\n"
        f"  - {{name: {long_b}, type: not_null, target: customer_id, severity: warn}}\n",
    )
    (root / "models/clean/orders.yml.bak").unlink()

    outcome = hw(root, "run")

    assert outcome.code == 0, outcome
    # wrapped inside their cells, never cut: every piece of both names is there
    assert "…" not in outcome.output
    cells = [part for line in outcome.output.splitlines() for part in line.split()]
    for name in (long_a, long_b):
        assert any(name.startswith(c) and len(c) > 20 for c in cells), outcome.output
        assert any(name.endswith(c) and len(c) > 10 for c in cells), outcome.output


def test_a_python_model_that_exits_is_the_models_failure(tmp_path: Path) -> None:
    root = probe_project(tmp_path / "probe")
    write(
        root,
        "models/marts/quits.py",
        "import sys\n\ndef model(clean__orders):\n    sys.exit(3)\n",
    )

    outcome, summary = run_json(root, "run")

    assert outcome.code == 1
    error = models(summary)["marts.quits"]["error"]
    assert "models/marts/quits.py:4" in error and "called sys.exit(3)" in error
    assert models(summary)["marts.orders_daily"]["status"] == "built"
    status = hw(root, "status")
    assert "failed" in status.output and "success" not in status.output
