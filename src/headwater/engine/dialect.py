"""The SQL dialect people write in: models, rules, predicates, column types and `where:`.

Every band reads user SQL, so this module is band 0 (tests/test_bands.py says so): it
imports sqlglot and nothing of headwater. What an engine runs is rendered from these ASTs in
the engine's own dialect, inside `engine/` only (`Engine.dialect`).
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

AUTHORED = "duckdb"  # DESIGN.md §6: "transpiled by sqlglot from the model's dialect"


def parse_one(text: str) -> exp.Expr:
    """One statement or expression of user SQL (raises sqlglot's ParseError)."""
    return sqlglot.parse_one(text, dialect=AUTHORED)


def parse(text: str) -> list[exp.Expr]:
    """Every statement of user SQL, empty ones left out."""
    return [s for s in sqlglot.parse(text, dialect=AUTHORED) if s is not None]


def parse_type(text: str, *, udt: bool = False) -> exp.DataType:
    """A column type as people write it (raises ValueError / ParseError)."""
    return exp.DataType.build(text, dialect=AUTHORED, udt=udt)


def table(name: str) -> exp.Table:
    """`zone.name` (or a bare name) as a table reference."""
    return exp.to_table(name, dialect=AUTHORED)


def shown(node: exp.Expr, *, comments: bool = True, normalize: bool = False) -> str:
    """`node` as text in the authored dialect: for people (errors, reports, `headwater
    schema`) and for fingerprints — never for an engine to run."""
    return node.sql(dialect=AUTHORED, comments=comments, normalize=normalize)


def tokenize(text: str) -> list[sqlglot.Token]:
    return sqlglot.Dialect.get_or_raise(AUTHORED).tokenize(text)


# the engines a project may name in `headwater.yml`, the first the default
ENGINES = ("duckdb", "spark", "postgres")
