"""Forward-only models: a change of the query is applied to the one table in place (added
columns by ALTER TABLE ADD COLUMN), the intervals already written are kept, and the plan says
so; a retyped column is refused with what to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from tests.badinput.harness import csv_contract, hw, write

HEAD = "/* headwater\nkind: incremental_by_time\ntime_column: day\nforward_only: true\n*/\n"
DAILY = (
    "select cast(at as date) as day, sum(amount) as total{extra}\nfrom raw.orders\n"
    "where at >= :start and at < :end\ngroup by 1\n"
)


def project(root: Path) -> Path:
    write(root, "headwater.yml", "name: t\n")
    contract = csv_contract("shop.orders", id="bigint", amount="bigint", at="timestamptz")
    watermark = 'watermark: "at - interval 1 hour"\n'  # the times each batch covers
    write(root, "contracts/orders.yml", contract.replace("delivery:", watermark + "delivery:"))
    write(
        root, "data/a.csv", "id,amount,at\n1,10,2026-01-01T10:00:00Z\n2,20,2026-01-02T10:00:00Z\n"
    )
    write(root, "models/marts/daily.sql", HEAD + DAILY.format(extra=""))
    return root


def read(root: Path, query: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(query).fetchall()


def versions(root: Path) -> list[tuple[Any, ...]]:
    """The model's versions (not the copies a release keeps of data written over)."""
    return read(
        root,
        "select table_name from duckdb_tables() where schema_name = 'hw_marts' "
        "and table_name similar to 'daily__[0-9a-f]+' order by all",
    )


def test_an_added_column_is_applied_in_place_and_old_intervals_are_kept(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert hw(root, "run").code == 0
    tables = versions(root)
    write(root, "models/marts/daily.sql", HEAD + DAILY.format(extra=", count(*) as orders"))

    planned = json.loads(hw(root, "plan", "--format", "json").output)
    [change] = planned["changes"]
    assert change["model"] == "marts.daily" and change["change"] == "non-breaking"
    assert "column orders added" in change["reasons"]
    assert any(
        "forward-only: applied to its table in place (ALTER TABLE ADD COLUMN orders)" in r
        for r in change["reasons"]
    )
    assert planned["build"] == ["marts.daily"]
    # its intervals are kept: nothing to write again
    assert planned["intervals"]["marts.daily"]["intervals"] == 0

    outcome = hw(root, "apply")
    assert outcome.code == 0, outcome
    assert versions(root) == tables and len(tables) == 1  # the same table: no new version
    log = json.loads(hw(root, "releases", "--format", "json").output)
    assert [r["kind"] for r in log] == ["apply", "run"]  # released, though no pointer moved
    assert (
        log[0]["models"]["marts.daily"]["physical"] == log[1]["models"]["marts.daily"]["physical"]
    )
    # the intervals written before keep what the old query wrote
    assert read(root, "select * from marts.daily order by day") == [
        (_day(1), 10, None),
        (_day(2), 20, None),
    ]
    write(root, "data/b.csv", "id,amount,at\n3,30,2026-01-03T10:00:00Z\n4,5,2026-01-03T11:00:00Z\n")
    assert hw(root, "ingest").code == 0
    write(root, "models/marts/daily.sql", HEAD + DAILY.format(extra=", count(*) as orders, 1 as x"))
    planned = json.loads(hw(root, "plan", "--format", "json").output)
    assert planned["intervals"]["marts.daily"] == {
        "intervals": 1,  # the day the new batch touched
        "restated": 0,
        "from": "2026-01-03T00:00:00+00:00",
        "to": "2026-01-04T00:00:00+00:00",
        "unknown": None,
    }
    write(root, "models/marts/daily.sql", HEAD + DAILY.format(extra=", count(*) as orders"))
    assert hw(root, "run").code == 0
    assert read(root, "select * from marts.daily order by day") == [
        (_day(1), 10, None),
        (_day(2), 20, None),
        (_day(3), 35, 2),  # a new interval: the new query
    ]
    assert versions(root) == tables


def test_a_retyped_column_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert hw(root, "run").code == 0
    before = read(root, "select * from marts.daily order by day")
    write(
        root,
        "models/marts/daily.sql",
        HEAD
        + DAILY.format(extra="").replace("sum(amount) as total", "'x' || sum(amount) as total"),
    )
    outcome = hw(root, "apply")
    flat = " ".join(outcome.output.split())
    assert outcome.code == 1, outcome
    assert "marts.daily is forward_only and its query changed the type of total" in flat
    assert "--full-refresh" in flat
    assert read(root, "select * from marts.daily order by day") == before


def test_forward_only_on_a_table_model_is_refused_at_load(tmp_path: Path) -> None:
    root = project(tmp_path)
    write(root, "models/marts/daily.sql", "/* headwater\nforward_only: true\n*/\nselect 1 as one\n")
    outcome = hw(root, "plan")
    assert outcome.code == 3, outcome
    assert "forward_only is for incremental_by_time and append models" in " ".join(
        outcome.output.split()
    )


def _day(n: int) -> Any:
    from datetime import date

    return date(2026, 1, n)
