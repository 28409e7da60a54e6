"""End-to-end runs of the example project on DuckDB: land, build, audit, publish."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from headwater.errors import SpecError
from headwater.orchestrate import RunReport, Stores, run
from headwater.project import Project, load_project
from tests.conftest import NOW

# the rules the example data's deliberate defects fail (which rows: test_example_defects.py)
WARN_FAILURES = {
    "customers_id_unique",
    "customers_email_format",
    "customers_country_known",
    "events_type_known",
    "orders_amount_positive",
    "orders_customer_known",
    "orders_schema",
    "orders_updated_after_ordered",
}


def run_once(root: Path, **kwargs: Any) -> tuple[Project, RunReport]:
    project = load_project(root)
    stores = Stores.open(project)
    try:
        return project, run(project, stores, now=kwargs.pop("now", NOW), **kwargs)
    finally:
        stores.close()


def add_rule(sidecar: Path, rule: str) -> None:
    text = sidecar.read_text(encoding="utf-8")
    sidecar.write_text(text.replace("\nserve:", f"\n  - {rule}\nserve:"), encoding="utf-8")


def table_contents(root: Path) -> dict[str, Any]:
    """Every table and view of the warehouse, as sorted rows (opened read-only, like a user)."""
    with duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True) as conn:
        names = conn.sql(
            "select schema_name || '.' || table_name from duckdb_tables() "
            "union all select schema_name || '.' || view_name from duckdb_views() "
            "where not internal"
        ).fetchall()
        return {n: sorted(map(str, conn.sql(f"select * from {n}").fetchall())) for (n,) in names}


def test_full_run_lands_quarantines_builds_and_checks(built_shop: Any) -> None:
    project, _, report = built_shop
    assert report.ok
    landed = {x.table: x for x in report.landed}
    assert {t: x.quarantined for t, x in landed.items()} == {
        "raw.customers": 1,
        "raw.events": 3,
        "raw.orders": 2,
        "seed.countries": 0,
    }
    assert landed["seed.countries"].rows == 8
    assert landed["raw.orders"].reasons == {
        "amount: cannot cast '12,50' to DECIMAL(12, 2)": 1,
        "customer_id: required value is missing": 1,
    }
    assert landed["raw.events"].rows == 4_500 - 3
    assert {m.status for m in report.models.values()} == {"built"}
    assert set(report.models) == set(project.models)
    failed = {c.rule.name: c for c in report.checks if not c.passed}
    assert set(failed) == WARN_FAILURES
    assert all(not c.blocking for c in failed.values())


def test_models_are_readable_by_anyone_opening_the_warehouse(built_shop: Any) -> None:
    _, stores, _ = built_shop
    stores.engine.execute("checkpoint")
    rows = stores.engine.rows("select sum(event_count) from marts.events_daily")
    clean = stores.engine.rows("select count(*) from clean.events")
    assert rows == clean
    physical = stores.engine.rows(
        "select table_name from duckdb_tables() where schema_name = 'hw_marts' "
        "and table_name like 'events_daily__%'"
    )
    assert len(physical) == 1


def test_a_run_times_each_of_its_fixed_steps(shop: Path) -> None:
    """What a build costs besides its models, step by step (bench/transform prints them)."""
    _, first = run_once(shop)
    steps = {"start", "prepare", "tasks", "publish", "record", "zone_rows", "end"}
    assert steps <= set(first.timings) and all(v >= 0 for v in first.timings.values())
    assert first.timings["tasks"] >= first.timings["prepare"] + first.timings["publish"]
    project = load_project(shop)
    stores = Stores.open(project)
    try:  # a build alone refreshes the raw views first
        build = run(project, stores, now=NOW + timedelta(minutes=1), stages=("build",))
    finally:
        stores.close()
    assert "raw_views" in build.timings


def test_a_second_run_lands_nothing_and_changes_no_table(shop: Path) -> None:
    run_once(shop)
    before = table_contents(shop)
    project, second = run_once(shop, now=NOW + timedelta(minutes=5))
    assert second.ok
    assert sum(x.rows + x.quarantined for x in second.landed) == 0
    assert {m.status for m in second.models.values()} == {"up_to_date"}
    assert table_contents(shop) == before
    stores = Stores.open(project)
    try:
        assert all(len(stores.lake.snapshots(t)) > 0 for t in project.raw_tables)
        snapshots = {t: stores.lake.current_snapshot_id(t) for t in project.raw_tables}
    finally:
        stores.close()
    run_once(shop)
    stores = Stores.open(project)
    try:
        assert {t: stores.lake.current_snapshot_id(t) for t in project.raw_tables} == snapshots
    finally:
        stores.close()


def test_new_data_rebuilds_only_what_reads_it(shop: Path) -> None:
    run_once(shop)
    (shop / "data/customers/customers_2.csv").write_text(
        "customer_id,email,full_name,country,signed_up_at\n"
        "3001,new@example.com,New Person,DE,2026-10-31 10:00:00\n",
        encoding="utf-8",
    )
    _, report = run_once(shop)
    status = {name: m.status for name, m in report.models.items()}
    assert status["clean.customers"] == "built"
    assert status["marts.customer_orders"] == "built"
    assert status["clean.events"] == "up_to_date"
    assert status["marts.events_daily"] == "up_to_date"


def test_a_failing_error_rule_publishes_nothing(shop: Path) -> None:
    run_once(shop)
    before_all = table_contents(shop)
    before = before_all["marts.events_daily"]
    sidecar = shop / "models/marts/events_daily.yml"
    add_rule(sidecar, "{name: impossible, type: row_count, target: '*', threshold: 1000000}")
    (shop / "data/events/events_extra.jsonl").write_text(
        '{"event_id":"e-new","customer_id":1,"session_id":"s","event_type":"purchase",'
        '"page":"/","occurred_at":"2026-10-31T10:00:00Z"}\n',
        encoding="utf-8",
    )
    _, report = run_once(shop)
    assert report.models["clean.events"].status == "built"
    assert report.models["marts.events_daily"].status == "blocked"
    assert "impossible" in (report.models["marts.events_daily"].error or "")
    assert report.models["marts.funnel_daily"].status == "skipped"
    assert not report.ok
    after = table_contents(shop)
    assert after["marts.events_daily"] == before
    assert len(after["clean.events"]) == len(before_all["clean.events"]) + 1


def test_a_changed_model_that_fails_its_rule_leaves_the_old_version_published(shop: Path) -> None:
    run_once(shop)
    model = shop / "models/marts/events_daily.sql"
    model.write_text(
        model.read_text().replace("group by 1, 2", "group by 1, 2\nunion all select null, 'x', 1"),
        encoding="utf-8",
    )
    sidecar = shop / "models/marts/events_daily.yml"
    add_rule(sidecar, "{name: day_present, type: not_null, target: day}")
    project, report = run_once(shop)
    outcome = report.models["marts.events_daily"]
    assert outcome.status == "blocked"
    stores = Stores.open(project)
    try:
        published = stores.catalog.pointers("prod")["marts.events_daily"]
        assert published != outcome.physical
        exists = stores.engine.rows(
            "select count(*) from duckdb_tables() where schema_name || '.' || table_name = $t",
            {"t": outcome.physical},
        )
        assert exists == [(0,)]
        assert stores.engine.rows("select count(*) from marts.events_daily where day is null") == [
            (0,)
        ]
    finally:
        stores.close()


def test_a_failing_model_skips_its_downstream_and_the_rest_goes_on(shop: Path) -> None:
    (shop / "models/marts/broken.sql").write_text(
        "select cast(status as integer) as status_code from clean.orders\n", encoding="utf-8"
    )
    (shop / "models/marts/after_broken.sql").write_text(
        "select count(*) as n from marts.broken\n", encoding="utf-8"
    )
    _, report = run_once(shop)
    assert report.models["marts.broken"].status == "failed"
    assert report.models["marts.broken"].error.startswith("models/marts/broken.sql: ")
    assert "Conversion Error" in report.models["marts.broken"].error
    assert report.models["marts.after_broken"].status == "skipped"
    assert report.models["marts.funnel_daily"].status == "built"
    assert not report.ok


def test_a_failing_contract_error_rule_skips_the_models_that_read_it(shop: Path) -> None:
    contract = shop / "contracts/orders.yml"
    contract.write_text(
        contract.read_text().replace(
            "values: [placed, paid, shipped, delivered, cancelled, refunded]",
            "values: [placed, shipped]",
        ),
        encoding="utf-8",
    )
    _, report = run_once(shop)
    assert report.models["clean.orders"].status == "skipped"
    assert "raw.orders" in (report.models["clean.orders"].error or "")
    assert report.models["marts.customer_orders"].status == "skipped"
    assert report.models["marts.events_daily"].status == "built"
    blocking = [c.rule.name for c in report.checks if c.blocking]
    assert blocking == ["orders_status_valid"]


def test_run_history_is_kept_in_the_catalog(shop: Path) -> None:
    project, report = run_once(shop)
    stores = Stores.open(project)
    try:
        [latest] = stores.catalog.recent_runs(1)
        assert (latest["run_id"], latest["status"]) == (report.run_id, "success")
        tasks = stores.catalog.run_tasks(report.run_id)
        assert {t["task"] for t in tasks} >= {"raw.orders", "marts.events_daily"}
        history = stores.catalog.check_history("raw.customers")
        assert {h["rule"] for h in history} >= {"customers_id_unique"}
    finally:
        stores.close()


@pytest.mark.parametrize("stage", ["ingest", "build"])
def test_stages_run_alone(shop: Path, stage: str) -> None:
    if stage == "build":
        run_once(shop, stages=("ingest",))
    _, report = run_once(shop, stages=(stage,))
    assert bool(report.landed) is (stage == "ingest")
    assert bool(report.models) is (stage == "build")


def test_an_unreadable_source_file_is_quarantined_and_the_rest_lands(shop: Path) -> None:
    (shop / "data/orders/orders_broken.parquet").write_bytes(b"PAR1 this is not parquet")
    contract = shop / "contracts/orders.yml"
    contract.write_text(
        contract.read_text().replace(
            'path: "data/orders/*.csv", format: csv', 'path: "data/orders/*"'
        ),
        encoding="utf-8",
    )
    _, report = run_once(shop)
    assert "raw.orders" not in report.ingest_errors
    [landed] = [x for x in report.landed if x.table == "raw.orders"]
    [reason] = [r for r in landed.reasons if "orders_broken.parquet" in r]
    assert reason.startswith("data/orders/orders_broken.parquet: cannot read this parquet file")
    assert landed.rows > 0
    assert report.models["clean.orders"].status == "built"
    assert report.models["marts.events_daily"].status == "built"


def test_select_builds_only_the_chosen_models(shop: Path) -> None:
    run_once(shop)
    model = shop / "models/marts/events_daily.sql"
    model.write_text(
        model.read_text().replace(
            "count(*) as event_count", "count(*) as event_count, 1 as version"
        )
    )
    _, report = run_once(shop, stages=("build",), select=["marts.events_daily+"])
    assert set(report.models) == {"marts.events_daily", "marts.funnel_daily"}
    assert report.models["marts.events_daily"].status == "built"
    assert report.ok


def test_ephemeral_models_are_inlined_and_never_stored(shop: Path) -> None:
    (shop / "models/clean/paid_orders.sql").write_text(
        "/* headwater\nkind: ephemeral\n*/\n"
        "select order_id, amount from clean.orders where status = 'paid'\n"
    )
    (shop / "models/marts/paid_total.sql").write_text(
        "select count(*) as orders, sum(paid_orders.amount) as total from clean.paid_orders\n"
    )
    project, report = run_once(shop)
    assert report.models["clean.paid_orders"].status == "inlined"
    assert report.models["marts.paid_total"].status == "built"
    _, again = run_once(shop, stages=("build",), select=["marts.paid_total"], full_refresh=True)
    assert again.models["marts.paid_total"].status == "built"
    contents = table_contents(shop)
    assert not any("paid_orders" in name for name in contents)
    stores = Stores.open(project)
    try:
        expected = stores.engine.rows("select count(*) from clean.orders where status = 'paid'")
        assert stores.engine.rows("select orders from marts.paid_total") == expected
    finally:
        stores.close()


def test_a_model_reading_a_missing_column_names_file_line_and_column(shop: Path) -> None:
    (shop / "models/marts/typo.sql").write_text(
        "select order_id,\n       amout\nfrom clean.orders\n", encoding="utf-8"
    )
    _, report = run_once(shop)
    error = report.models["marts.typo"].error or ""
    assert error.startswith('models/marts/typo.sql:2: Binder Error: Referenced column "amout"')


def test_python_models_read_their_parameters_and_return_arrow(shop: Path) -> None:
    (shop / "models/marts/orders_by_weekday.py").write_text(
        '''
import pyarrow as pa
import pyarrow.compute as pc


def model(clean__orders):
    """Orders per weekday, computed in Python."""
    days = pc.day_of_week(clean__orders["ordered_at"])
    counts = pc.value_counts(days)
    return pa.table({"weekday": counts.field("values"), "orders": counts.field("counts")})
''',
        encoding="utf-8",
    )
    project, report = run_once(shop)
    outcome = report.models["marts.orders_by_weekday"]
    assert outcome.status == "built" and outcome.rows == 7
    assert project.models["marts.orders_by_weekday"].depends_on == ("clean.orders",)
    assert (
        project.models["marts.orders_by_weekday"].config.description
        == "Orders per weekday, computed in Python."
    )
    stores = Stores.open(project)
    try:
        total = stores.engine.rows("select sum(orders) from marts.orders_by_weekday")
        assert total == stores.engine.rows("select count(*) from clean.orders")
    finally:
        stores.close()


def test_a_python_model_that_raises_is_the_users_error_and_skips_only_downstream(
    shop: Path,
) -> None:
    (shop / "models/marts/broken_py.py").write_text(
        "def model(clean__orders):\n    rate = 1 / 0\n    return rate\n", encoding="utf-8"
    )
    (shop / "models/marts/after_py.sql").write_text("select * from marts.broken_py\n")
    _, report = run_once(shop)
    error = report.models["marts.broken_py"].error or ""
    assert error.startswith("models/marts/broken_py.py:2: the model raised ZeroDivisionError")
    assert 'broken_py.py", line 2, in model' in error and "rate = 1 / 0" in error
    assert report.models["marts.after_py"].status == "skipped"
    assert report.models["marts.funnel_daily"].status == "built"


def test_a_model_rule_on_a_missing_column_is_refused_when_the_project_loads(shop: Path) -> None:
    sidecar = shop / "models" / "marts" / "events_daily.yml"
    sidecar.write_text(sidecar.read_text().replace('"day, event_type"', '"day, event_typ"'))

    with pytest.raises(SpecError) as caught:
        load_project(shop)

    assert caught.value.render() == (
        "models/marts/events_daily.yml:5: rules[0].target: rule 'one_row_per_day_and_type': "
        "target column 'event_typ' does not exist in marts.events_daily; did you mean 'event_type'?"
    )


def test_a_rule_on_a_column_only_the_build_knows_fails_the_model_with_its_line(
    shop: Path,
) -> None:
    # `count(*)` has no name the SQL gives: the column is checked once the version exists
    model = shop / "models" / "marts" / "events_daily.sql"
    model.write_text(model.read_text().replace("count(*) as event_count", "count(*)"))
    sidecar = shop / "models" / "marts" / "events_daily.yml"
    sidecar.write_text(sidecar.read_text().replace('"day, event_type"', '"day, event_typ"'))

    _, report = run_once(shop)

    outcome = report.models["marts.events_daily"]
    assert outcome.status == "failed"
    assert outcome.error == (
        "models/marts/events_daily.yml:5: rules[0].target: rule 'one_row_per_day_and_type': "
        "target column 'event_typ' does not exist in marts.events_daily; did you mean 'event_type'?"
    )
    assert report.models["marts.funnel_daily"].status == "skipped"


def test_a_contract_rule_naming_a_missing_column_is_refused_at_load(shop: Path) -> None:
    contract = shop / "contracts" / "orders.yml"
    text = contract.read_text().replace("to: raw.customers.customer_id", "to: raw.customers.id")
    contract.write_text(text)

    with pytest.raises(SpecError) as caught:
        load_project(shop)

    assert caught.value.render() == (
        "contracts/orders.yml:25: rules[4].to: rule 'orders_customer_known': to column 'id' "
        "does not exist in raw.customers; the columns are: customer_id, email, full_name, "
        "country, signed_up_at"
    )


def test_a_contract_rule_that_cannot_run_fails_the_table_not_the_run(shop: Path) -> None:
    contract = shop / "contracts" / "orders.yml"
    rule = (
        '  - {name: broken_sql, type: custom_sql, target: "*", '
        'sql: "select * from this where nope > 1"}\n'
    )
    contract.write_text(contract.read_text() + rule)

    _, report = run_once(shop)

    error = report.ingest_errors["raw.orders"]
    assert error.startswith("contracts/orders.yml") and "nope" in error, error
    assert not report.ok
    assert report.models["clean.orders"].status == "skipped"
    assert report.models["clean.events"].status == "built"
