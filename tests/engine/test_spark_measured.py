"""A table Spark writes whole is measured as it is written (engine/spark_measure.py): its
audit and profile then read no rows, and say what a scan of the table would have said."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlglot import exp

from headwater.contracts import Rule
from headwater.engine.base import QUANTILES
from headwater.quality.rules import evaluate_profiled, written
from tests.engines import make_engine

pytestmark = pytest.mark.spark

ROWS = """
SELECT
  CASE WHEN id % 7 = 0 THEN NULL ELSE id END AS id,
  id * 0.5 AS half,
  CAST(id AS DECIMAL(10, 2)) AS amount,
  DATE_ADD(DATE '2026-01-01', CAST(id % 40 AS INT)) AS day,
  TIMESTAMP '2026-01-01 00:00:00 UTC' + make_interval(0, 0, 0, 0, CAST(id AS INT), 0, 0) AS at,
  CAST(TIMESTAMP_NTZ '2026-01-01 00:00:00' + make_interval(0, 0, 0, 0, 0, CAST(id AS INT), 0)
    AS TIMESTAMP_NTZ) AS local_at,
  CASE WHEN id % 3 = 0 THEN 'x' ELSE NULL END AS label,
  id % 2 = 0 AS even,
  ARRAY(id, id) AS pair
FROM range(1, 1001)
"""


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    spark = make_engine("spark", [])
    try:
        spark.execute("CREATE NAMESPACE IF NOT EXISTS m")
        yield spark
    finally:
        spark.close()


def _write(engine: Any, table: str) -> int:
    rows = _create(engine, table, ROWS)
    assert rows == 1000
    return rows


def _create(engine: Any, table: str, sql: str) -> int:
    """CREATE OR REPLACE TABLE `table` AS `sql` (Spark's dialect): the rows written."""
    query = exp.maybe_parse(sql, dialect="spark")
    create = exp.Create(this=exp.to_table(table), kind="TABLE", replace=True, expression=query)
    return int(engine.execute(create))


def test_a_table_written_whole_is_measured_as_a_scan_would_measure_it(engine: Any) -> None:
    _write(engine, "m.measured")
    columns = list(engine.columns("m.measured"))
    found = engine.column_stats("m.measured", columns)
    scanned = engine.read(
        "SELECT COUNT(*) - COUNT(id) AS id_nulls, MIN(id) AS id_lo, MAX(id) AS id_hi, "
        "AVG(id) AS id_mean, approx_count_distinct(id) AS id_d, MIN(amount) AS amount_lo, "
        "MAX(amount) AS amount_hi, AVG(half) AS half_mean, COUNT(*) - COUNT(label) AS "
        "label_nulls, approx_count_distinct(label) AS label_d, AVG(CAST(even AS INT)) AS "
        "even_mean, MIN(day) AS day_lo, MAX(day) AS day_hi, MAX(local_at) AS local_hi, "
        "percentile(id, 0.5) AS id_median FROM m.measured"
    ).to_pylist()[0]
    assert found["id"].nulls == scanned["id_nulls"] == 142
    assert found["id"].may_be_null and not found["half"].may_be_null
    assert (found["id"].lower, found["id"].upper) == (scanned["id_lo"], scanned["id_hi"])
    assert found["id"].mean == pytest.approx(float(scanned["id_mean"]))
    # two HyperLogLogs (DuckDB's over the files, Spark's in the scan) of the 858 values
    assert found["id"].distinct == pytest.approx(scanned["id_d"], rel=0.1)
    assert (found["amount"].lower, found["amount"].upper) == (
        scanned["amount_lo"],
        scanned["amount_hi"],
    )
    assert found["half"].mean == pytest.approx(float(scanned["half_mean"]))
    assert (found["label"].nulls, found["label"].distinct) == (
        scanned["label_nulls"],
        scanned["label_d"],
    )
    assert found["label"].lower is None  # text: counted, no bounds
    assert found["even"].mean == pytest.approx(float(scanned["even_mean"]))
    assert (found["day"].lower, found["day"].upper) == (date(2026, 1, 1), scanned["day_hi"])
    # an instant's bounds as UTC datetimes (not in the Python process's time zone); a
    # wall-clock time's as the naive datetime it is
    assert found["at"].lower == datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert found["at"].upper == datetime(2026, 2, 11, 16, tzinfo=UTC)  # 1,000 hours on
    assert found["local_at"].upper == scanned["local_hi"] == datetime(2026, 1, 1, 16, 40)
    # quantiles of a sample of about SAMPLE rows: exact here (1,000 rows), the median one of
    # the two middle values of the 858 (Spark's `percentile` their mean)
    quantiles = found["id"].quantiles
    assert quantiles is not None and len(quantiles) == len(QUANTILES)
    assert quantiles == tuple(sorted(quantiles))
    assert abs(quantiles[QUANTILES.index(0.5)] - scanned["id_median"]) <= 1
    # the most frequent values, of text and booleans, counted in the files written
    assert found["label"].top == ("x",)
    assert set(found["even"].top or ()) == {True, False}  # 500 of each: either first
    assert found["id"].top is None and found["pair"].top is None
    assert found["pair"].distinct is not None and found["pair"].lower is None  # no bounds


def test_what_was_measured_is_forgotten_once_the_table_changes(engine: Any) -> None:
    _write(engine, "m.changing")
    assert engine.column_stats("m.changing", ["id"])["id"].upper == 1000
    assert engine.cursor().column_stats("m.changing", ["id"])  # every cursor knows it
    engine.execute("INSERT INTO m.changing SELECT * FROM m.changing LIMIT 1")
    assert engine.column_stats("m.changing", ["id"]) == {}  # another snapshot now
    _write(engine, "m.changing")
    assert engine.column_stats("m.changing", ["id"])["id"].nulls == 142


def test_without_profiles_a_write_measures_what_rules_use_only(engine: Any) -> None:
    from headwater.engine.spark import SparkEngine

    lean = SparkEngine(engine.session, owner=False, profiles=False)
    _write(lean, "m.lean")
    found = lean.column_stats("m.lean", ["id", "day"])
    assert (found["id"].nulls, found["id"].lower, found["id"].upper) == (142, 1, 1000)
    assert found["day"].upper == date(2026, 2, 9)  # 39 days on
    for stats in found.values():
        assert (stats.distinct, stats.quantiles, stats.mean) == (None, None, None)


def test_the_audit_and_profile_of_a_measured_table_read_no_rows(engine: Any) -> None:
    rows = _write(engine, "m.audited")
    types = engine.columns("m.audited")
    rules = [
        Rule(name="half_not_null", type="not_null", target="half"),
        Rule(name="rows", type="row_count", target="*", threshold=1),
    ]
    stats = written(engine, "m.audited", rules, rows, exact=True, profiled=types)
    reads: list[str] = []
    counting = _Counting(engine, reads)
    options: dict[str, Any] = {
        "now": datetime(2026, 12, 6, tzinfo=UTC),
        "columns": list(types),
        "profile": types,
    }
    results, measured = evaluate_profiled(
        rules, "m.audited", engine=counting, stats=stats, **options
    )
    assert reads == []  # neither the rules nor the profile read a row
    assert all(r.passed for r in results)
    _, scanned = evaluate_profiled(rules, "m.audited", engine=engine, **options)
    assert measured is not None and scanned is not None
    assert measured.rows == scanned.rows == 1000
    for name, column in scanned.columns.items():
        got = measured.columns[name]
        assert (got.nulls, got.min, got.max) == (column.nulls, column.min, column.max), name
        # two HyperLogLogs: Spark's (5% standard error) and DuckDB's
        assert got.distinct == pytest.approx(column.distinct, rel=0.1), name
        if column.mean is not None:
            assert got.mean == pytest.approx(column.mean), name
        if column.quantiles:  # the scan's from a sample (all 1,000 rows here), exact
            assert got.quantiles is not None, name
            assert got.quantiles.keys() == column.quantiles.keys(), name
        assert got.top == column.top or set(got.top or ()) == set(column.top or ()), name


class _Counting:
    """An engine that records the queries it reads."""

    def __init__(self, engine: Any, reads: list[str]):
        self._engine, self._reads = engine, reads

    def read(self, statement: Any, params: Any = None) -> Any:
        self._reads.append(self._engine.render(statement))
        return self._engine.read(statement, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def test_a_nan_leaves_a_column_without_bounds(engine: Any) -> None:
    """Iceberg's bounds leave NaN out (it counts them apart); Spark orders NaN above every
    number, so bounds that miss it would let `x <= 100` pass on the metadata alone."""
    written = _create(
        engine,
        "m.nan",
        "SELECT id, CASE WHEN id = 3 THEN CAST('NaN' AS DOUBLE) ELSE id * 1.5 END AS ratio "
        "FROM range(1, 11)",
    )
    assert written == 10
    found = engine.column_stats("m.nan", ["id", "ratio"])
    assert (found["id"].lower, found["id"].upper) == (1, 10)
    assert (found["ratio"].lower, found["ratio"].upper, found["ratio"].nulls) == (None, None, 0)


def test_a_column_without_a_value_is_measured_without_quantiles(engine: Any) -> None:
    """Every value NULL, or NaN (which quantiles leave out): no quantiles, no top values."""
    written = _create(
        engine,
        "m.empty",
        "SELECT id, CAST(NULL AS DOUBLE) AS nothing, CAST('NaN' AS DOUBLE) AS nan, "
        "CAST(NULL AS STRING) AS blank FROM range(1, 11)",
    )
    assert written == 10
    found = engine.column_stats("m.empty", ["id", "nothing", "nan", "blank"])
    assert found["id"].distinct == 10  # the files were profiled
    assert (found["nothing"].quantiles, found["nan"].quantiles) == (None, None)
    assert found["blank"].top == ()


def test_a_version_too_large_to_read_here_is_profiled_by_a_scan(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files of more than LOCAL_BYTES are not read by this process: the write keeps what
    the metadata says (NULLs, bounds), and the profile scans the table on the cluster."""
    import headwater.engine.spark_measure as measure

    monkeypatch.setattr(measure, "LOCAL_BYTES", 0)
    rows = _write(engine, "m.large")
    found = engine.column_stats("m.large", ["id", "label"])
    assert (found["id"].nulls, found["id"].upper) == (142, 1000)
    assert (found["id"].distinct, found["id"].quantiles, found["label"].top) == (None, None, None)
    types = engine.columns("m.large")
    stats = written(engine, "m.large", [], rows, exact=True, profiled=types)
    reads: list[str] = []
    now = datetime(2026, 12, 6, tzinfo=UTC)
    options: dict[str, Any] = {"now": now, "columns": list(types), "profile": types}
    _, profile = evaluate_profiled(
        [], "m.large", engine=_Counting(engine, reads), stats=stats, **options
    )
    assert reads  # scanned
    assert profile is not None and profile.columns["label"].top == ["x"]
    assert profile.columns["id"].distinct == pytest.approx(858, rel=0.05)


def test_a_version_whose_files_cannot_be_read_here_is_profiled_by_a_scan(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lake this process reaches with no Arrow file system (HDFS, say): the write keeps
    what the metadata says, nothing is lost."""
    from headwater.engine.spark import SparkEngine

    def unreachable(self: Any, location: str) -> Any:
        raise ValueError(f"no Arrow file system for {location}")

    monkeypatch.setattr(SparkEngine, "_filesystem", unreachable)
    _write(engine, "m.unreachable")
    found = engine.column_stats("m.unreachable", ["id"])
    assert (found["id"].nulls, found["id"].lower, found["id"].distinct) == (142, 1, None)


def test_top_values_are_counted_in_the_files_the_write_committed(engine: Any) -> None:
    written = _create(
        engine,
        "m.tops",
        "SELECT id, CASE WHEN id % 20 < 10 THEN 'a' WHEN id % 20 < 16 THEN 'b' "
        "WHEN id % 20 < 18 THEN 'c' WHEN id % 20 = 18 THEN CONCAT('rare', id) END AS status, "
        "id % 4 = 0 AS quarter, id > 0 AS always FROM range(1, 2001)",
    )
    assert written == 2000
    found = engine.column_stats("m.tops", ["status", "quarter", "always"])
    top = found["status"].top
    assert top is not None and top[:3] == ("a", "b", "c") and len(top) == 5  # NULL left out
    assert all(value.startswith("rare") for value in top[3:])
    assert (found["quarter"].top, found["always"].top) == ((False, True), (True,))
