"""Rules answered from metadata (a landed batch's manifests) instead of a scan: the same
metrics as the scan, no rows read, and failures still scanned for their samples."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlglot

from headwater.contracts import Rule
from headwater.engine.duckdb import DuckDBEngine
from headwater.orchestrate import RunReport, Stores, run
from headwater.project import Project, load_project
from headwater.quality import Known, evaluate
from headwater.quality.rules import METADATA
from tests.conftest import NOW as SHOP_NOW

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


class Counting(DuckDBEngine):
    """An engine that counts the queries it reads."""

    reads = 0

    def read(self, statement: Any, params: Any = None) -> pa.Table:
        self.reads += 1
        return super().read(statement, params)


def rule(**spec: Any) -> Rule:
    return Rule.model_validate({"name": spec.pop("name", "r"), **spec})


def test_rules_metadata_answers_read_no_rows() -> None:
    engine = Counting()
    engine.execute("create table t as select 1 as id, null::int as x, now() as at")
    known = Known(
        rows=1000,
        nulls={"id": 0, "x": 10},
        lower={"id": 1},
        upper={"id": 1000, "at": datetime(2026, 11, 1, 11, 0, tzinfo=UTC)},
    )
    rules = [
        rule(name="n", type="not_null", target="id"),
        rule(name="c", type="completeness", target="x", threshold="5%"),
        rule(name="f", type="freshness", target="at", threshold="2h"),
        rule(name="v", type="valid_values", target="id", min=0, max=5000),
        rule(name="rc", type="row_count", target="*", threshold=10),
    ]

    results = evaluate(rules, "t", engine=engine, now=NOW, columns=["id", "x", "at"], stats=known)

    assert engine.reads == 0
    assert [r.metric for r in results] == [0, 0.01, 3600, 0, 1000]
    assert all(r.passed and r.sql == METADATA for r in results)


def test_a_failure_metadata_sees_is_scanned_for_its_samples() -> None:
    engine = Counting()
    engine.execute("create table t as select * from (values (1, null), (2, 5)) v(id, x)")
    known = Known(rows=2, nulls={"x": 1}, lower={"x": 5}, upper={"x": 5})
    rules = [
        rule(name="nn", type="not_null", target="x"),
        rule(name="range", type="valid_values", target="x", min=0, max=3),
        rule(name="where", type="not_null", target="x", where="id = 2"),
    ]

    results = evaluate(
        rules, "t", engine=engine, now=NOW, columns=["id", "x"], key=["id"], stats=known
    )

    nn, out_of_range, scoped = results
    assert not nn.passed and nn.metric == 1 and nn.samples == [{"id": 1, "x": None}]
    assert not out_of_range.passed and out_of_range.samples == [{"id": 2, "x": 5}]
    assert scoped.passed and scoped.sql != METADATA  # `where:` needs the rows


def test_batch_checks_from_manifests_equal_the_scan(
    built_shop: tuple[Project, Stores, RunReport],
) -> None:
    project, stores, report = built_shop
    answered = [c for c in report.checks if c.sql == METADATA]
    assert {c.rule.name for c in answered} >= {
        "orders_id_not_null",
        "events_some_rows",
        "orders_fresh",
    }
    for contract in project.contracts.values():
        landed = next(x for x in report.landed if x.table == contract.table)
        columns = [f.name for f in stores.lake.schema(contract.table) or []]
        scope = f"_hw_batch_id = '{landed.batch_id}'"
        scanned = evaluate(
            contract.rules,
            contract.table,
            engine=stores.engine,
            now=NOW,
            columns=columns,
            scope=sqlglot.parse_one(scope),
            tables={},
            declared={c.name: c.type for c in contract.columns},
        )
        by_name = {c.rule.name: c for c in report.checks}
        for result in scanned:
            if by_name[result.rule.name].sql == METADATA:
                assert by_name[result.rule.name].metric == result.metric, result.rule.name


def test_a_key_the_write_enforces_is_not_counted_again() -> None:
    engine = Counting()
    engine.execute("create table t as select * from (values (1, 1), (1, 2)) v(id, x)")
    rules = [
        rule(name="key", type="uniqueness", target="id"),
        rule(name="other", type="uniqueness", target="x"),
    ]

    key, other = evaluate(rules, "t", engine=engine, now=NOW, columns=["id", "x"], unique=[["id"]])

    assert key.passed and key.metric == 0 and "enforces" in key.sql
    assert other.passed and other.sql.startswith("SELECT")  # scanned, without `id`
    assert 'DISTINCT "id"' not in other.sql


def test_a_model_row_count_comes_from_its_write(
    built_shop: tuple[Project, Stores, RunReport],
) -> None:
    _, stores, report = built_shop
    [result] = [c for c in report.checks if c.rule.name == "events_daily_not_empty"]

    assert result.sql == METADATA
    assert result.metric == stores.engine.rows("select count(*) from marts.events_daily")[0][0]
    assert result.metric == report.models["marts.events_daily"].rows


FUNNEL_RULES = """rules:
  - {name: day_there, type: not_null, target: day}
  - {name: views_counted, type: valid_values, target: page_views, min: 0}
  - {name: funnel_fresh, type: freshness, target: day, threshold: 30d}
  - {name: no_purchases, type: valid_values, target: purchases, max: 0, on_fail: warn}
"""
DAILY_RULES = """
  - {name: daily_day_there, type: not_null, target: day}
  - {name: daily_fresh, type: freshness, target: day, threshold: 30d}"""


def test_a_version_s_statistics_answer_null_range_and_freshness_rules(
    shop: Path, engine: str
) -> None:
    """The engine's statistics of a version just written say which columns hold no NULL and
    the bounds of their values: rules they show passing read no rows, a failing one is
    scanned for its samples, and every metric is the scan's. Freshness needs the newest value
    itself: only a table written whole gives it (an incremental write leaves bounds)."""
    (shop / "models/marts/funnel_daily.yml").write_text(FUNNEL_RULES)
    daily = shop / "models/marts/events_daily.yml"
    last = "threshold: 1}"  # the end of the sidecar's last rule
    daily.write_text(daily.read_text().replace(last, last + DAILY_RULES))
    project = load_project(shop)
    stores = Stores.open(project)
    try:
        report = run(project, stores, now=SHOP_NOW)
        checks = {c.rule.name: c for c in report.checks}
        with_stats = stores.engine.capabilities.column_stats
        answered = {"day_there", "views_counted", "funnel_fresh", "daily_day_there"}
        assert {n for n, c in checks.items() if c.sql == METADATA} >= (
            answered if with_stats else set()
        )
        assert checks["daily_fresh"].sql != METADATA
        purchases = checks["no_purchases"]
        assert not purchases.passed and purchases.sql != METADATA and purchases.samples
        for model in ("marts.funnel_daily", "marts.events_daily"):
            physical = report.models[model].physical
            assert physical is not None
            rules = project.models[model].rules
            columns = list(stores.engine.columns(physical))
            for scanned in evaluate(
                rules, physical, engine=stores.engine, now=SHOP_NOW, columns=columns
            ):
                assert checks[scanned.rule.name].metric == scanned.metric, scanned.rule.name
                assert checks[scanned.rule.name].passed == scanned.passed
    finally:
        stores.close()


def test_duckdb_keeps_null_and_bound_statistics_of_a_table() -> None:
    engine = DuckDBEngine()
    engine.execute(
        "create table t as select range as id, if(range % 2 = 0, null, range) as n, "
        "'x' || range as s from range(10)"
    )
    stats = engine.column_stats("t", ["id", "n", "s", "missing"])
    assert stats["id"].lower == 0 and stats["id"].upper == 9 and not stats["id"].may_be_null
    assert stats["n"].may_be_null and (stats["n"].lower, stats["n"].upper) == (1, 9)
    # DuckDB keeps a prefix of text; its estimate of distinct values is from a sample, kept
    # only of a column of few values (tests/engine/test_duckdb_stats.py): not of these
    assert (stats["s"].may_be_null, stats["s"].lower, stats["s"].upper) == (False, None, None)
    assert stats["id"].distinct is None and stats["s"].distinct is None
    assert "missing" not in stats
    engine.execute("delete from t where id > 4")
    after = engine.column_stats("t", ["id"])["id"]
    assert after.lower <= 0 and after.upper >= 4  # bounds: maybe wider than what is left
    engine.execute("delete from t")
    assert engine.column_stats("t", ["id"]) == {}  # no rows: the row count says it all
