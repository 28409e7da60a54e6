"""An environment's view statement, rendered from a per-dialect template, is exactly what the
sqlglot AST of `publish_view` renders, in every dialect, environment and hidden column."""

from __future__ import annotations

import pytest

from headwater.change.versions import publish_view, view_sql


@pytest.mark.parametrize("dialect", ["duckdb", "spark", "postgres", "snowflake"])
@pytest.mark.parametrize("env", ["prod", "dev"])
@pytest.mark.parametrize("hide", [(), ("_hw_deleted",), ("deleted", "truncated")])
def test_a_view_from_the_template_is_the_view_of_the_ast(
    dialect: str, env: str, hide: tuple[str, ...]
) -> None:
    model, physical = "marts.daily", "hw_marts.daily__a1b2c3d4e5f6"
    assert view_sql(model, physical, dialect, env, hide=hide) == publish_view(
        model, physical, env, hide=hide
    ).sql(dialect=dialect)
