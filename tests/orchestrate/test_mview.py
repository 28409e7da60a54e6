"""Materialized views: a kept result refreshed when its input changes — only the buckets new
(and late) input rows touch, for an aggregate by time over an incremental_by_time model —
and always the same table a full recompute makes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from headwater.orchestrate import RunReport, Stores, run
from headwater.orchestrate.materialize.mview import buckets, floor, spans
from headwater.project import load_project

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 4, 1, tzinfo=UTC)
CONTRACT = """source: test.events
schema_version: "1"
delivery: batch
watermark: "occurred_at - interval 1 hour"
privacy_level: internal
connector: {kind: files, path: "data/*.jsonl"}
primary_key: [event_id]
columns:
  - {name: event_id, type: varchar, nullable: false}
  - {name: kind, type: varchar}
  - {name: amount, type: integer}
  - {name: occurred_at, type: timestamptz, nullable: false}
"""
EVENTS = """/* headwater
kind: incremental_by_time
time_column: occurred_at
start: 2026-01-01
*/
select event_id, kind, amount, occurred_at from raw.events
where occurred_at >= :start and occurred_at < :end
"""
VIEWS = {
    # by day, by month (buckets wider than an interval), by the time column itself
    "daily": "select date_trunc('day', occurred_at) as day, kind, count(*) as n, "
    "sum(amount) as total from clean.events group by 1, 2",
    "monthly": "select kind, date_trunc('month', occurred_at) as month, max(amount) as top "
    "from clean.events group by all having count(*) > 1",
    "moments": "select occurred_at, count(*) as n from clean.events group by occurred_at",
    # not by time: recomputed whole, still right
    "kinds": "select kind, count(*) as n from clean.events group by kind",
}


def events(first: int, count: int, day: int) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"e{first + i}",
            "kind": "ab"[i % 2],
            "amount": (first + i) % 17,
            "occurred_at": (T0 + timedelta(days=day, minutes=37 * i)).isoformat(),
        }
        for i in range(count)
    ]


def project(root: Path) -> Path:
    files = {
        "headwater.yml": "name: mv\n",
        "contracts/events.yml": CONTRACT,
        "models/clean/events.sql": EVENTS,
        **{
            f"models/marts/{name}.sql": f"/* headwater\nkind: materialized_view\n*/\n{sql}\n"
            for name, sql in VIEWS.items()
        },
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    land(root, "a", [e for d in range(60) for e in events(d * 100, 20, d)])
    return root


def land(root: Path, name: str, rows: list[dict[str, Any]]) -> None:
    data = root / "data"
    data.mkdir(exist_ok=True)
    (data / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def build(root: Path, *, full_refresh: bool = False) -> RunReport:
    loaded = load_project(root)
    stores = Stores.open(loaded)
    try:
        report = run(loaded, stores, now=NOW, full_refresh=full_refresh)
    finally:
        stores.close()
    assert report.ok, report
    return report


def table(root: Path, name: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(f"select * from marts.{name} order by all").fetchall()


def recomputed(root: Path, name: str) -> list[tuple[Any, ...]]:
    """The view's query run now over what clean.events shows."""
    with duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True) as conn:
        conn.execute("set TimeZone = 'UTC'")
        return conn.execute(f"select * from ({VIEWS[name]}) order by all").fetchall()


def test_only_the_buckets_new_and_late_rows_touch_are_refreshed(tmp_path: Path) -> None:
    root = project(tmp_path)
    first = build(root)
    for name in VIEWS:
        assert first.models[f"marts.{name}"].written == []  # a first build: whole
        assert table(root, name) == recomputed(root, name)
    # a new day, and late rows for day 10
    land(root, "b", events(10_000, 5, 60) + events(20_000, 3, 10))
    second = build(root)
    daily = second.models["marts.daily"]
    day = T0.replace(tzinfo=None)  # intervals are kept in UTC without a zone
    assert daily.written == [
        (day + timedelta(days=10), day + timedelta(days=11)),
        (day + timedelta(days=60), day + timedelta(days=61)),
    ]
    assert daily.intervals == 2
    monthly = second.models["marts.monthly"].written
    assert monthly == [(day, day.replace(month=2)), (day.replace(month=3), day.replace(month=4))]
    assert second.models["marts.moments"].written  # the time column itself: its intervals
    assert second.models["marts.kinds"].written == []  # not by time: recomputed whole
    for name in VIEWS:
        assert table(root, name) == recomputed(root, name), name
    # nothing new: nothing refreshed, nothing changed
    third = build(root)
    assert all(third.models[f"marts.{n}"].status.name == "UP_TO_DATE" for n in VIEWS)


def test_a_refreshed_view_equals_a_full_rebuild(tmp_path: Path) -> None:
    root = project(tmp_path)
    build(root)
    land(root, "b", events(10_000, 30, 3) + events(20_000, 30, 59) + events(30_000, 7, 75))
    build(root)
    refreshed = {name: table(root, name) for name in VIEWS}
    build(root, full_refresh=True)
    assert {name: table(root, name) for name in VIEWS} == refreshed


def test_which_queries_refresh_by_bucket(tmp_path: Path) -> None:
    root = project(tmp_path)
    loaded = load_project(root)
    found = {n: buckets(loaded.models[f"marts.{n}"], loaded.models) for n in VIEWS}
    assert found["daily"] is not None and (found["daily"].column, found["daily"].unit) == (
        "day",
        "day",
    )
    assert found["monthly"] is not None and found["monthly"].unit == "month"
    assert found["moments"] is not None and found["moments"].unit is None
    assert found["kinds"] is None


@pytest.mark.parametrize(
    ("moment", "unit", "start"),
    [
        (datetime(2026, 3, 18, 13, 5, tzinfo=UTC), "hour", datetime(2026, 3, 18, 13, tzinfo=UTC)),
        (datetime(2026, 3, 18, 13, 5, tzinfo=UTC), "week", datetime(2026, 3, 16, tzinfo=UTC)),
        (datetime(2026, 8, 18, tzinfo=UTC), "quarter", datetime(2026, 7, 1, tzinfo=UTC)),
        (datetime(2026, 8, 18, tzinfo=UTC), "year", datetime(2026, 1, 1, tzinfo=UTC)),
    ],
)
def test_bucket_bounds_match_date_trunc(moment: datetime, unit: str, start: datetime) -> None:
    assert floor(moment, unit) == start
    with duckdb.connect() as conn:
        conn.execute("set TimeZone = 'UTC'")
        truncated = conn.execute(f"select date_trunc('{unit}', ?::timestamptz)", [moment])
        assert truncated.fetchone()[0] == start  # type: ignore[index]
    [(lo, hi)] = spans([(moment, moment + timedelta(minutes=1))], unit)
    assert lo == start and hi > moment


def test_an_incremental_model_with_start_and_no_watermark_upstream_is_not_left_empty(
    tmp_path: Path,
) -> None:
    """Without a watermark no batch says which times it holds: `start:` to now is built (and
    every new batch restates what is done), never an empty table."""
    root = project(tmp_path)
    contract = root / "contracts/events.yml"
    contract.write_text(
        contract.read_text().replace('watermark: "occurred_at - interval 1 hour"\n', "")
    )
    build(root)
    with duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True) as conn:
        assert conn.execute("select count(*) from clean.events").fetchone() == (1200,)
    land(root, "b", events(10_000, 5, 60))
    build(root)
    with duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True) as conn:
        assert conn.execute("select count(*) from clean.events").fetchone() == (1205,)
    for name in VIEWS:
        assert table(root, name) == recomputed(root, name), name
