"""What DuckDB's own statistics tell of a table (`column_stats`), and what they must not."""

from __future__ import annotations

import pytest

from headwater.engine.duckdb import DuckDBEngine


def test_a_distinct_count_only_where_duckdbs_sampled_estimate_holds() -> None:
    """DuckDB's `approx_unique` is extrapolated from a sample of the values: 402,267 to
    801,052 for the 300,000 distinct texts below, 357,467 for the integers; within 15% for the
    5,000 values each a few hundred rows hold. A profile keeps only the latter; for the
    others it counts with a HyperLogLog over every value (within 2% here)."""
    engine = DuckDBEngine()
    engine.execute(
        "CREATE TABLE t AS SELECT i % 300000 AS n, (i % 300000)::VARCHAR || '@example.com' AS s, "
        "'user.' || (i % 5000)::VARCHAR AS u, i % 5000 AS k FROM range(1000000) r(i)"
    )
    (sampled,) = engine.rows("SELECT stats(s) FROM t LIMIT 1")[0]
    assert sampled["approx_unique"] > 0  # DuckDB keeps one (402,267 to 801,052 seen here)
    found = engine.column_stats("main.t", ["n", "s", "u", "k"])
    assert found["n"].distinct is None and found["s"].distinct is None
    for few in ("u", "k"):  # DuckDB's statistics count with a coarse HyperLogLog: 5,665 seen
        assert (found[few].distinct or 0) == pytest.approx(5000, rel=0.15), few
    assert (found["n"].lower, found["n"].upper) == (0, 299999)  # bounds are exact
    assert not found["s"].may_be_null
    engine.close()
