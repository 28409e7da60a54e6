"""Rules on every conformance engine: every type, in one scan, with metrics and samples."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from headwater.contracts import Rule
from headwater.engine.duckdb import DuckDBEngine
from headwater.errors import SpecError
from headwater.quality import evaluate
from tests.engines import ENGINES, SPARK, make_engine, text_statements

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=[*ENGINES, SPARK])
def engine(request: pytest.FixtureRequest) -> Iterator[DuckDBEngine]:
    """The table under test on every engine of the conformance suite (tests/engines.py);
    on Spark a temporary table (a session's view of rows it keeps)."""
    log: list[object] = []
    engine = make_engine(request.param, log)
    made = sqlglot.parse_one(
        """
        create table orders as select * from (values
            (1, 'paid',     10.0, 'a@x.com', timestamp '2026-11-01 10:00:00'),
            (2, 'paid',     -5.0, null,      timestamp '2026-11-01 09:00:00'),
            (2, 'shipped',  20.0, 'b@x.com', timestamp '2026-10-31 09:00:00'),
            (4, 'lost',     30.0, 'nope',    timestamp '2026-10-30 09:00:00'),
            (5, 'paid',     null, 'c@x.com', null)
        ) t(order_id, status, amount, email, updated_at)""",
        read="duckdb",
    )
    if request.param == "spark":
        made.set("properties", exp.Properties(expressions=[exp.TemporaryProperty()]))
    engine.execute(made)
    log.clear()  # the table is made by the test; what the rules send is recorded
    yield engine
    engine.close()
    assert not text_statements(log), text_statements(log)[:3]


def rule(**spec: Any) -> Rule:
    return Rule.model_validate({"name": spec.pop("name", "r"), **spec})


COLUMNS = ["order_id", "status", "amount", "email", "updated_at"]


def check(engine: DuckDBEngine, *rules: Rule, **kwargs: Any) -> list[Any]:
    return evaluate(
        list(rules), "orders", engine=engine, now=NOW, columns=COLUMNS, key=["order_id"], **kwargs
    )


@pytest.mark.parametrize(
    ("spec", "metric", "passed"),
    [
        ({"type": "not_null", "target": "amount"}, 1, False),
        ({"type": "not_null", "target": "amount", "threshold": 1}, 1, True),
        ({"type": "not_null", "target": "status"}, 0, True),
        ({"type": "completeness", "target": "email", "threshold": "25%"}, 0.2, True),
        ({"type": "completeness", "target": "email", "threshold": 0.1}, 0.2, False),
        ({"type": "uniqueness", "target": "order_id"}, 1, False),
        ({"type": "uniqueness", "target": "order_id, status"}, 0, True),
        ({"type": "valid_values", "target": "status", "values": ["paid", "shipped"]}, 1, False),
        ({"type": "valid_values", "target": "amount", "min": 0}, 1, False),
        ({"type": "valid_values", "target": "amount", "min": -10, "max": 100}, 0, True),
        ({"type": "valid_values", "target": "email", "pattern": "[^@]+@[^@]+"}, 1, False),
        ({"type": "row_count", "target": "*", "threshold": 5}, 5, True),
        ({"type": "row_count", "target": "*", "min": 1, "max": 3}, 5, False),
        ({"type": "freshness", "target": "updated_at", "threshold": "3h"}, 7200, True),
        ({"type": "freshness", "target": "updated_at", "threshold": "1h"}, 7200, False),
        ({"type": "not_null", "target": "amount", "where": "status = 'shipped'"}, 0, True),
    ],
)
def test_each_rule_type_measures_and_judges(
    engine: DuckDBEngine, spec: dict[str, Any], metric: float, passed: bool
) -> None:
    [result] = check(engine, rule(**spec))
    assert result.metric == pytest.approx(metric)
    assert result.passed is passed


def test_all_rules_of_a_table_run_in_one_query_but_distinct_counts(
    engine: DuckDBEngine,
) -> None:
    results = check(
        engine,
        rule(name="a", type="not_null", target="amount"),
        rule(name="b", type="uniqueness", target="order_id"),
        rule(name="c", type="freshness", target="updated_at", threshold="1d"),
        rule(name="d", type="valid_values", target="status", values=["paid", "shipped"]),
    )
    scan = {r.sql for r in results if r.rule.type != "uniqueness"}
    assert len(scan) == 1 and next(iter(scan)).lower().count("from orders") == 1
    # the distinct count reads its key alone (beside it, DuckDB would materialize the rows)
    (distinct,) = [r.sql for r in results if r.rule.type == "uniqueness"]
    assert distinct.lower().count("from orders") == 1 and "amount" not in distinct
    assert [r.passed for r in results] == [False, False, True, False]


def test_a_table_with_one_distinct_count_alone_reads_once(engine: DuckDBEngine) -> None:
    [result] = check(engine, rule(name="b", type="uniqueness", target="order_id"))
    assert "count(distinct" in result.sql.lower() and "total" in result.sql.lower()


def test_failures_carry_sample_rows_with_their_key(engine: DuckDBEngine) -> None:
    bad_status, dupes = check(
        engine,
        rule(name="s", type="valid_values", target="status", values=["paid", "shipped"]),
        rule(name="u", type="uniqueness", target="order_id"),
    )
    assert bad_status.samples == [{"order_id": 4, "status": "lost"}]
    assert dupes.samples == [{"order_id": 2, "copies": 2}]


def test_a_pattern_rule_failing_on_one_row_is_not_scanned_for_again(engine: Any) -> None:
    """Its regular expression is most of a scan: the scan finds the failing row's key, and
    its sample is looked up by it (on the recording engines, no second query evaluates it)."""
    log = getattr(engine, "log", None)
    [result] = check(engine, rule(type="valid_values", target="email", pattern="[^@]+@[^@]+"))
    assert not result.passed and result.metric == 1
    assert result.samples == [{"order_id": 4, "email": "nope"}]
    if log is not None:
        rendered = [engine.render(s) for s in log]
        assert len(rendered) == 2, rendered  # the scan, then the lookup
        assert "REGEXP" in rendered[0].upper() and "MIN(" in rendered[0].upper()
        assert '"order_id" IN (4)' in rendered[1]


def test_a_pattern_rule_failing_on_several_rows_gets_its_samples_by_query(
    engine: DuckDBEngine,
) -> None:
    [result] = check(engine, rule(type="valid_values", target="email", pattern="[ac]@x[.]com"))
    assert result.metric == 2
    assert sorted(s["email"] for s in result.samples) == ["b@x.com", "nope"]


def test_a_pattern_rule_scoped_by_where_samples_only_its_rows(engine: DuckDBEngine) -> None:
    [result] = check(
        engine,
        rule(type="valid_values", target="email", pattern="[a-z]@x[.]com", where="order_id > 3"),
    )
    assert result.metric == 1 and result.samples == [{"order_id": 4, "email": "nope"}]


def test_passing_rules_fetch_no_samples(engine: DuckDBEngine) -> None:
    [result] = check(engine, rule(type="not_null", target="status"))
    assert result.passed and result.samples == []


def test_scope_limits_every_rule(engine: DuckDBEngine) -> None:
    [result] = check(
        engine, rule(type="uniqueness", target="order_id"), scope=_condition("status = 'paid'")
    )
    assert result.metric == 0  # the duplicate order 2 is paid once and shipped once
    [result] = check(
        engine, rule(type="row_count", target="*", threshold=1), scope=_condition("status = 'paid'")
    )
    assert result.metric == 3


def test_severity_decides_whether_a_failure_blocks(engine: DuckDBEngine) -> None:
    warn, error = check(
        engine,
        rule(name="w", type="not_null", target="amount", severity="warn"),
        rule(name="e", type="not_null", target="amount"),
    )
    assert (warn.passed, warn.blocking) == (False, False)
    assert (error.passed, error.blocking) == (False, True)


def test_a_target_column_that_does_not_exist_is_a_clear_error(engine: DuckDBEngine) -> None:
    with pytest.raises(SpecError, match="rule 'r': target column 'amout' does not exist"):
        check(engine, rule(type="not_null", target="amout"))


def test_freshness_of_an_empty_table_fails_without_a_metric() -> None:
    engine = DuckDBEngine()
    engine.execute("create table orders (updated_at timestamp)")
    [result] = evaluate(
        [rule(type="freshness", target="updated_at", threshold="1h")],
        "orders",
        engine=engine,
        now=NOW,
        columns=["updated_at"],
    )
    assert (result.metric, result.passed) == (None, False)


def _condition(text: str) -> Any:
    import sqlglot

    return sqlglot.parse_one(text, dialect="duckdb")
