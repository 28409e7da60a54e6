"""The physical limit: a project's model SQL as plain `CREATE TABLE zone_name AS ...` statements.

Built from the model files alone (sqlglot and graphlib, no headwater), so the baseline is what
a hand-written DuckDB script would run: the same queries, in the same dependency order.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp


@dataclass(frozen=True)
class Step:
    model: str  # zone.name
    table: str  # zone_name, the table the step creates
    deps: tuple[str, ...]  # models it reads
    sql: str


def plan(project: Path) -> list[Step]:
    """Every model of `project/models/<zone>/<name>.sql` as a step, upstream first."""
    queries = {
        f"{p.parent.name}.{p.stem}": _query(p) for p in sorted((project / "models").glob("*/*.sql"))
    }
    steps = {name: _step(name, query, set(queries)) for name, query in queries.items()}
    order = graphlib.TopologicalSorter({n: s.deps for n, s in steps.items()}).static_order()
    return [steps[name] for name in order]


def table_name(model: str) -> str:
    """`bench.daily_events_007` → `bench_daily_events_007`."""
    return model.replace(".", "_")


def _query(path: Path) -> exp.Query:
    statement = sqlglot.parse_one(path.read_text(encoding="utf-8"), dialect="duckdb")
    if isinstance(statement, exp.Create):
        statement = statement.expression
    assert isinstance(statement, exp.Query), path
    return statement


def _step(model: str, query: exp.Query, models: set[str]) -> Step:
    deps: dict[str, None] = {}
    out = query.copy()
    for table in list(out.find_all(exp.Table)):
        ref = f"{table.db}.{table.name}"
        if not table.db or ref not in models:
            continue  # raw.* views, CTE names and table functions stay as they are
        deps[ref] = None
        target = exp.to_table(table_name(ref))
        # an unaliased reference keeps its old name as alias, so `orders.id` still resolves
        target.set(
            "alias", table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name))
        )
        table.replace(target)
    create = exp.Create(this=exp.to_table(table_name(model)), kind="TABLE", expression=out)
    return Step(model, table_name(model), tuple(deps), create.sql(dialect="duckdb", comments=False))
