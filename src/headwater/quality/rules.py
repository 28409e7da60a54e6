"""Rules → SQL: every rule on a table becomes one aggregate of ONE scanning query.

Each rule contributes a metric expression (bad-row count, duplicate count, null rate, age, row
count); the query returns them all in a single row. Failing row-level rules then fetch a few
sample rows. Results are data (`CheckResult`); the orchestrator decides what a failure blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlglot
from sqlglot import exp

from headwater.contracts import Rule, RuleType, Severity
from headwater.contracts.thresholds import parse_duration, parse_threshold
from headwater.engine.base import Engine
from headwater.errors import SpecError

SAMPLE_ROWS = 5


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one rule on one table: observed metric, the bar, and evidence."""

    rule: Rule
    target: str
    metric: float | None
    passed: bool
    sql: str
    threshold: str
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return not self.passed and self.rule.severity is Severity.ERROR

    @property
    def summary(self) -> str:
        shown = "n/a" if self.metric is None else f"{self.metric:g}"
        return f"{self.rule.type.value} on {self.rule.target}: {shown} (threshold {self.threshold})"


def evaluate(
    rules: Sequence[Rule],
    table: str,
    *,
    engine: Engine,
    now: datetime,
    columns: Sequence[str],
    scope: exp.Expression | None = None,
    key: Sequence[str] = (),
    label: str | None = None,
) -> list[CheckResult]:
    """Run all `rules` on `table` in one scan (plus sample queries for failures).

    Args:
        columns: the table's columns, to refuse rules whose target does not exist.
        scope: a filter applied to every rule (e.g. the batch just landed).
        key: columns identifying a row in samples (the primary key), else all columns.
        label: the name results report (a model's logical name when `table` is physical).
    """
    if not rules:
        return []
    for rule in rules:
        _check_target(rule, table, columns)
    metrics = [_metric(rule, scope) for rule in rules]
    query = exp.select(
        *[m.as_(f"m{i}") for i, m in enumerate(metrics)], exp.Count(this=exp.Star()).as_("total")
    ).from_(_table(table))
    if scope is not None:
        query = query.where(scope.copy())
    params = {"now": now} if any(r.type is RuleType.FRESHNESS for r in rules) else None
    values = engine.read(query, params).to_pylist()[0]
    sql = query.sql(dialect="duckdb")
    results = []
    for i, rule in enumerate(rules):
        metric = values[f"m{i}"]
        passed = _passes(rule, metric, values["total"])
        samples = (
            []
            if passed
            else _samples(rule, table, engine=engine, scope=scope, key=key, columns=columns)
        )
        results.append(
            CheckResult(
                rule,
                label or table,
                None if metric is None else float(metric),
                passed,
                sql,
                _shown_threshold(rule),
                samples,
            )
        )
    return results


def _metric(rule: Rule, scope: exp.Expression | None) -> exp.Expression:
    cols = [exp.column(c, quoted=True) for c in rule.columns]
    where = _condition(rule.where) if rule.where else None
    if rule.type is RuleType.ROW_COUNT:
        return _count_if(where)
    if rule.type is RuleType.FRESHNESS:
        newest = exp.cast(exp.Max(this=cols[0]), "timestamptz")
        if where is not None:
            newest = exp.cast(
                exp.Filter(this=exp.Max(this=cols[0]), expression=exp.Where(this=where)),
                "timestamptz",
            )
        # Anonymous: keep DuckDB's own date_diff(part, start, end) argument order
        return exp.Anonymous(
            this="date_diff",
            expressions=[
                exp.Literal.string("second"),
                newest,
                exp.cast(exp.Placeholder(this="now"), "timestamptz"),
            ],
        )
    if rule.type is RuleType.UNIQUENESS:
        present = exp.and_(*[c.is_(exp.null()).not_() for c in cols])
        key: exp.Expression = cols[0] if len(cols) == 1 else exp.Tuple(expressions=cols)
        distinct = exp.Count(this=exp.Distinct(expressions=[key]))
        if where is not None:
            distinct = exp.Filter(this=distinct, expression=exp.Where(this=where.copy()))
        return exp.Sub(this=_count_if(_and(present, where)), expression=distinct)
    if rule.type is RuleType.COMPLETENESS:
        nulls = _count_if(_and(cols[0].is_(exp.null()), where))
        return exp.Div(
            this=exp.cast(nulls, "double"),
            expression=exp.func("greatest", _count_if(where), exp.Literal.number(1)),
        )
    return _count_if(_and(bad_rows(rule), where))


def bad_rows(rule: Rule) -> exp.Expression:
    """The condition a row fails a row-level rule (not_null, completeness, valid_values)."""
    col = exp.column(rule.columns[0], quoted=True)
    if rule.type in (RuleType.NOT_NULL, RuleType.COMPLETENESS):
        return col.is_(exp.null())
    if rule.type is RuleType.VALID_VALUES:
        ok: list[exp.Expression] = []
        if rule.values:
            ok.append(col.isin(*[_literal(v) for v in rule.values]))
        if rule.min is not None:
            ok.append(exp.GTE(this=col.copy(), expression=_literal(rule.min)))
        if rule.max is not None:
            ok.append(exp.LTE(this=col.copy(), expression=_literal(rule.max)))
        if rule.pattern is not None:
            ok.append(
                exp.func(
                    "regexp_full_match",
                    exp.cast(col.copy(), "varchar"),
                    exp.Literal.string(rule.pattern),
                )
            )
        return exp.and_(col.is_(exp.null()).not_(), exp.not_(exp.and_(*ok)))
    raise ValueError(f"{rule.type.value} is not a row-level rule")


def _passes(rule: Rule, metric: Any, total: int) -> bool:
    if metric is None:
        return False
    if rule.type is RuleType.FRESHNESS:
        return float(metric) <= parse_duration(rule.threshold)
    if rule.type is RuleType.ROW_COUNT:
        low = parse_threshold(rule.min if rule.min is not None else rule.threshold or 1)
        high = parse_threshold(rule.max) if rule.max is not None else float("inf")
        return low <= metric <= high
    if rule.type is RuleType.COMPLETENESS:
        return float(metric) <= parse_threshold(rule.threshold or 0)
    return _allowed(int(metric), total, rule.threshold)


def _allowed(bad: int, total: int, threshold: Any) -> bool:
    """`threshold` is a count when whole (10), a fraction of the rows otherwise (0.01, "1%")."""
    if threshold is None:
        return bad == 0
    limit = parse_threshold(threshold)
    if limit >= 1 or (limit == 0):
        return bad <= limit
    return total > 0 and bad / total <= limit


def _samples(
    rule: Rule,
    table: str,
    *,
    engine: Engine,
    scope: exp.Expression | None,
    key: Sequence[str],
    columns: Sequence[str],
) -> list[dict[str, Any]]:
    if rule.type in (RuleType.FRESHNESS, RuleType.ROW_COUNT):
        return []
    if rule.type is RuleType.UNIQUENESS:
        cols = [exp.column(c, quoted=True) for c in rule.columns]
        query = (
            exp.select(*cols, exp.Count(this=exp.Star()).as_("copies"))
            .from_(_table(table))
            .group_by(*cols)
            .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1)))
            .order_by(exp.Ordered(this=exp.column("copies"), desc=True))
            .limit(SAMPLE_ROWS)
        )
        condition = _and(scope, _condition(rule.where) if rule.where else None)
    else:
        shown = list(dict.fromkeys([*key, *rule.columns])) if key else list(columns)
        query = (
            exp.select(*[exp.column(c, quoted=True) for c in shown])
            .from_(_table(table))
            .limit(SAMPLE_ROWS)
        )
        condition = _and(
            bad_rows(rule), _and(scope, _condition(rule.where) if rule.where else None)
        )
    if condition is not None:
        query = query.where(condition)
    return engine.read(query).to_pylist()


def _check_target(rule: Rule, table: str, columns: Sequence[str]) -> None:
    for col in rule.columns:
        if col not in columns:
            raise SpecError(
                f"rule {rule.name!r}: target column {col!r} does not exist in {table}",
                hint=f"columns are: {', '.join(columns)}",
            )


def _count_if(condition: exp.Expression | None) -> exp.Expression:
    count = exp.Count(this=exp.Star())
    return (
        count if condition is None else exp.Filter(this=count, expression=exp.Where(this=condition))
    )


def _and(a: exp.Expression | None, b: exp.Expression | None) -> exp.Expression | None:
    if a is None or b is None:
        return a if b is None else b
    return exp.and_(a.copy(), b.copy())


def _condition(text: str) -> exp.Expression:
    return sqlglot.parse_one(text, dialect="duckdb")


def _literal(value: Any) -> exp.Expression:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def _table(name: str) -> exp.Table:
    return exp.to_table(name, dialect="duckdb")


def _shown_threshold(rule: Rule) -> str:
    if rule.type is RuleType.ROW_COUNT:
        low = rule.min if rule.min is not None else rule.threshold or 1
        return f">= {low}" + (f", <= {rule.max}" if rule.max is not None else "")
    if rule.type is RuleType.FRESHNESS:
        return f"<= {rule.threshold}"
    return f"<= {rule.threshold if rule.threshold is not None else 0}"
