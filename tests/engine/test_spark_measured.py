"""A table Spark writes whole is measured as it is written (engine/spark_observe.py): its
audit and profile then read no rows, and say what a scan of the table would have said."""

from __future__ import annotations

import time
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
    assert found["id"].distinct == scanned["id_d"]
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
    # quantiles estimated over every row (a KLL sketch): the median's rank within 2% of the
    # 858 values (1,000 apart in value)
    quantiles = found["id"].quantiles
    assert quantiles is not None and len(quantiles) == len(QUANTILES)
    assert quantiles == tuple(sorted(quantiles))
    assert abs(quantiles[QUANTILES.index(0.5)] - scanned["id_median"]) <= 1000 * 0.02
    # the most frequent values: of text counted in the files written, of booleans from
    # their share of true
    assert found["label"].top == ("x",)
    assert found["even"].top == (True, False)  # 500 of each
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
        assert (got.nulls, got.distinct, got.min, got.max) == (
            column.nulls,
            column.distinct,
            column.min,
            column.max,
        ), name
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
    """A quantile sketch of no value fails as it is read, and with it the whole observation
    (which then never reports): every NULL, every NaN (which the sketch leaves out)."""
    written = _create(
        engine,
        "m.empty",
        "SELECT id, CAST(NULL AS DOUBLE) AS nothing, CAST('NaN' AS DOUBLE) AS nan, "
        "CAST(NULL AS STRING) AS blank FROM range(1, 11)",
    )
    assert written == 10
    found = engine.column_stats("m.empty", ["id", "nothing", "nan", "blank"])
    assert found["id"].distinct == 10  # the observation reported
    assert (found["nothing"].quantiles, found["nan"].quantiles) == (None, None)
    assert found["blank"].top == ()


def test_an_observation_that_never_reports_is_given_up(engine: Any) -> None:
    """pyspark's `Observation.get` waits forever for metrics that failed as they were read;
    a measured write waits a while, then leaves its profile to a scan."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    from headwater.engine.spark import _observed

    observation = Observation()
    frame = engine.session.range(3).where("id < 0")
    empty = F.kll_sketch_agg_double(F.col("id").cast("double"))
    failing = F.kll_sketch_get_quantile_double(empty, F.lit(0.5))
    frame.observe(observation, failing.alias("q")).writeTo("m.unreported").createOrReplace()
    started = time.monotonic()
    assert _observed(observation, 1.0) is None
    assert time.monotonic() - started < 10
    reported = Observation()
    engine.session.range(3).observe(reported, F.count(F.lit(1)).alias("n")).collect()
    assert _observed(reported, 10.0) == {"n": 3}


def test_text_top_values_are_counted_in_the_files_the_write_committed(engine: Any) -> None:
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
