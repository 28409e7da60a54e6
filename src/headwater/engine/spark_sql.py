"""What of a model's SQL Spark cannot run, found when the project loads (issue #21, point 1).

Models are written in DuckDB's dialect and transpiled by sqlglot. Three things go wrong on
the way, and each would otherwise surface at run time, on the cluster:

- a function sqlglot does not know is passed through by name (`list_sum(…)`), and Spark has
  no function of that name;
- a function it knows becomes one Spark does not have (`time_bucket(…)` → `DATE_BIN(…)`);
- a construct its Spark generator itself calls unsupported.

Spark's functions are the list of `SHOW FUNCTIONS` kept beside this module (a test checks it
against a live session). No pyspark here: this runs on every `headwater build` of a project
with `engine: spark`, before any session starts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

# what Spark renders as `NAME(` without it being a function of SHOW FUNCTIONS
_SYNTAX = {"cast", "try_cast", "interval", "extract", "trim", "position", "overlay"}
_CALL = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\(")


@dataclass(frozen=True)
class Untranslatable:
    """A function of a model that Spark cannot run: its name as written, where, and why."""

    name: str
    line: int | None
    reason: str


@cache
def spark_functions() -> frozenset[str]:
    """Spark's built-in functions, lower case."""
    text = resources.files("headwater.engine").joinpath("spark_functions.txt").read_text()
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def untranslatable(query: exp.Expr, text: str | None = None) -> list[Untranslatable]:
    """The functions of `query` (parsed from `text`, DuckDB's dialect) Spark cannot run, in
    the order they are written.

    Example:
        >>> [u.name for u in untranslatable(parse_one("select list_sum(xs) from t"))]
        ['list_sum']
    """
    known = spark_functions()
    found: dict[tuple[str, int | None], Untranslatable] = {}
    reasons: set[str] = set()
    # innermost first: a function that cannot be rendered makes its callers fail too
    for node in reversed(list(query.find_all(exp.Func))):
        name, line = _written(node, text)
        reason = None
        if isinstance(node, exp.Anonymous):
            if node.name.lower() not in known:
                reason = f"Spark has no function {node.name.lower()}()"
        else:
            try:
                rendered = node.transform(spark_nodes).sql(
                    dialect="spark", unsupported_level=ErrorLevel.RAISE
                )
            except UnsupportedError as err:
                message = str(err).strip()
                reason = None if message in reasons else f"sqlglot cannot render it: {message}"
                reasons.add(message)
            else:
                call = _CALL.match(rendered)
                target = call.group(1).lower() if call else None
                if target and target not in known and target not in _SYNTAX:
                    reason = f"it becomes {target.upper()}(…), which Spark does not have"
        if reason:
            found.setdefault((name, line), Untranslatable(name, line, reason))
    return sorted(found.values(), key=lambda u: (u.line or 0, u.name))


def spark_nodes(node: exp.Expr) -> exp.Expr:
    """Where sqlglot's Spark output is wrong, the node Spark needs (each with a test in
    tests/engine/test_spark_sql.py): a full regular-expression match is RLIKE anchored at
    both ends (Spark has no REGEXP_FULL_MATCH; RLIKE matches anywhere in the text); a sample
    of n rows has no seed, and a query's is a LIMIT; QUALIFY a filter of a subquery (see
    `unqualified`); exact quantiles one per fraction; a view's comment a property (Spark
    has no COMMENT ON VIEW)."""
    if isinstance(node, exp.Comment) and str(node.args.get("kind")).upper() == "VIEW":
        comment = exp.Property(this=exp.Literal.string("comment"), value=node.expression.copy())
        return exp.Alter(
            this=node.this.copy(),
            kind="VIEW",
            actions=[exp.AlterSet(expressions=[exp.Properties(expressions=[comment])])],
        )
    if isinstance(node, exp.Select) and node.args.get("qualify") is not None:
        return unqualified(node)
    if isinstance(node, exp.PercentileDisc) and node.expression is not None:
        # DuckDB's quantile_disc(v, fraction or [fractions]): Spark's percentile_disc takes
        # one fraction, WITHIN GROUP (sqlglot writes PERCENTILE_APPROX, an estimate)
        fractions = node.expression
        listed = fractions.expressions if isinstance(fractions, exp.Array) else [fractions]
        value, back = _as_number(node.this)
        exact = [
            back(
                exp.WithinGroup(
                    this=exp.Anonymous(this="percentile_disc", expressions=[_nudged(f)]),
                    expression=exp.Order(expressions=[exp.Ordered(this=value.copy())]),
                )
            )
            for f in listed
        ]
        return exp.Array(expressions=exact) if isinstance(fractions, exp.Array) else exact[0]
    sample = node.args.get("sample") if isinstance(node, exp.Select) else None
    if isinstance(sample, exp.TableSample) and sample.args.get("size") is not None:
        # DuckDB's `USING SAMPLE n ROWS` of a query: Spark samples tables only, and its
        # `TABLESAMPLE (n ROWS)` is the first n rows anyway — a LIMIT
        assert isinstance(node, exp.Select)
        node = node.copy()
        node.set("sample", None)
        return node if node.args.get("limit") else node.limit(sample.args["size"].copy())
    if isinstance(node, exp.TableSample) and node.args.get("size") and node.args.get("seed"):
        # `TABLESAMPLE (n ROWS)` is Spark's first n rows, the same each time: no seed to give
        # (sqlglot writes DuckDB's REPEATABLE as SEED, which Spark refuses)
        node = node.copy()
        node.set("seed", None)
        node.set("method", None)
        return node
    if isinstance(node, exp.RegexpFullMatch):
        anchored = exp.Concat(
            expressions=[exp.Literal.string("^(?:"), node.expression, exp.Literal.string(")$")]
        )
        return exp.RegexpLike(this=node.this, expression=anchored)
    return node


def _nudged(fraction: exp.Expr) -> exp.Expr:
    """A quantile's fraction as Spark's percentile_disc needs it to pick DuckDB's (the
    exact) value: Spark computes the rank p·n in floating point, where 0.15 · 6000 is
    900.0000000000001, so it takes the 901st value for the 900th. A fraction less 1e-12
    ranks exactly for any n under 1e9 (p·n is a whole number or at least 1e-3 from one for
    the fractions headwater asks for: i/bins, bins ≤ 1,000)."""
    if not (isinstance(fraction, exp.Literal) and fraction.is_number):
        return fraction.copy()
    value = float(fraction.this)
    return exp.Literal.number(repr(max(0.0, value - 1e-12)) if 0 < value < 1 else fraction.this)


def _as_number(value: exp.Expr) -> tuple[exp.Expr, Callable[[exp.Expr], exp.Expr]]:
    """A value Spark's percentile_disc takes (numbers only), and how to turn its quantile back:
    a value cast to a date counts days since the epoch, to a timestamp microseconds."""
    if isinstance(value, exp.Cast) and value.to.is_type(exp.DataType.Type.DATE):
        days = exp.func("unix_date", value.copy())
        return days, lambda q: exp.func("date_from_unix_date", exp.cast(q, "int"))
    if isinstance(value, exp.Cast) and value.to.is_type(*exp.DataType.TEMPORAL_TYPES):
        micros = exp.func("unix_micros", exp.cast(value.this.copy(), "timestamp"))
        return micros, lambda q: exp.func("timestamp_micros", exp.cast(q, "bigint"))
    return value, lambda q: q


def unqualified(select: exp.Select) -> exp.Select:
    """`select`'s QUALIFY as Spark (which has none) can run it: the window functions it
    filters on, and the columns it reads that `select` does not return, become columns of
    the query as a subquery; its condition filters those, and `* EXCEPT` leaves them out.
    (sqlglot's own rewrite returns the window's column too when the query selects `*`, and
    a column selected besides `*` twice.)"""
    inner = select.copy()
    condition = inner.args["qualify"].this
    inner.set("qualify", None)
    named = {e.alias_or_name for e in inner.expressions}
    star = any(isinstance(e, exp.Star) for e in inner.expressions)
    extra: list[exp.Expr] = []

    def apart(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Window) or (
            isinstance(node, exp.Column) and not star and node.name not in named
        ):
            alias = f"_hw_q{len(extra)}"
            extra.append(exp.alias_(node.copy(), alias))
            return exp.column(alias)
        return node

    condition = condition.copy().transform(apart)
    for column in extra:
        inner.select(column, copy=False)
    kept = exp.Star(except_=[exp.column(e.alias) for e in extra]) if extra else exp.Star()
    return exp.select(kept).from_(inner.subquery("_hw_q")).where(condition)


def _written(node: exp.Func, text: str | None) -> tuple[str, int | None]:
    """The function's name as the model's author wrote it, and its line."""
    meta = node.meta
    line = meta.get("line")
    start, end = meta.get("start"), meta.get("end")
    if text is not None and isinstance(start, int) and isinstance(end, int):
        return text[start : end + 1].lower(), line
    if isinstance(node, exp.Anonymous):
        return node.name.lower(), line
    return node.sql_name().lower(), line
