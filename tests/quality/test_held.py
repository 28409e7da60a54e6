"""A batch a blocking contract rule fails on is held out of raw (and of every model) until its
rules pass: nothing leaks downstream on a later run, and nothing is lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from headwater.orchestrate import RunReport, Stores, run
from headwater.project import load_project
from tests.conftest import NOW


def run_once(root: Path) -> RunReport:
    project = load_project(root)
    stores = Stores.open(project)
    try:
        return run(project, stores, now=NOW)
    finally:
        stores.close()


def sql(root: Path, query: str) -> Any:
    with duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True) as conn:
        return conn.sql(query).fetchall()


def test_a_failed_batch_is_held_until_its_rule_passes(shop: Path) -> None:
    contract = shop / "contracts" / "orders.yml"
    strict = "min: 0, max: 10000, severity: error}"
    contract.write_text(contract.read_text().replace("min: 0, max: 10000, severity: warn}", strict))

    first = run_once(shop)

    assert not first.ok
    [(batch, why)] = first.held["raw.orders"].items()
    assert why == "error rule(s) failed: orders_amount_positive"
    assert sql(shop, "select count(*) from raw.orders") == [(0,)]
    assert first.models["clean.orders"].status == "skipped"

    second = run_once(shop)  # nothing new: the held batch must not leak into clean.orders

    assert second.held["raw.orders"] == {batch: why}
    assert sql(shop, "select count(*) from clean.orders") == [(0,)]

    contract.write_text(contract.read_text().replace(strict, "min: 0, max: 10000, severity: warn}"))
    third = run_once(shop)  # the rule is a warning now: the batch is released, nothing lost

    assert third.held["raw.orders"] == {}
    landed = sql(shop, "select count(*) from raw.orders")[0][0]
    assert landed == 24_000 - 2  # every order but the two quarantined records
    assert sql(shop, "select count(*) from clean.orders")[0][0] == landed
    assert third.ok


def test_a_released_batch_reaches_incremental_models_whole(shop: Path) -> None:
    contract = shop / "contracts" / "events.yml"
    strict = "purchase], severity: error}"
    relaxed = contract.read_text()
    contract.write_text(relaxed.replace("purchase], severity: warn}", strict))
    sidecar = shop / "models" / "marts" / "events_daily.yml"  # may be empty for this test
    sidecar.write_text(sidecar.read_text().replace('"*", threshold: 1}', '"*", threshold: 0}'))
    assert run_once(shop).models["marts.events_daily"].status == "skipped"
    again = run_once(shop)  # built without the held batch: its days are done, and empty
    assert again.models["marts.events_daily"].status == "built"
    assert sql(shop, "select count(*) from marts.events_daily") == [(0,)]

    contract.write_text(relaxed)
    report = run_once(shop)

    assert report.held["raw.events"] == {}
    daily = sql(shop, "select day, event_type, event_count from marts.events_daily order by all")
    expected = sql(
        shop,
        "select date_trunc('day', occurred_at), event_type, count(*) from clean.events "
        "group by all order by all",
    )
    assert daily == expected
    assert sum(n for _, _, n in daily) == sql(shop, "select count(*) from raw.events")[0][0] - 2
