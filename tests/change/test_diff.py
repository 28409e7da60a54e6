"""Blue/green diffs: two physical versions of a model compared column by column and, on the
key, row by row, on a DuckDB warehouse file (and on the recording engine, which says every
statement was an AST rendered in the engine's own dialect)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from headwater.change.diff import ColumnDiff, ColumnStats, VersionDiff, diff_versions
from headwater.engine.duckdb import DuckDBEngine
from tests.engines import RecordingEngine, text_statements

BLUE, GREEN = "hw_marts.orders__a1b2c3d4e5f6", "hw_marts.orders__0f9e8d7c6b5a"


@pytest.fixture(params=["duckdb", "recording"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DuckDBEngine]:
    path = tmp_path / "warehouse.duckdb"
    log: list[object] = []
    engine = DuckDBEngine(path) if request.param == "duckdb" else RecordingEngine(path, log=log)
    engine.execute("create schema hw_marts")
    yield engine
    engine.close()


def make(engine: DuckDBEngine, table: str, columns: str, *rows: str) -> None:
    """`table` with `columns` (DDL) and `rows` (each the text of one VALUES tuple)."""
    engine.execute(f"create table {table} ({columns})")
    if rows:
        engine.execute(f"insert into {table} values {', '.join(rows)}")


def diff(engine: DuckDBEngine, blue: str | None = BLUE, **options: Any) -> VersionDiff:
    """`diff_versions` of blue and green as `orders`, checking that it sent only ASTs."""
    log = engine.log if isinstance(engine, RecordingEngine) else []
    log.clear()
    found = diff_versions(engine, "marts.orders", blue, GREEN, **options)
    assert not text_statements(log), text_statements(log)
    return found


def test_identical_versions_differ_in_nothing(engine: DuckDBEngine) -> None:
    rows = ("(1, 'paid', 1.50, date '2026-11-01')", "(2, 'paid', null, date '2026-11-03')")
    for table in (BLUE, GREEN):
        make(engine, table, "id integer, status varchar, amount decimal(10,2), day date", *rows)

    found = diff(engine, key=["id"])

    assert (found.blue_rows, found.green_rows, found.row_change) == (2, 2, 0.0)
    assert (found.only_blue, found.only_green, found.changed, found.samples) == (0, 0, 0, [])
    assert found.key == ["id"]
    assert not found.schema_changed
    stats = {
        "id": ColumnStats(nulls=0, distinct=2, min=1, max=2, mean=1.5),
        "status": ColumnStats(nulls=0, distinct=1, min="paid", max="paid", mean=None),
        "amount": ColumnStats(nulls=1, distinct=1, min="1.50", max="1.50", mean=1.5),
        "day": ColumnStats(nulls=0, distinct=2, min="2026-11-01", max="2026-11-03", mean=None),
    }
    types = {"id": "INTEGER", "status": "VARCHAR", "amount": "DECIMAL(10,2)", "day": "DATE"}
    assert found.columns == [
        ColumnDiff(name, types[name], types[name], stats[name], stats[name]) for name in stats
    ]


def test_added_removed_and_retyped_columns(engine: DuckDBEngine) -> None:
    make(
        engine,
        BLUE,
        "id integer, amount integer, code integer, note varchar",
        "(1, 10, 7, 'a')",
        "(2, 20, 8, 'b')",
    )
    make(
        engine,
        GREEN,
        "id integer, amount double, code varchar, channel varchar",
        "(1, 10.0, '7', 'web')",
        "(2, 20.0, '08', null)",
    )

    found = diff(engine, key=["id"])

    assert [(c.name, c.blue_type, c.green_type) for c in found.columns] == [
        ("id", "INTEGER", "INTEGER"),
        ("amount", "INTEGER", "DOUBLE"),
        ("code", "INTEGER", "VARCHAR"),
        ("channel", None, "VARCHAR"),
        ("note", "VARCHAR", None),
    ]
    added, removed = found.columns[3], found.columns[4]
    assert (added.blue, added.green) == (
        None,
        ColumnStats(nulls=1, distinct=1, min="web", max="web", mean=None),
    )
    assert (removed.blue, removed.green) == (
        ColumnStats(nulls=0, distinct=2, min="a", max="b", mean=None),
        None,
    )
    assert found.schema_changed
    # numbers retyped compare as numbers (10 is 10.0); otherwise as text ('8' is not '08')
    assert (found.only_blue, found.only_green, found.changed) == (0, 0, 1)
    assert found.samples == [
        {
            "side": "changed",
            "key": {"id": 2},
            "blue": {"amount": 20, "code": 8},
            "green": {"amount": 20.0, "code": "08"},
        }
    ]


def test_rows_only_in_blue_only_in_green_and_changed_with_samples(engine: DuckDBEngine) -> None:
    columns = "id integer, status varchar, amount integer"
    make(engine, BLUE, columns, "(1, 'paid', 10)", "(2, 'paid', 20)", "(3, 'open', 30)")
    make(engine, BLUE.replace("a1b2", "zzzz"), columns)  # another version: not read
    make(
        engine,
        GREEN,
        columns,
        "(5, 'new', 50)",
        "(3, 'open', 31)",
        "(1, 'paid', 10)",
        "(4, 'new', 40)",
    )

    found = diff(engine, key=["id"])

    assert (found.blue_rows, found.green_rows, found.row_change) == (3, 4, 1 / 3)
    assert (found.only_blue, found.only_green, found.changed) == (1, 2, 1)
    assert not found.schema_changed
    assert found.samples == [
        {
            "side": "blue",
            "key": {"id": 2},
            "blue": {"status": "paid", "amount": 20},
            "green": None,
        },
        {
            "side": "changed",
            "key": {"id": 3},
            "blue": {"status": "open", "amount": 30},
            "green": {"status": "open", "amount": 31},
        },
        {"side": "green", "key": {"id": 4}, "blue": None, "green": {"status": "new", "amount": 40}},
        {"side": "green", "key": {"id": 5}, "blue": None, "green": {"status": "new", "amount": 50}},
    ]
    # samples are bounded and the first in key order; the counts stay whole
    assert [s["key"] for s in diff(engine, key=["id"], sample=2).samples] == [{"id": 2}, {"id": 3}]
    unsampled = diff(engine, key=["id"], sample=0)
    assert (unsampled.only_blue, unsampled.only_green, unsampled.changed) == (1, 2, 1)
    assert unsampled.samples == []


def test_a_composite_key_matches_on_every_column(engine: DuckDBEngine) -> None:
    columns = "day date, shop varchar, total integer"
    make(engine, BLUE, columns, "('2026-11-01', 'a', 1)", "('2026-11-01', 'b', 2)")
    make(engine, GREEN, columns, "('2026-11-01', 'a', 1)", "('2026-11-02', 'b', 2)")

    found = diff(engine, key=["day", "shop", "day"])  # a repeated key column counts once

    assert found.key == ["day", "shop"]
    assert (found.only_blue, found.only_green, found.changed) == (1, 1, 0)
    assert [(s["side"], s["key"]) for s in found.samples] == [
        ("blue", {"day": "2026-11-01", "shop": "b"}),
        ("green", {"day": "2026-11-02", "shop": "b"}),
    ]


def test_null_against_null_is_no_change_and_null_against_a_value_is(engine: DuckDBEngine) -> None:
    columns = "id integer, amount integer, note varchar"
    make(
        engine,
        BLUE,
        columns,
        "(1, null, null)",
        "(2, null, 'x')",
        "(3, 1, null)",
        "(null, 9, 'no key')",
    )
    make(
        engine,
        GREEN,
        columns,
        "(1, null, null)",
        "(2, 1, 'x')",
        "(3, null, null)",
        "(null, 9, 'no key')",
    )

    found = diff(engine, key=["id"])

    # a NULL key matches a NULL key: that row is the same in both versions
    assert (found.only_blue, found.only_green, found.changed) == (0, 0, 2)
    assert found.samples == [
        {
            "side": "changed",
            "key": {"id": 2},
            "blue": {"amount": None, "note": "x"},
            "green": {"amount": 1, "note": "x"},
        },
        {
            "side": "changed",
            "key": {"id": 3},
            "blue": {"amount": 1, "note": None},
            "green": {"amount": None, "note": None},
        },
    ]
    amount = found.columns[1]
    assert (amount.blue, amount.green) == (
        ColumnStats(nulls=2, distinct=2, min=1, max=9, mean=5.0),
        ColumnStats(nulls=2, distinct=2, min=1, max=9, mean=5.0),
    )


@pytest.mark.parametrize("key", [[], ["order_id"], ["id", "note"]])
def test_without_a_key_both_versions_have_the_row_diff_is_skipped(
    engine: DuckDBEngine, key: list[str]
) -> None:
    make(engine, BLUE, "id integer, note varchar", "(1, 'a')")
    make(engine, GREEN, "id integer", "(2)", "(3)")

    found = diff(engine, key=key)

    assert found.key == []
    assert (found.only_blue, found.only_green, found.changed, found.samples) == (
        None,
        None,
        None,
        [],
    )
    assert (found.blue_rows, found.green_rows, found.row_change) == (1, 2, 1.0)
    assert found.schema_changed


def test_a_new_model_has_no_blue(engine: DuckDBEngine) -> None:
    make(engine, GREEN, "id integer, amount double", "(1, 2.5)", "(2, null)")

    found = diff(engine, blue=None, key=["id"])

    assert (found.blue, found.blue_rows, found.row_change) == (None, None, None)
    assert found.columns == [
        ColumnDiff("id", None, "INTEGER", None, ColumnStats(0, 2, 1, 2, 1.5)),
        ColumnDiff("amount", None, "DOUBLE", None, ColumnStats(1, 1, 2.5, 2.5, 2.5)),
    ]
    assert found.schema_changed
    assert (found.key, found.only_blue, found.only_green, found.changed, found.samples) == (
        [],
        None,
        None,
        None,
        [],
    )


@pytest.mark.parametrize(
    ("blue_rows", "green_rows", "change"),
    [(4, 5, 0.25), (4, 3, -0.25), (4, 4, 0.0), (4, 0, -1.0), (0, 0, 0.0), (0, 2, None)],
)
def test_row_change_is_relative_to_blue(
    engine: DuckDBEngine, blue_rows: int, green_rows: int, change: float | None
) -> None:
    for table, count in ((BLUE, blue_rows), (GREEN, green_rows)):
        make(engine, table, "id integer", *(f"({i})" for i in range(count)))

    found = diff(engine, key=["id"])

    assert (found.blue_rows, found.green_rows, found.row_change) == (blue_rows, green_rows, change)
    assert (found.only_blue, found.only_green) == (
        max(blue_rows - green_rows, 0),
        max(green_rows - blue_rows, 0),
    )


def test_an_empty_version_has_stats_without_values(engine: DuckDBEngine) -> None:
    make(engine, BLUE, "id integer, note varchar")
    make(engine, GREEN, "id integer, note varchar")

    found = diff(engine, key=["id"])

    empty = ColumnStats(nulls=0, distinct=0, min=None, max=None, mean=None)
    assert [(c.blue, c.green) for c in found.columns] == [(empty, empty), (empty, empty)]
    assert (found.only_blue, found.only_green, found.changed, found.row_change) == (0, 0, 0, 0.0)


def test_column_names_that_need_quotes(engine: DuckDBEngine) -> None:
    columns = '"order id" integer, "select" varchar, "Amount $" integer, _hw_row boolean'
    make(engine, BLUE, columns, "(1, 'a', 5, true)", "(2, 'b', 6, true)")
    make(engine, GREEN, columns, "(1, 'a', 5, false)", "(3, 'c', 7, true)")

    found = diff(engine, key=["order id"])

    assert [c.name for c in found.columns] == ["order id", "select", "Amount $", "_hw_row"]
    assert found.columns[1].green == ColumnStats(0, 2, "a", "c", None)
    assert found.columns[3].green == ColumnStats(0, 2, False, True, None)
    assert (found.only_blue, found.only_green, found.changed) == (1, 1, 1)
    assert found.samples == [
        {
            "side": "changed",
            "key": {"order id": 1},
            "blue": {"select": "a", "Amount $": 5, "_hw_row": True},
            "green": {"select": "a", "Amount $": 5, "_hw_row": False},
        },
        {
            "side": "blue",
            "key": {"order id": 2},
            "blue": {"select": "b", "Amount $": 6, "_hw_row": True},
            "green": None,
        },
        {
            "side": "green",
            "key": {"order id": 3},
            "blue": None,
            "green": {"select": "c", "Amount $": 7, "_hw_row": True},
        },
    ]


def test_sample_values_are_json(engine: DuckDBEngine) -> None:
    columns = (
        "id integer, amount decimal(10,2), paid_at timestamp, day date, tags varchar[], raw blob"
    )
    make(
        engine,
        BLUE,
        columns,
        "(1, 1.50, '2026-11-01 10:00:00', '2026-11-01', ['a'], '\\x01'::blob)",
    )
    make(
        engine,
        GREEN,
        columns,
        "(1, 2.25, '2026-11-01 10:30:00', '2026-11-02', ['a', 'b'], '\\x02'::blob)",
    )

    found = diff(engine, key=["id"])

    assert found.samples == [
        {
            "side": "changed",
            "key": {"id": 1},
            "blue": {
                "amount": "1.50",
                "paid_at": "2026-11-01T10:00:00",
                "day": "2026-11-01",
                "tags": ["a"],
                "raw": "01",
            },
            "green": {
                "amount": "2.25",
                "paid_at": "2026-11-01T10:30:00",
                "day": "2026-11-02",
                "tags": ["a", "b"],
                "raw": "02",
            },
        }
    ]
    assert json.loads(json.dumps(found.samples)) == found.samples
    paid_at, tags = found.columns[2], found.columns[4]
    assert (paid_at.green.min, paid_at.green.max) == ("2026-11-01T10:30:00", "2026-11-01T10:30:00")
    assert tags.green == ColumnStats(nulls=0, distinct=1, min=None, max=None, mean=None)


def test_each_version_is_read_once_and_the_row_diff_twice(tmp_path: Path) -> None:
    log: list[object] = []
    engine = RecordingEngine(tmp_path / "warehouse.duckdb", log=log)
    engine.execute("create schema hw_marts")
    for table in (BLUE, GREEN):
        make(engine, table, "id integer, a integer, b varchar, c double", "(1, 2, 'x', 0.5)")

    log.clear()
    diff_versions(engine, "marts.orders", BLUE, GREEN, key=["id"])
    assert len(log) == 4  # blue's stats, green's stats, the row counts, the samples

    log.clear()
    diff_versions(engine, "marts.orders", BLUE, GREEN)
    assert len(log) == 2
    engine.close()
