"""`on_fail: quarantine`: exactly the failing rows go aside, with the rules they failed; the
other rows proceed, and the run counts both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from headwater.errors import ModelError
from headwater.orchestrate import RunReport, Stores, run
from headwater.project import load_project
from tests.conftest import NOW


def run_once(root: Path, **kwargs: Any) -> RunReport:
    project = load_project(root)
    stores = Stores.open(project)
    try:
        return run(project, stores, now=kwargs.pop("now", NOW), **kwargs)
    finally:
        stores.close()


def sql(root: Path, query: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True) as conn:
        return conn.sql(query).fetchall()


def test_a_contract_rule_quarantines_failing_records_before_they_land(shop: Path) -> None:
    contract = shop / "contracts" / "orders.yml"
    contract.write_text(
        contract.read_text().replace(
            "min: 0, max: 10000, severity: warn}", "min: 0, max: 10000, on_fail: quarantine}"
        )
    )

    report = run_once(shop)

    landed = {x.table: x for x in report.landed}["raw.orders"]
    assert landed.quarantined == 3  # the two broken records, and the negative amount
    assert landed.reasons["rule orders_amount_positive: amount = -5.00"] == 1
    assert sql(shop, "select count(*) from raw.orders where amount < 0") == [(0,)]
    [result] = [c for c in report.checks if c.rule.name == "orders_amount_positive"]
    assert result.passed and result.metric == 0  # what landed passes
    assert report.ok


def test_a_model_rule_routes_exactly_the_failing_rows(shop: Path) -> None:
    (shop / "models" / "clean" / "orders.yml").write_text(
        "rules:\n"
        "  - {name: known_status, type: valid_values, target: status,\n"
        "     values: [paid, shipped, delivered], on_fail: quarantine}\n"
        "  - {name: has_amount, type: not_null, target: amount, on_fail: quarantine}\n"
    )

    report = run_once(shop)

    outcome = report.models["clean.orders"]
    everything = sql(shop, "select count(*) from raw.orders")[0][0]
    expected_aside = sql(
        shop,
        "select count(*) from (select order_id, status, amount from raw.orders "
        "where status <> 'test' "
        "qualify row_number() over (partition by order_id order by updated_at desc) = 1) "
        "where status not in ('paid', 'shipped', 'delivered') or amount is null",
    )[0][0]
    assert expected_aside > 0
    assert outcome.quarantined == expected_aside
    assert outcome.rows + outcome.quarantined <= everything
    assert sql(shop, "select count(*) from clean.orders__quarantine") == [(expected_aside,)]
    assert sql(
        shop,
        "select count(*) from clean.orders where status in ('placed', 'cancelled', 'refunded')",
    ) == [(0,)]
    reasons = dict(
        sql(shop, "select status, any_value(_hw_reason) from clean.orders__quarantine group by 1")
    )
    assert reasons["placed"] == "rule known_status: status = placed"
    assert report.summary()["quarantined"]["clean.orders"] == expected_aside
    assert report.ok


def test_quarantine_is_refused_where_rows_cannot_be_routed(shop: Path) -> None:
    (shop / "models" / "marts" / "funnel_daily.yml").write_text(
        "rules:\n  - {name: r, type: uniqueness, target: day, on_fail: quarantine}\n"
    )
    with pytest.raises(Exception, match="on_fail: quarantine routes failing rows"):
        load_project(shop)

    sql_file = shop / "models" / "marts" / "funnel_daily.sql"
    sql_file.write_text(sql_file.read_text().replace("kind: table", "kind: view"))
    (shop / "models" / "marts" / "funnel_daily.yml").write_text(
        "rules:\n  - {name: r, type: not_null, target: day, on_fail: quarantine}\n"
    )
    with pytest.raises(ModelError) as caught:
        load_project(shop)
    assert caught.value.render().startswith(
        "models/marts/funnel_daily.yml:2: rules[0].on_fail: rule 'r': on_fail: quarantine "
        "applies to models of kind table or incremental_by_time, not view"
    )
