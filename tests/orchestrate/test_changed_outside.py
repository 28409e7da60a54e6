"""A published version changed outside headwater (rows deleted or added, a table or view
dropped) is noticed on the next run and rebuilt, an incremental one from scratch."""

from __future__ import annotations

from pathlib import Path

import duckdb

from tests.orchestrate.test_run import run_once, table_contents


def tamper(root: Path, *statements: str) -> None:
    with duckdb.connect(str(root / ".headwater/warehouse.duckdb")) as conn:
        for statement in statements:
            conn.execute(statement)


def test_changed_versions_are_rebuilt_and_say_why(shop: Path) -> None:
    _, first = run_once(shop)
    before = table_contents(shop)
    physical = {name: outcome.physical for name, outcome in first.models.items()}
    daily = physical["marts.events_daily"]  # incremental_by_time: continuing would keep the gap
    tamper(
        shop,
        f"delete from {daily} where day < (select max(day) - interval 5 days from {daily})",
        f"insert into {physical['clean.customers']} select * from {physical['clean.customers']} "
        "limit 3",
        f"drop table {physical['marts.funnel_daily']}",
        "drop view clean.orders",
    )

    _, second = run_once(shop)
    assert second.ok
    rebuilt = {n: o.error for n, o in second.models.items() if o.status == "built"}
    assert set(rebuilt) == {
        "marts.events_daily",
        "clean.customers",
        "marts.funnel_daily",
        "clean.orders",
    }
    rows = first.models["clean.customers"].rows
    assert rebuilt["clean.customers"] == (
        f"{physical['clean.customers']} had {rows + 3:,} rows, the catalog recorded {rows:,} "
        "(changed outside headwater, or by a run killed before it recorded its build)"
    )
    assert rebuilt["marts.funnel_daily"].startswith(f"{physical['marts.funnel_daily']} is missing")
    assert rebuilt["clean.orders"].startswith("its view clean.orders is missing")
    assert "the catalog recorded" in (rebuilt["marts.events_daily"] or "")
    assert second.models["marts.events_daily"].rows == first.models["marts.events_daily"].rows
    assert table_contents(shop) == before

    _, third = run_once(shop)
    assert {o.status for o in third.models.values()} == {"up_to_date"}
