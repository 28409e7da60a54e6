"""Rules → SQL: every scanning rule on a table becomes one aggregate of ONE query.

Each scanning rule contributes a metric expression (bad-row count, duplicate count, null rate,
age, row count); the query returns them all in a single row. A referential-integrity rule adds
one anti-join, a custom SQL rule one count of its query; a schema rule reads no rows at all.
Failing rules then fetch a few sample rows. Results are data (`CheckResult`); the orchestrator
decides what a failure blocks.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

import sqlglot
from sqlglot import exp

import headwater.engine.dialect as authored
from headwater.contracts import OnFail, Rule, RuleType
from headwater.contracts.predicates import bad_rows
from headwater.contracts.thresholds import parse_duration, parse_threshold
from headwater.engine.base import Engine
from headwater.errors import HeadwaterError, Location, SpecError
from headwater.quality.profile import TableProfile, profile_aggregates, read_profile

SAMPLE_ROWS = 5
# row-level rules: a row passes or fails on its own (so it can be sampled, or quarantined)
_ROW_LEVEL = {RuleType.NOT_NULL, RuleType.COMPLETENESS, RuleType.VALID_VALUES}
# rules answered by the one aggregate query; the others run queries of their own
_SCANNING = {
    RuleType.FRESHNESS,
    RuleType.UNIQUENESS,
    RuleType.COMPLETENESS,
    RuleType.VALID_VALUES,
    RuleType.NOT_NULL,
    RuleType.ROW_COUNT,
    RuleType.VOLUME,
}


# rules judged against history, by the orchestrator (orchestrate/judged.py): left out here
HISTORICAL = {RuleType.DRIFT, RuleType.ANOMALY}


class Stats(Protocol):
    """What metadata knows of the rows under test (a landed batch's manifests, the engine's
    statistics of a version just written)."""

    rows: int
    nulls: Mapping[str, int]  # column → null count, for the columns it is known of
    lower: Mapping[str, Any]  # column → minimum (a bound below it when not `bounds_exact`)
    upper: Mapping[str, Any]  # column → maximum (a bound above it when not `bounds_exact`)
    bounds_exact: bool  # whether `lower`/`upper` are the values (freshness needs the newest)


METADATA = "-- answered from metadata (row and null counts, bounds); no rows read"
ENFORCED = "-- the write enforces this key (incremental_by_key unique_key); no rows read"


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
        return not self.passed and self.rule.action is OnFail.BLOCK

    @property
    def summary(self) -> str:
        shown = "n/a" if self.metric is None else f"{self.metric:g}"
        return f"{self.rule.type.value} on {self.rule.target}: {shown} (threshold {self.threshold})"


def evaluate(rules: Sequence[Rule], table: str, **options: Any) -> list[CheckResult]:
    """Run all `rules` on `table` (see `evaluate_profiled`, without a profile)."""
    results, _ = evaluate_profiled(rules, table, **options)
    return results


def evaluate_profiled(
    rules: Sequence[Rule],
    table: str,
    *,
    engine: Engine,
    now: datetime,
    columns: Sequence[str],
    scope: exp.Expr | None = None,
    key: Sequence[str] = (),
    label: str | None = None,
    tables: Mapping[str, str] | None = None,
    declared: Mapping[str, str | None] | None = None,
    history: Mapping[str, Sequence[float]] | None = None,
    stats: Stats | None = None,
    unique: Sequence[Sequence[str]] = (),
    pii: Mapping[str, str] | None = None,
    profile: Mapping[str, str] | None = None,
    profile_rows: int | None = None,
) -> tuple[list[CheckResult], TableProfile | None]:
    """Run all `rules` on `table` but drift and anomaly ones (judged against history, see
    orchestrate/judged.py): the scanning ones in one query, then one query per
    referential-integrity or custom SQL rule, plus sample queries for failures; and profile
    the `profile` columns in that same one query (a scan of its own only when no rule scans).

    Args:
        columns: the table's columns, to refuse rules whose target does not exist.
        scope: a filter applied to every rule (e.g. the batch just landed).
        key: columns identifying a row in samples (the primary key), else all columns.
        label: the name results report (a model's logical name when `table` is physical).
        tables: logical → physical names for the tables rules read besides `table` (a model
            audited before its environment points at it reads its inputs' new versions).
        declared: column → declared type (None: any type), for schema rules.
        history: rule name → its earlier metrics, newest first, for volume rules.
        stats: what metadata knows of exactly the rows under test (the scope): rules it
            answers are not scanned (row counts, null counts, freshness, ranges within
            bounds); a row-level rule it says fails is scanned anyway, for its samples.
        unique: keys the write enforces (an incremental_by_key model's unique_key): a
            uniqueness rule on one of them holds without the costly distinct count.
        pii: column → PII tag of the table's columns that hold PII: samples show them
            masked (`mask`), never their values; read only when a rule fails.
        profile: column → engine type of the columns to profile (`quality.profile`); a PII
            column's profile holds counts only.
        profile_rows: about how many rows are under test, when `stats` does not say: it
            sizes the sample of the profile's quantiles and top values.
    """
    for index, rule in enumerate(rules):
        if rule.type not in HISTORICAL:
            _check_target(rule, index, label or table, columns)
    rules = [r for r in rules if r.type not in HISTORICAL]
    if not rules and not profile:
        return [], None
    values: dict[str, Any] = {}
    if stats is not None:
        values = _from_metadata(rules, stats, now, history or {})
        if values:
            values["*total"] = stats.rows
    enforced = {frozenset(k) for k in unique}
    held = {
        r.name
        for r in rules
        if r.type is RuleType.UNIQUENESS and r.where is None and frozenset(r.columns) in enforced
    }
    scanning = [r for r in rules if r.type in _SCANNING and r.name not in {*values, *held}]
    scan_sql: dict[str, str] = {}  # rule → the query that measured it
    found: dict[str, list[Any]] = {}  # row-level rule → keys of rows it fails on, from the scan
    hidden = set(pii or {})
    # a column's distinct values a uniqueness rule counts are not estimated besides
    counted = {
        r.columns[0]: r.name
        for r in scanning
        if r.type is RuleType.UNIQUENESS and r.where is None and len(r.columns) == 1
    }
    planned = (
        profile_aggregates(
            engine,
            profile,
            hidden=hidden,
            rows=stats.rows if stats else profile_rows,
            known=stats,
            counted=counted,
        )
        if profile
        else None
    )
    folded: list[exp.Expr] = []
    if planned is not None:  # the profile's aggregates over every row join the rules' scan
        folded = planned.whole + (planned.sketches if planned.share == 1.0 else [])
    table_profile = None
    row: dict[str, Any] = {}
    if scanning or folded:
        query, apart, sampled = _scan(scanning, table, scope, key, folded)
        params = {"now": now} if any(r.type is RuleType.FRESHNESS for r in scanning) else None
        row = engine.read(query, params).to_pylist()[0]
        for alone in apart.values():
            row |= engine.read(alone).to_pylist()[0]
        values.update({scanning[i].name: row[f"m{i}"] for i in range(len(scanning))})
        values["*total"] = row["total"]
        found = {scanning[i].name: [row[f"k{i}"]] for i in sampled if row[f"k{i}"] is not None}
        scan_sql = {r.name: engine.render(query) for r in scanning}
        scan_sql |= {scanning[i].name: engine.render(alone) for i, alone in apart.items()}
    if planned is not None and profile is not None:
        if not row:  # nothing left to scan for: the rows under test are counted already
            row = (
                {"total": stats.rows}
                if stats is not None
                else engine.read(_scan([], table, scope, key, [])[0]).to_pylist()[0]
            )
        total = int(row["total"])
        if planned.sketches and planned.share != 1.0 and total:
            for sample in planned.sample_queries(_table(table), scope, total):
                row |= engine.read(sample).to_pylist()[0]
        duplicates = {c: values[name] for c, name in counted.items()}
        table_profile = read_profile(
            row, profile, total, hidden=hidden, known=stats, duplicates=duplicates
        )
    failing_keys = {  # failing on as many rows as the scan has keys of: all of its samples
        r.name: found[r.name]
        for r in scanning
        if r.name in found
        and values[r.name] <= len(found[r.name])
        and not _passes(r, values[r.name], values["*total"], (history or {}).get(r.name, ()))
    }
    by_key = _rows_by_key(rules, failing_keys, table, engine=engine, scope=scope, key=key)
    results = []
    for index, rule in enumerate(rules):
        samples: list[dict[str, Any]]
        if rule.name in held:
            metric: float | None = 0
            passed, sql, samples = True, ENFORCED, []
            shown = _shown_threshold(rule, ())
        elif rule.type in _SCANNING:
            metric = values[rule.name]
            sql = scan_sql.get(rule.name, METADATA)
            passed = _passes(rule, metric, values["*total"], (history or {}).get(rule.name, ()))
            shown = _shown_threshold(rule, (history or {}).get(rule.name, ()))
            if passed:
                samples = []
            elif rule.name in by_key:
                samples = by_key[rule.name]
            else:
                samples = _samples(
                    rule, table, engine=engine, scope=scope, key=key, columns=columns
                )
        else:
            metric, passed, sql, samples = _own_query(
                rule,
                index,
                table,
                engine=engine,
                scope=scope,
                key=key,
                tables=tables or {},
                declared=declared,
            )
            shown = _shown_threshold(rule, ())
        results.append(
            CheckResult(
                rule,
                label or table,
                None if metric is None else float(metric),
                passed,
                sql,
                shown,
                _masked(rule, samples, pii or {}, columns),
            )
        )
    return results, table_profile


def _scan(
    scanning: Sequence[Rule],
    table: str,
    scope: exp.Expr | None,
    key: Sequence[str],
    profiled: Sequence[exp.Expr] = (),
) -> tuple[exp.Select, dict[int, exp.Select], list[int]]:
    """The one aggregate query of the scanning rules: metric `m<i>` of each, `total`, and,
    for each pattern rule when rows have a one-column key, `k<i>`: the smallest key of a row
    it fails on. Each row-level condition is computed once, as a column of the rows read
    (`_hw_bad<i>`). A regular expression costs about a scan to evaluate: a pattern rule that
    fails on one row has its sample looked up by that key instead of scanned for again
    (measured: a key per rule costs a filtered MIN, ~0.1 s on 10M rows; five keys, with
    ARG_MIN(…, 5), more than the scan they save). Other rules' conditions are cheap, and
    their sample queries pruned by min/max: they are sampled by a query of their own.

    Each uniqueness rule's distinct count goes in a query of its own (`apart`), reading its
    key columns only, when anything else is measured: beside a distinct count DuckDB
    materializes the rows read for the query's other aggregates, which costs more than
    reading the key again (measured on 10M rows of 12 columns, 20 rules, two of them
    uniqueness: 4.0 s of CPU apart, 4.2 s together, and a profile's aggregates, free beside
    the other counts, cost 1.5 s more beside a distinct count). Two distinct counts together
    cost from 1x to 2x their cost apart, unpredictably.
    Returns the query, the distinct counts' queries by `i`, and the `i` of the rules whose
    key the query collects."""
    bad = {i: _failing(rule) for i, rule in enumerate(scanning) if rule.type in _ROW_LEVEL}
    rows = exp.select(
        exp.Star(),
        *[exp.alias_(c, f"_hw_bad{i}", quoted=True) for i, c in bad.items() if c],
    ).from_(_table(table))
    if scope is not None:
        rows = rows.where(scope.copy())
    metrics: dict[int, exp.Expr] = {}
    for i, rule in enumerate(scanning):
        if i in bad and rule.type is not RuleType.COMPLETENESS:
            metrics[i] = _count_if(exp.column(f"_hw_bad{i}", quoted=True))
        else:
            metrics[i] = _metric(rule, None)
    distinct = [i for i, rule in enumerate(scanning) if rule.type is RuleType.UNIQUENESS]
    apart: dict[int, exp.Select] = {}
    if len(distinct) > 1 or (distinct and (len(distinct) < len(scanning) or profiled)):
        for i in distinct:
            alone = exp.select(metrics.pop(i).as_(f"m{i}")).from_(_table(table))
            apart[i] = alone.where(scope.copy()) if scope is not None else alone
    sampled = [i for i in bad if scanning[i].pattern is not None] if len(key) == 1 else []
    first_keys = [
        exp.Filter(
            this=exp.Min(this=exp.column(key[0], quoted=True)),
            expression=exp.Where(this=exp.column(f"_hw_bad{i}", quoted=True)),
        ).as_(f"k{i}")
        for i in sampled
    ]
    query = exp.select(
        *[m.as_(f"m{i}") for i, m in metrics.items()],
        *first_keys,
        exp.Count(this=exp.Star()).as_("total"),
        *profiled,
    ).from_(exp.Subquery(this=rows, alias=exp.TableAlias(this=exp.to_identifier("_hw_rows"))))
    return query, apart, sampled


def _rows_by_key(
    rules: Sequence[Rule],
    failing: Mapping[str, list[Any]],
    table: str,
    *,
    engine: Engine,
    scope: exp.Expr | None,
    key: Sequence[str],
) -> dict[str, list[dict[str, Any]]]:
    """The sample rows of failing row-level rules, fetched by the keys the scan found, in
    one query for all of them (a lookup, not a scan of the conditions). A rule whose keys
    cannot be named in SQL is left out: it is sampled by its own query."""
    wanted = {
        name: keys
        for name, keys in failing.items()
        if keys and all(isinstance(k, _KEY_TYPES) and not isinstance(k, bool) for k in keys)
    }
    if not wanted:
        return {}
    by_name = {r.name: r for r in rules}
    picked = [by_name[name] for name in wanted]
    shown = list(dict.fromkeys([key[0], *[c for r in picked for c in r.columns]]))
    column = exp.column(key[0], quoted=True)
    every = sorted({k for keys in wanted.values() for k in keys}, key=repr)
    condition = column.isin(*[_literal_value(k) for k in every])
    query = exp.select(
        *[exp.column(c, quoted=True) for c in shown],
        *[exp.alias_(_failing(r), f"_hw_bad{i}", quoted=True) for i, r in enumerate(picked)],
    ).from_(_table(table))
    query = query.where(_and(condition, scope))
    rows = engine.read(query).to_pylist()
    out: dict[str, list[dict[str, Any]]] = {}
    for i, rule in enumerate(picked):
        keep = list(dict.fromkeys([key[0], *rule.columns]))
        hits = [r for r in rows if r[f"_hw_bad{i}"] and r[key[0]] in set(wanted[rule.name])]
        hits.sort(key=lambda r: wanted[rule.name].index(r[key[0]]))
        out[rule.name] = [{c: r[c] for c in keep} for r in hits[:SAMPLE_ROWS]]
    return out


def _failing(rule: Rule) -> exp.Expr:
    """The condition a row fails a row-level rule on, its `where:` included."""
    condition = bad_rows(rule)
    return exp.and_(condition, _condition(rule.where)) if rule.where else condition


_KEY_TYPES = (int, float, Decimal, str, date)  # keys a lookup can name (datetime is a date)


def _literal_value(value: Any) -> exp.Expr:
    """A key value as a typed SQL literal (numbers, text, dates and times)."""
    if isinstance(value, int | float | Decimal):
        return exp.Literal.number(value)
    if isinstance(value, datetime):
        kind = "timestamptz" if value.tzinfo is not None else "timestamp"
        return exp.cast(exp.Literal.string(value.isoformat()), kind)
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), "date")
    return exp.Literal.string(str(value))


def _from_metadata(
    rules: Sequence[Rule], stats: Stats, now: datetime, history: Mapping[str, Sequence[float]]
) -> dict[str, Any]:
    """The metrics `stats` answers exactly, by rule name. A rule with `where:` needs rows;
    a row-level rule is answered only when it passes (a failure needs sample rows)."""
    out: dict[str, Any] = {}
    for rule in rules:
        if rule.where is not None:
            continue
        column = rule.columns[0] if rule.columns else None
        metric: Any = None
        if rule.type in (RuleType.ROW_COUNT, RuleType.VOLUME):
            metric = stats.rows
        elif column is None:
            continue
        elif rule.type is RuleType.NOT_NULL and column in stats.nulls:
            metric = stats.nulls[column]
        elif rule.type is RuleType.COMPLETENESS and column in stats.nulls:
            metric = stats.nulls[column] / max(stats.rows, 1)
        elif rule.type is RuleType.FRESHNESS and stats.bounds_exact and column in stats.upper:
            newest = stats.upper[column]
            if isinstance(newest, datetime):  # whole seconds crossed, as date_diff counts
                metric = math.floor(now.timestamp()) - math.floor(newest.timestamp())
        elif (
            _range_only(rule)
            and column in stats.lower
            and column in stats.upper
            and _within(stats.lower[column], stats.upper[column], rule)
        ):
            metric = 0
        if metric is None:
            continue
        if rule.type in _ROW_LEVEL and not _passes(rule, metric, stats.rows, ()):
            continue
        out[rule.name] = metric
    return out


@dataclass(frozen=True)
class Known:
    """`Stats` as read from somewhere: a write's own count and its engine's statistics."""

    rows: int
    nulls: Mapping[str, int] = field(default_factory=dict)
    lower: Mapping[str, Any] = field(default_factory=dict)
    upper: Mapping[str, Any] = field(default_factory=dict)
    bounds_exact: bool = True
    # what profiles use besides, from an engine that measured the write (see ColumnStats)
    distinct: Mapping[str, int] = field(default_factory=dict)  # estimates
    means: Mapping[str, float] = field(default_factory=dict)
    quantiles: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # at QUANTILES
    top: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # most frequent first


def written(
    engine: Engine,
    table: str,
    rules: Sequence[Rule],
    rows: int,
    *,
    exact: bool,
    profiled: Collection[str] = (),
) -> Known:
    """What a write knows of the table it just wrote: its row count (row_count and volume
    rules need no scan) and, from the engine's statistics, which columns hold no NULL and the
    bounds of their values (not_null, completeness, range and freshness rules that pass need
    no scan either; what they cannot tell is left to the scan). `exact`: the table was
    written whole, nothing deleted since, so its bounds are its minimum and maximum."""
    wanted = _answerable(rules) | set(profiled)
    if not wanted or not engine.capabilities.column_stats:
        return Known(rows)
    found = engine.column_stats(table, sorted(wanted))
    # a count of NULLs or distinct values, a mean or quantiles the engine keeps are of the
    # whole table: only a whole write's are of the rows under test
    whole = found if exact else {}
    return Known(
        rows,
        {c: s.nulls for c, s in whole.items() if s.nulls is not None}
        | {c: 0 for c, s in found.items() if not s.may_be_null},
        {c: s.lower for c, s in found.items() if s.lower is not None},
        {c: s.upper for c, s in found.items() if s.upper is not None},
        bounds_exact=exact,
        distinct={c: s.distinct for c, s in whole.items() if s.distinct is not None},
        means={c: s.mean for c, s in whole.items() if s.mean is not None},
        quantiles={c: s.quantiles for c, s in whole.items() if s.quantiles is not None},
        top={c: s.top for c, s in whole.items() if s.top is not None},
    )


def _answerable(rules: Sequence[Rule]) -> set[str]:
    """The columns whose null counts or bounds would let metadata answer one of `rules`."""
    return {
        rule.columns[0]
        for rule in rules
        if rule.where is None
        and rule.columns
        and (
            rule.type in (RuleType.NOT_NULL, RuleType.COMPLETENESS, RuleType.FRESHNESS)
            or _range_only(rule)
        )
    }


def _range_only(rule: Rule) -> bool:
    """A valid_values rule that bounds values (min, max) and asks nothing else of them."""
    return (
        rule.type is RuleType.VALID_VALUES
        and not (rule.values or rule.pattern)
        and rule.min_length is None
        and rule.max_length is None
    )


def _within(low: Any, high: Any, rule: Rule) -> bool:
    """Whether [low, high] lies inside the rule's [min, max] (False when not comparable)."""
    try:
        above = rule.min is None or low >= _like(rule.min, low)
        below = rule.max is None or high <= _like(rule.max, high)
    except (TypeError, ValueError, ArithmeticError):
        return False
    return bool(above and below)


def _like(bound: Any, value: Any) -> Any:
    """A rule bound as the kind of value a column bound is, to compare them."""
    if isinstance(value, datetime):
        moment = datetime.fromisoformat(str(bound))
        return moment if moment.tzinfo else moment.replace(tzinfo=value.tzinfo)
    if isinstance(value, date):
        return date.fromisoformat(str(bound))
    return bound if isinstance(bound, int | float) else float(bound)


def _own_query(
    rule: Rule,
    index: int,
    table: str,
    *,
    engine: Engine,
    scope: exp.Expr | None,
    key: Sequence[str],
    tables: Mapping[str, str],
    declared: Mapping[str, str | None] | None,
) -> tuple[float | None, bool, str, list[dict[str, Any]]]:
    """Metric, verdict, SQL and samples of a rule that is not part of the scan."""
    if rule.type is RuleType.SCHEMA:
        return _schema(rule, table, engine=engine, declared=declared or {})
    if rule.type is RuleType.REFERENTIAL_INTEGRITY:
        _check_reference(rule, index, engine=engine, tables=tables)
        failing = _orphans(rule, table, scope=scope, tables=tables)
    else:
        failing = _custom(rule, table, scope=scope, tables=tables)
    count = exp.select(exp.Count(this=exp.Star()).as_("bad")).from_(failing.subquery("_f"))
    bad = int(engine.read(count).to_pylist()[0]["bad"])
    total = bad
    if rule.threshold is not None and 0 < parse_threshold(rule.threshold) < 1:
        rows = exp.select(exp.Count(this=exp.Star()).as_("n")).from_(_table(table))
        total = int(engine.read(rows.where(scope.copy()) if scope else rows).to_pylist()[0]["n"])
    passed = _allowed(bad, total, rule.threshold)
    samples = [] if passed else engine.read(failing.limit(SAMPLE_ROWS)).to_pylist()
    if rule.type is RuleType.REFERENTIAL_INTEGRITY and key:
        shown = list(dict.fromkeys([*key, *rule.columns]))
        samples = [{k: row.get(k) for k in shown} for row in samples]
    return bad, passed, engine.render(count), samples


def _check_reference(rule: Rule, index: int, *, engine: Engine, tables: Mapping[str, str]) -> None:
    """Refuse a `to` whose table or column does not exist, naming the rule's field."""
    zone, name, column = (rule.to or "").split(".")
    other = tables.get(f"{zone}.{name}", f"{zone}.{name}")
    where = Location("", None, f"rules[{index}].to")
    try:
        found = _columns(engine, other)
    except HeadwaterError:
        raise SpecError(
            f"rule {rule.name!r}: table {zone}.{name} does not exist", where=where
        ) from None
    if column not in found:
        close = difflib.get_close_matches(column, found, n=1)
        raise SpecError(
            f"rule {rule.name!r}: {zone}.{name} has no column {column!r}",
            where=where,
            hint=f"did you mean {close[0]!r}?" if close else f"columns are: {', '.join(found)}",
        )


def _columns(engine: Engine, table: str) -> dict[str, str]:
    """Column → type of `table`, from its metadata."""
    return engine.columns(table)


def _orphans(
    rule: Rule, table: str, *, scope: exp.Expr | None, tables: Mapping[str, str]
) -> exp.Select:
    """Rows of `table` whose target value is missing from the `to` column: one anti-join."""
    zone, name, column = (rule.to or "").split(".")
    other = tables.get(f"{zone}.{name}", f"{zone}.{name}")
    mine = exp.column(rule.columns[0], table="_t", quoted=True)
    theirs = exp.column(column, table="_r", quoted=True)
    exists = exp.Exists(
        this=exp.select(exp.Literal.number(1))
        .from_(exp.alias_(_table(other), "_r", table=True))
        .where(exp.EQ(this=theirs, expression=mine.copy()))
    )
    condition = _and(
        _and(mine.is_(exp.null()).not_(), exp.not_(exists)),
        _and(
            _qualified(scope, "_t") if scope is not None else None,
            _qualified(_condition(rule.where), "_t") if rule.where else None,
        ),
    )
    query = exp.select(exp.Star()).from_(exp.alias_(_table(table), "_t", table=True))
    return query.where(condition) if condition is not None else query


def _custom(
    rule: Rule, table: str, *, scope: exp.Expr | None, tables: Mapping[str, str]
) -> exp.Select:
    """The rule's query, with `this` as the table under test (scoped) and names resolved."""
    query = authored.parse_one(rule.sql or "")
    assert isinstance(query, exp.Query)  # the spec refuses a `sql:` that is no query
    this: exp.Expr = _table(table)
    if scope is not None:
        this = exp.select(exp.Star()).from_(_table(table)).where(scope.copy()).subquery()
    for ref in list(query.find_all(exp.Table)):
        if not ref.db and ref.name.lower() == "this":
            replacement = this.copy()
            replacement.set("alias", exp.TableAlias(this=exp.to_identifier(ref.alias or "this")))
            ref.replace(replacement)
        elif ref.db and f"{ref.db}.{ref.name}" in tables:
            target = _table(tables[f"{ref.db}.{ref.name}"])
            target.set(
                "alias", ref.args.get("alias") or exp.TableAlias(this=exp.to_identifier(ref.name))
            )
            ref.replace(target)
    return exp.select(exp.Star()).from_(query.subquery("_q"))


def _schema(
    rule: Rule, table: str, *, engine: Engine, declared: Mapping[str, str | None]
) -> tuple[float | None, bool, str, list[dict[str, Any]]]:
    """Columns and types of `table` against the declaration; reads metadata, no rows."""
    describe = engine.render(exp.Describe(this=exp.select(exp.Star()).from_(_table(table))))
    found = {c: t for c, t in _columns(engine, table).items() if not c.startswith("_hw_")}
    differences: list[dict[str, Any]] = []
    for column, expected in declared.items():
        if column not in found:
            differences.append({"column": column, "expected": expected or "any", "found": None})
        elif expected and _type(expected) != _type(found[column]):
            differences.append({"column": column, "expected": expected, "found": found[column]})
    if not rule.allow_extra:
        differences += [
            {"column": c, "expected": None, "found": t}
            for c, t in found.items()
            if c not in declared
        ]
    allowed = parse_threshold(rule.threshold) if rule.threshold is not None else 0
    return len(differences), len(differences) <= allowed, describe, differences[: SAMPLE_ROWS * 4]


def _type(text: str) -> str:
    """A type as one spelling, so `timestamptz` equals `TIMESTAMP WITH TIME ZONE`."""
    try:
        return authored.shown(authored.parse_type(text))
    except (sqlglot.errors.ParseError, ValueError):
        return text.upper()


def _qualified(condition: exp.Expr, alias: str) -> exp.Expr:
    """`condition` with its bare columns qualified by `alias` (it may sit beside a join)."""
    out = condition.copy()
    for column in out.find_all(exp.Column):
        if not column.table:
            column.set("table", exp.to_identifier(alias))
    return out


def _metric(rule: Rule, scope: exp.Expr | None) -> exp.Expr:
    cols = [exp.column(c, quoted=True) for c in rule.columns]
    where = _condition(rule.where) if rule.where else None
    if rule.type in (RuleType.ROW_COUNT, RuleType.VOLUME):
        return _count_if(where)
    if rule.type is RuleType.FRESHNESS:
        newest = exp.cast(exp.Max(this=cols[0]), "timestamptz")
        if where is not None:
            newest = exp.cast(
                exp.Filter(this=exp.Max(this=cols[0]), expression=exp.Where(this=where)),
                "timestamptz",
            )
        # seconds from the newest row to now: DuckDB's date_diff('SECOND', …) (the boundaries
        # crossed), Spark's datediff(SECOND, …) (whole seconds: one less at most)
        return exp.DateDiff(
            this=exp.cast(exp.Placeholder(this="now"), "timestamptz"),
            expression=newest,
            unit=exp.var("SECOND"),
            date_part_boundary=True,
        )
    if rule.type is RuleType.UNIQUENESS:
        present = exp.and_(*[c.is_(exp.null()).not_() for c in cols])
        key: exp.Expr = cols[0] if len(cols) == 1 else exp.Tuple(expressions=cols)
        distinct: exp.Expr = exp.Count(this=exp.Distinct(expressions=[key]))
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


def _passes(rule: Rule, metric: Any, total: int, history: Sequence[float]) -> bool:
    if rule.type is RuleType.VOLUME:
        earlier = list(history)[: rule.runs]
        if not earlier:
            return True  # nothing to compare with yet: this result starts the history
        average = sum(earlier) / len(earlier)
        change = abs(float(metric) - average) / average if average else float(metric > 0)
        return change <= parse_threshold(rule.threshold)
    if metric is None:
        return False
    if rule.type is RuleType.FRESHNESS:
        return float(metric) <= parse_duration(rule.threshold)
    if rule.type is RuleType.ROW_COUNT:
        low = parse_threshold(
            rule.min
            if rule.min is not None
            else (rule.threshold if rule.threshold is not None else 1)
        )
        high = parse_threshold(rule.max) if rule.max is not None else float("inf")
        return bool(low <= metric <= high)
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
    scope: exp.Expr | None,
    key: Sequence[str],
    columns: Sequence[str],
) -> list[dict[str, Any]]:
    if rule.type in (RuleType.FRESHNESS, RuleType.ROW_COUNT, RuleType.VOLUME):
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
    rows: list[dict[str, Any]] = engine.read(query).to_pylist()
    return rows


def mask(value: Any, tag: str) -> Any:
    """A PII value as samples show it: `n***@***` for an email, `***` for anything else
    (NULL stays NULL: that a value is missing is what completeness rules report)."""
    if value is None:
        return None
    if tag == "email" and isinstance(value, str):
        return f"{value[:1]}***@***"
    return "***"


def _masked(
    rule: Rule, samples: list[dict[str, Any]], pii: Mapping[str, str], columns: Sequence[str]
) -> list[dict[str, Any]]:
    """`samples` with the values of PII columns masked. A schema rule's samples are column
    names and types, not values."""
    if not samples or rule.type is RuleType.SCHEMA:
        return samples
    opaque = _opaque(rule, bool(pii))
    if not pii and not opaque:
        return samples
    own = set(columns)
    out = []
    for sample in samples:
        row = {}
        for column, value in sample.items():
            tag = pii.get(column) or ("unknown" if opaque and column not in own else None)
            row[column] = value if tag is None else mask(value, tag)
        out.append(row)
    return out


def _opaque(rule: Rule, pii: bool) -> bool:
    """Whether the sample columns that are not the table's own may hold PII: a custom SQL
    rule's rows carry any expression, of a table with PII or of another table it reads."""
    if rule.type is not RuleType.CUSTOM_SQL:
        return False
    if pii:
        return True
    tables = authored.parse_one(rule.sql or "").find_all(exp.Table)
    return any(t.db or t.name.lower() != "this" for t in tables)


def _check_target(rule: Rule, index: int, table: str, columns: Sequence[str]) -> None:
    """Refuse a rule whose target column the table lacks; the error names the rule's field
    (`rules[i].target`), for the caller to place in the file that declares it."""
    if rule.type in (RuleType.CUSTOM_SQL, RuleType.SCHEMA, RuleType.VOLUME):
        return  # the table as a whole
    for col in rule.columns:
        if col not in columns:
            close = difflib.get_close_matches(col, columns, n=1)
            raise SpecError(
                f"rule {rule.name!r}: target column {col!r} does not exist in {table}",
                where=Location("", None, f"rules[{index}].target"),
                hint=f"did you mean {close[0]!r}?"
                if close
                else f"columns are: {', '.join(columns)}",
            )


def _count_if(condition: exp.Expr | None) -> exp.Expr:
    count = exp.Count(this=exp.Star())
    return (
        count if condition is None else exp.Filter(this=count, expression=exp.Where(this=condition))
    )


def _and(a: exp.Expr | None, b: exp.Expr | None) -> exp.Expr | None:
    if a is None or b is None:
        return a if b is None else b
    return exp.and_(a.copy(), b.copy())


def _condition(text: str) -> exp.Expr:
    return authored.parse_one(text)


def _table(name: str) -> exp.Table:
    return authored.table(name)


def _shown_threshold(rule: Rule, history: Sequence[float]) -> str:
    if rule.type is RuleType.VOLUME:
        earlier = list(history)[: rule.runs]
        if not earlier:
            return f"within {rule.threshold} of the last {rule.runs} runs (no history yet)"
        average = sum(earlier) / len(earlier)
        return f"within {rule.threshold} of {average:g} (average of {len(earlier)} runs)"
    if rule.type is RuleType.ROW_COUNT:
        low = (
            rule.min
            if rule.min is not None
            else (rule.threshold if rule.threshold is not None else 1)
        )
        return f">= {low}" + (f", <= {rule.max}" if rule.max is not None else "")
    if rule.type is RuleType.FRESHNESS:
        return f"<= {rule.threshold}"
    return f"<= {rule.threshold if rule.threshold is not None else 0}"
