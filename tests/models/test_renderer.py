"""One renderer: the text a build binds is the text of the AST chain, in every dialect and with
every pass; a model's compiled text is made from that chain, never beside it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

import headwater.cli
from headwater.models import Ref, Renderer, parse_model, render
from headwater.models.renderer import compile_query

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


def _same(bound: str, rendered: exp.Expr, dialect: str = "duckdb") -> None:
    """The bound text is, character for character, the SQL of the rendered AST."""
    assert bound == rendered.sql(dialect, comments=False)


@pytest.mark.parametrize("sql", TRICKY.values(), ids=TRICKY.keys())
@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "spark"])
def test_bound_text_is_the_rendered_query(sql: str, dialect: str) -> None:
    query = sqlglot.parse_one(sql, dialect="duckdb")
    made = compile_query(query, dialect)
    assert made is not None

    _same(made.bind(TABLES), render(query, TABLES), dialect)


@pytest.mark.parametrize("sql", TRICKY.values(), ids=TRICKY.keys())
def test_an_unmapped_reference_keeps_its_text(sql: str) -> None:
    """…and gets its name as alias, as a mapped one does: the same query."""
    query = sqlglot.parse_one(sql, dialect="duckdb")
    made = compile_query(query)
    assert made is not None
    refs = {f"{t.db}.{t.name}": f"{t.db}.{t.name}" for t in query.find_all(exp.Table) if t.db}

    again = sqlglot.parse_one(made.bind({}), dialect="duckdb")

    assert again.sql("duckdb", identify=True) == render(query, refs).sql("duckdb", identify=True)


def test_every_example_model_binds_as_it_renders() -> None:
    paths = sorted((EXAMPLE / "models").glob("*/*.sql"))
    assert paths
    for path in paths:
        model = parse_model(path, root=EXAMPLE)
        tables = {dep: f"hw_x.{dep.replace('.', '_')}__fp" for dep in model.depends_on}
        assert model.compiled is not None, path
        _same(model.compiled.bind(tables), render(model.query, tables))


def _upper_limit(query: exp.Query) -> exp.Query:
    """A stand-in for a later pass (a row filter): every query returns at most 10 rows."""
    assert isinstance(query, exp.Select)
    return query.limit(10)


def test_a_pass_reaches_the_bound_text_too() -> None:
    """The pass runs in the chain the compiled text comes from: no path skips it."""
    model = parse_model(EXAMPLE / "models" / "clean" / "orders.sql", root=EXAMPLE)
    tables = {dep: f"hw_x.{dep.replace('.', '_')}__fp" for dep in model.depends_on}
    renderer = Renderer(passes=[_upper_limit])

    bound = renderer.sql(model, "duckdb", tables)

    assert isinstance(bound, str)
    assert bound.endswith("LIMIT 10")
    _same(bound, render(model.query, tables, passes=[_upper_limit]))
    # without the pass, the text made at parse time is used as it is
    assert Renderer().sql(model, "duckdb", tables) == model.compiled.bind(tables)  # type: ignore[union-attr]


def test_a_renderer_compiles_a_model_once_per_dialect() -> None:
    model = parse_model(EXAMPLE / "models" / "clean" / "orders.sql", root=EXAMPLE)
    renderer = Renderer()

    first = renderer.compiled(model, "postgres")

    assert first is not None and first.dialect == "postgres"
    assert renderer.compiled(model, "postgres") is first
    assert renderer.compiled(model, "duckdb") is model.compiled


def test_a_model_reading_an_inlined_model_is_rendered_from_its_ast() -> None:
    query = sqlglot.parse_one("select id from clean.eph join clean.orders using (id)")
    model = parse_model(EXAMPLE / "models" / "clean" / "orders.sql", root=EXAMPLE)
    refs = (Ref("clean.eph", 1), Ref("clean.orders", 1))
    model = dataclasses.replace(model, query=query, refs=refs, compiled=compile_query(query))
    inline = {"clean.eph": sqlglot.parse_one("select 1 as id")}

    out = Renderer().sql(model, "duckdb", TABLES, inline)

    assert isinstance(out, exp.Query)
    assert "(SELECT 1 AS id) AS eph" in out.sql("duckdb")


def test_a_query_that_holds_a_placeholder_is_not_compiled() -> None:
    query = sqlglot.parse_one("select '__hw_slot__.__hw_0__' as x from clean.orders")

    assert compile_query(query) is None
