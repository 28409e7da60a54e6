"""A model's template, filled with physical names, is the query `render` makes from its AST."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

import headwater.cli
from headwater.models import parse_model, quote_table, render
from headwater.models.parse import template

EXAMPLE = Path(headwater.cli.__file__).parent / "example"

TRICKY = {
    "cte and self join": "with o as (select * from clean.orders) "
    "select a.id from o a join clean.orders b on a.id = b.id",
    "unaliased reference": "select orders.id, orders.amount from clean.orders where orders.id > 1",
    "subquery and raw": "select * from (select id from clean.orders) s "
    "left join raw.events e on e.id = s.id",
    "quoted names": 'select "Amount" from "clean"."orders"',
    "interval bounds": "select * from clean.orders where at >= :start and at < :end",
    "table function": "select * from read_parquet('x.parquet') join clean.orders using (id)",
}
TABLES = {"clean.orders": "hw_clean.orders__0a1b2c3d4e5f", "raw.events": "raw.events"}


def _same(filled: str, rendered: exp.Expression) -> None:
    """Equal SQL once both are parsed and printed with every identifier quoted."""
    again = sqlglot.parse_one(filled, dialect="duckdb")
    assert again.sql("duckdb", identify=True) == rendered.sql(
        "duckdb", comments=False, identify=True
    )


@pytest.mark.parametrize("sql", TRICKY.values(), ids=TRICKY.keys())
def test_a_filled_template_is_the_rendered_query(sql: str) -> None:
    query = sqlglot.parse_one(sql, dialect="duckdb")
    made = template(query)
    assert made is not None

    _same(made.fill(TABLES), render(query, TABLES))
    # an unmapped reference keeps its text (and gets its name as alias, as a mapped one does)
    refs = {f"{t.db}.{t.name}": f"{t.db}.{t.name}" for t in query.find_all(exp.Table) if t.db}
    _same(made.fill({}), render(query, refs))


def test_every_example_model_fills_as_it_renders() -> None:
    paths = sorted((EXAMPLE / "models").glob("*/*.sql"))
    assert paths
    for path in paths:
        model = parse_model(path, root=EXAMPLE)
        tables = {dep: f"hw_x.{dep.replace('.', '_')}__fp" for dep in model.depends_on}
        assert model.template is not None, path
        _same(model.template.fill(tables), render(model.query, tables))


def test_a_query_that_holds_a_slot_marker_has_no_template() -> None:
    query = sqlglot.parse_one("select '__hw_slot_0__' as x from clean.orders")

    assert template(query) is None


def test_quote_table_quotes_each_part() -> None:
    assert quote_table('hw_clean.or"ders__ab') == '"hw_clean"."or""ders__ab"'
