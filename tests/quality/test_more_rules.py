"""The rule types beyond the scan: length, volume, schema, referential integrity, custom SQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlglot
from pydantic import ValidationError

from headwater.contracts import Rule
from headwater.engine.duckdb import DuckDBEngine
from headwater.quality import evaluate
from tests.engines import SPARK, make_engine

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
COLUMNS = ["order_id", "customer_id", "code", "amount"]


@pytest.fixture(params=["duckdb", SPARK])
def engine(request: pytest.FixtureRequest) -> Iterator[DuckDBEngine]:
    """The tables under test on DuckDB and on Spark (Iceberg tables of a namespace `main`,
    the session's current one)."""
    engine = make_engine(request.param, [])
    if request.param == "spark":
        engine.execute("CREATE NAMESPACE IF NOT EXISTS main")
        engine.execute("USE main")
    made(
        engine,
        """
        create table customers as select * from (values (10), (11)) t(customer_id);
        create table orders as select * from (values
            (1, 10,   'AB',   10.0),
            (2, 11,   'ABCD', -5.0),
            (3, 99,   'A',    20.0),
            (4, null, 'ABC',  30.0),
            (5, 98,   null,   -1.0)
        ) t(order_id, customer_id, code, amount)""",
    )
    yield engine
    engine.close()


def made(engine: DuckDBEngine, sql: str) -> None:
    """The tables `sql` (DuckDB's SQL) makes, on the engine's own dialect."""
    for statement in sqlglot.parse(sql, read="duckdb"):
        assert statement is not None
        engine.execute(statement)


def rule(**spec: Any) -> Rule:
    return Rule.model_validate({"name": spec.pop("name", "r"), **spec})


def check(engine: DuckDBEngine, *rules: Rule, **kwargs: Any) -> list[Any]:
    options = {"now": NOW, "columns": COLUMNS, "key": ["order_id"], **kwargs}
    return evaluate(list(rules), "orders", engine=engine, **options)


def test_valid_values_bounds_text_length(engine: DuckDBEngine) -> None:
    [result] = check(engine, rule(type="valid_values", target="code", min_length=2, max_length=3))

    assert result.metric == 2  # 'ABCD' and 'A'; null is not_null's business
    assert sorted(s["order_id"] for s in result.samples) == [2, 3]


def test_referential_integrity_counts_orphans_with_one_anti_join(engine: DuckDBEngine) -> None:
    [result] = check(
        engine,
        rule(type="referential_integrity", target="customer_id", to="main.customers.customer_id"),
    )

    assert result.metric == 2  # 99 and 98; a null reference is not an orphan
    assert not result.passed
    assert sorted(s["customer_id"] for s in result.samples) == [98, 99]
    assert set(result.samples[0]) == {"order_id", "customer_id"}
    assert "EXISTS" in result.sql.upper()


def test_referential_integrity_reads_the_version_being_built(engine: DuckDBEngine) -> None:
    made(
        engine,
        "create table customers_v2 as select * from (values (10), (11), (98), (99)) t(customer_id)",
    )
    spec = rule(
        type="referential_integrity", target="customer_id", to="clean.customers.customer_id"
    )

    [result] = check(engine, spec, tables={"clean.customers": "main.customers_v2"})

    assert result.passed and result.metric == 0


def test_custom_sql_counts_the_rows_its_query_returns(engine: DuckDBEngine) -> None:
    spec = rule(
        type="custom_sql",
        target="*",
        sql="select order_id, amount from this where amount < 0",
        threshold=1,
    )
    [result] = check(engine, spec)

    assert result.metric == 2
    assert not result.passed
    assert sorted(s["order_id"] for s in result.samples) == [2, 5]


def test_custom_sql_sees_only_the_scope(engine: DuckDBEngine) -> None:
    spec = rule(type="custom_sql", target="*", sql="select * from this t where t.amount < 0")
    [result] = check(engine, spec, scope=sqlglot.parse_one("order_id <= 3"))

    assert result.metric == 1


@pytest.mark.parametrize(
    ("declared", "allow_extra", "differences"),
    [
        (
            {
                "order_id": "integer",
                "customer_id": "integer",
                "code": "varchar",
                "amount": "decimal(3,1)",
            },
            False,
            0,
        ),
        ({"order_id": "bigint", "code": "varchar"}, True, 1),  # order_id is INTEGER
        ({"order_id": None, "code": None, "missing": "varchar"}, True, 1),
        ({"order_id": None}, False, 3),  # three columns nobody declared
    ],
)
def test_schema_compares_columns_and_types_without_reading_rows(
    engine: DuckDBEngine, declared: dict[str, str | None], allow_extra: bool, differences: int
) -> None:
    spec = rule(type="schema", target="*", allow_extra=allow_extra)
    [result] = check(engine, spec, declared=declared)

    assert result.metric == differences
    assert result.passed is (differences == 0)
    assert len(result.samples) == differences
    assert result.sql.startswith("DESCRIBE")


def test_volume_compares_with_the_average_of_the_last_runs(engine: DuckDBEngine) -> None:
    spec = rule(name="v", type="volume", target="*", threshold="20%", runs=3)

    [first] = check(engine, spec)
    [steady] = check(engine, spec, history={"v": [5, 5, 4.5, 100]})  # only the last 3 count
    [jump] = check(engine, spec, history={"v": [10, 10, 10]})

    assert first.passed and first.metric == 5 and "no history" in first.threshold
    assert steady.passed and "4.83333" in steady.threshold
    assert not jump.passed and jump.metric == 5


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "referential_integrity", "target": "x"}, "needs `to`"),
        (
            {"type": "referential_integrity", "target": "x", "to": "customers.id"},
            "zone.table.column",
        ),
        ({"type": "custom_sql", "target": "*"}, "needs `sql`"),
        ({"type": "custom_sql", "target": "*", "sql": "delete from orders"}, "SELECT"),
        ({"type": "custom_sql", "target": "*", "sql": "select from where"}, "is not SQL"),
        ({"type": "volume", "target": "*"}, "needs a threshold"),
        ({"type": "not_null", "target": "x", "to": "a.b.c"}, "referential_integrity rules only"),
        ({"type": "valid_values", "target": "x", "min_length": -1}, "greater than or equal"),
    ],
)
def test_a_malformed_rule_is_refused_with_what_to_write(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        rule(**spec)

    assert message in str(caught.value)


def test_row_count_threshold_zero_allows_an_empty_table(engine: DuckDBEngine) -> None:
    made(engine, "create table empty as select * from orders limit 0")
    spec = rule(type="row_count", target="*", threshold=0)

    [result] = evaluate([spec], "empty", engine=engine, now=NOW, columns=COLUMNS)

    assert result.passed and result.metric == 0 and result.threshold == ">= 0"
