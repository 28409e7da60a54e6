"""Rules answered from metadata (a landed batch's manifests) instead of a scan: the same
metrics as the scan, no rows read, and failures still scanned for their samples."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import sqlglot

from headwater.contracts import Rule
from headwater.engine.duckdb import DuckDBEngine
from headwater.orchestrate import RunReport, Stores
from headwater.project import Project
from headwater.quality import evaluate
from headwater.quality.rules import METADATA

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@dataclass
class Known:
    rows: int
    nulls: dict[str, int] = field(default_factory=dict)
    lower: dict[str, Any] = field(default_factory=dict)
    upper: dict[str, Any] = field(default_factory=dict)


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
