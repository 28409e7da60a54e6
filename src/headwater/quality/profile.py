"""A table's profile in ONE query: its row count and, per column, the share of NULLs and an
approximate count of distinct values; the smallest and largest value only of the columns the
caller names as showable (never a PII column: its values are not even read)."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from headwater.engine.base import QUANTILES, SAMPLE, TOP, Engine

if TYPE_CHECKING:
    from headwater.quality.rules import Stats

# types whose minimum and maximum say something (not lists, structs, maps or blobs)
ORDERED = re.compile(
    r"^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?\d*|DECIMAL|NUMERIC|DOUBLE|FLOAT\d*|REAL|DATE|"
    r"TIME|TIMESTAMP(_NTZ|_LTZ)?|VARCHAR|TEXT|STRING|CHAR|BOOLEAN|BOOL|UUID)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ColumnProfile:
    """One column: its share of NULLs (0 to 1; None for an empty table), roughly how many
    distinct values it holds, and its bounds when they were asked for (`ranged`)."""

    nulls: float | None
    distinct: int
    ranged: bool = False
    min: Any = None
    max: Any = None


@dataclass(frozen=True)
class Profile:
    rows: int
    columns: dict[str, ColumnProfile]


def profile(
    engine: Engine, table: str, columns: Mapping[str, str], *, ranged: Collection[str] = ()
) -> Profile:
    """Profile `table` (`zone.name`) over `columns` (name → engine type) in one query; the
    bounds only of the `ranged` columns whose type is ordered.

    Raises:
        EngineError: the query failed (the table is gone, or the engine refused it).

    Example:
        >>> profile(engine, "raw.orders", {"amount": "DECIMAL(12,2)"}, ranged={"amount"})
        Profile(rows=24000, columns={'amount': ColumnProfile(nulls=0.0, distinct=9120, ...)})
    """
    bounded = [c for c in columns if c in ranged and ORDERED.match(columns[c])]
    row = engine.rows(profile_query(table, list(columns), bounded))[0]
    rows = int(row[0])
    out, at = {}, 1
    for name in columns:
        nonnull = int(row[at])
        distinct = min(int(row[at + 1]), nonnull)  # the estimate may overshoot
        at += 2
        nulls = None if rows == 0 else (rows - nonnull) / rows
        if name in bounded:
            out[name] = ColumnProfile(nulls, distinct, True, _plain(row[at]), _plain(row[at + 1]))
            at += 2
        else:
            out[name] = ColumnProfile(nulls, distinct)
    return Profile(rows, out)


def profile_query(table: str, columns: list[str], bounded: list[str]) -> exp.Select:
    """`SELECT count(*), count(c), approx_count_distinct(c)[, min(c), max(c)] … FROM table`."""
    aggregates: list[exp.Expr] = [exp.Count(this=exp.Star())]
    for name in columns:
        column = exp.column(name, quoted=True)
        aggregates += [exp.Count(this=column.copy()), exp.ApproxDistinct(this=column.copy())]
        if name in bounded:
            aggregates += [exp.Min(this=column.copy()), exp.Max(this=column.copy())]
    zone, _, short = table.partition(".")
    return exp.select(*aggregates).from_(exp.table_(short, db=zone, quoted=True))


def _plain(value: Any) -> Any:
    """A bound as JSON can hold it: numbers and booleans as they are, the rest as text."""
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


# ---------------------------------------------------------------------------------------------
# The profile a run keeps of every landed batch and built version (`hw_profiles`): computed
# by aggregates added to the ONE scan of the table's rules (`rules.evaluate_profiled`).

KINDS = {
    "number": re.compile(
        r"^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?\d*|DECIMAL|NUMERIC|DOUBLE|FLOAT\d*|REAL)\b", re.I
    ),
    "time": re.compile(r"^(DATE|TIMESTAMP(_NTZ|_LTZ)?|TIME)\b", re.I),  # Spark: TIMESTAMP_NTZ
    "bool": re.compile(r"^(BOOLEAN|BOOL)\b", re.I),
    "text": re.compile(r"^(VARCHAR|TEXT|STRING|CHAR|UUID|ENUM)\b", re.I),
}
DECILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# quantiles and top values are estimated from a sample of about SAMPLE rows: the sketches
# over every row cost more than the rules' whole scan (measured: approx_quantile over 10M
# doubles 0.49 s, on a 1% sample 0.05 s), and a sample of 100,000 random rows puts a
# quantile within ±0.5 percentile points of its true rank
# the sample is drawn in two steps: whole blocks of rows (the engine's vectors, 2,048 rows in
# DuckDB), BLOCKS times as many as needed (the other blocks the engine mostly skips); then
# one row in BLOCKS of them, at random. Reading every row to draw them (one random number each)
# costs 0.4 s of CPU on 10M rows of 12 columns, the blocks 0.17-0.22 s. The price: rows of a
# block are neighbours, so on a column sorted the way the rows are stored a quantile comes
# from about BLOCKS * SAMPLE / 2,048 ≈ 490 blocks: its rank is off by up to ±2 percentile
# points (one standard error at the median; ±1 at p5), not ±0.5 (a column in no particular
# order loses nothing)
BLOCKS = 10
# top values come from whole blocks, about SAMPLE rows of them, without the draw of rows: a
# text column's segments (dictionary + FSST in DuckDB) are decoded from their start to reach
# a block, so 10% of the blocks of one cost 70% of reading it all (measured: `email`, 10M
# rows, 0.14 s of CPU against 0.21 s; 1% of the blocks, 0.03 s). What top values need is how
# often the frequent values occur, not ranks: a value holding p of the rows is seen in about
# SAMPLE / 2,048 ≈ 49 blocks even when the rows are clustered by it (standard error
# sqrt(p(1 - p) / 49): 4 points at p = 0.1), and in SAMPLE rows when they are not


def kind_of(engine_type: str) -> str:
    """number | time | bool | text | other (lists, arrays — FLOAT[384] — structs, maps,
    blobs: counted only)."""
    upper = engine_type.strip().upper()
    if "[" in upper or "<" in upper or upper.startswith(("STRUCT", "MAP", "UNION", "LIST")):
        return "other"
    return next((kind for kind, pattern in KINDS.items() if pattern.match(engine_type)), "other")


@dataclass(frozen=True)
class ColumnStats:
    """One column of a batch or version. `nulls` is a fraction (None: no rows); `distinct`
    an estimate (HyperLogLog). Values — bounds, mean, quantiles, top values — are kept only
    of a column that is `shown` (never of a PII column)."""

    kind: str
    nulls: float | None
    distinct: int | None
    shown: bool = True
    min: Any = None
    max: Any = None
    mean: float | None = None
    quantiles: dict[str, Any] | None = None  # "p5", "p50", … → value
    top: list[Any] | None = None

    def histogram(self) -> list[tuple[Any, Any]] | None:
        """The equi-depth histogram's bins (low, high), a tenth of the values each."""
        if not self.quantiles or self.min is None or self.max is None:
            return None
        edges = [self.min, *(self.quantiles.get(_key(q)) for q in DECILES), self.max]
        if any(e is None for e in edges):
            return None
        return list(itertools.pairwise(edges))


@dataclass(frozen=True)
class TableProfile:
    rows: int
    columns: dict[str, ColumnStats]

    def to_json(self) -> str:
        """Compact: a column's fields only when set."""
        import orjson

        body = {
            name: {k: v for k, v in stats.__dict__.items() if v is not None and v != []}
            for name, stats in self.columns.items()
        }
        return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS).decode()

    @classmethod
    def from_json(cls, rows: int, text: str) -> TableProfile:
        import orjson

        body = orjson.loads(text)
        return cls(rows, {name: ColumnStats(**fields) for name, fields in body.items()})


@dataclass(frozen=True)
class ProfileQuery:
    """A profile's aggregates: `whole`, over every row (counts, distinct, bounds, means), to
    add to the query over the rows the rules scan; the sketches — `ranked` (quantiles) and
    `tops` (top values) — over every row too when the rows are known to be few (`share` 1),
    else over a random `share` of them (None: the rows are not known yet — see `share_of`),
    in queries of their own (`sample_queries`)."""

    whole: list[exp.Expr]
    ranked: list[exp.Expr]
    tops: list[exp.Expr]
    share: float | None

    @property
    def sketches(self) -> list[exp.Expr]:
        return self.ranked + self.tops

    def sample_queries(
        self, table: exp.Table, scope: exp.Expr | None, rows: int
    ) -> list[exp.Select]:
        """The sketches over about SAMPLE of the `rows` rows of `table` under `scope`: the
        quantiles over whole blocks of rows first (`BLOCKS` times as many as needed), then
        rows of those at random; the top values over whole blocks (see BLOCKS); every row
        when they are few."""
        share = self.share if self.share is not None else _share(rows)
        queries = []
        if self.ranked:
            queries.append(self._drawn(self.ranked, table, scope, share, min(1.0, BLOCKS * share)))
        if self.tops:
            queries.append(self._drawn(self.tops, table, scope, share, share))
        return queries

    @staticmethod
    def _drawn(
        sketches: list[exp.Expr],
        table: exp.Table,
        scope: exp.Expr | None,
        share: float,
        blocks: float,
    ) -> exp.Select:
        sampled = table.copy()
        if blocks < 1.0:
            sampled.set(
                "sample",
                exp.TableSample(
                    method=exp.var("SYSTEM"),
                    percent=exp.Literal.number(f"{blocks * 100:.6g}"),
                ),
            )
        query = exp.select(*sketches).from_(sampled)
        if scope is not None:
            query = query.where(scope.copy())
        if share < blocks:
            query = query.where(exp.Rand() < exp.Literal.number(f"{share / blocks:.6g}"))
        return query


def share_of(rows: int | None) -> float | None:
    """The share of `rows` rows the quantiles and top values are estimated from (None: not
    known yet)."""
    return None if rows is None else _share(rows)


def _share(rows: int) -> float:
    return min(1.0, SAMPLE / max(rows, 1))


def profile_aggregates(
    engine: Engine,
    columns: Mapping[str, str],
    *,
    hidden: Collection[str] = (),
    rows: int | None = None,
    known: Stats | None = None,
    counted: Collection[str] = (),
) -> ProfileQuery:
    """The aggregates of a profile of `columns` (name → engine type), aliased `_hw_p<i>_<m>`
    (see `read_profile`). What `known` already says — a column without NULLs, exact bounds,
    a distinct estimate of the whole table — is not computed again, nor the distinct values
    of the `counted` columns (a uniqueness rule of the same scan counts them: `read_profile`'s
    `duplicates`). `hidden` columns (PII) get counts only; `rows`, when known, sizes the
    sample of the quantiles and top values."""
    whole: list[exp.Expr] = []
    ranked: list[exp.Expr] = []
    tops: list[exp.Expr] = []
    exact = known is not None and known.bounds_exact
    for i, (name, engine_type) in enumerate(columns.items()):
        column = exp.column(name, quoted=True)
        kind = kind_of(engine_type)

        def add(
            metric: str, aggregate: exp.Expr, *, i: int = i, into: list[exp.Expr] = whole
        ) -> None:
            into.append(exp.alias_(aggregate, f"_hw_p{i}_{metric}", quoted=True))

        if known is None or name not in known.nulls:
            add("n", exp.Count(this=column.copy()))
        if name not in _measured(known, "distinct") and name not in counted:
            add("d", exp.ApproxDistinct(this=column.copy()))
        if name in hidden:
            continue
        if kind in ("number", "time"):
            if not (exact and known and name in known.lower and name in known.upper):
                add("lo", exp.Min(this=column.copy()))
                add("hi", exp.Max(this=column.copy()))
            if name not in _measured(known, "quantiles"):
                quantiles = engine.quantiles(column.copy(), QUANTILES, moment=kind == "time")
                add("q", quantiles, into=ranked)
        if name not in _measured(known, "means"):
            if kind == "number":
                add("avg", exp.Avg(this=column.copy()))
            if kind == "bool":
                add("avg", exp.Avg(this=exp.cast(column.copy(), "INT")))
        if kind in ("text", "bool") and name not in _measured(known, "top"):
            top = engine.top_values(column.copy(), TOP)
            if top is not None:  # an engine without such an aggregate keeps no top values
                add("top", top, into=tops)
    return ProfileQuery(whole, ranked, tops, share_of(rows))


def read_profile(
    row: Mapping[str, Any],
    columns: Mapping[str, str],
    rows: int,
    *,
    hidden: Collection[str] = (),
    known: Stats | None = None,
    duplicates: Mapping[str, float] | None = None,
) -> TableProfile:
    """The profile from a result `row` holding `profile_aggregates(columns, hidden=hidden,
    known=known, counted=duplicates)` over `rows` rows; `duplicates`: column → the values
    its uniqueness rule found more than once (non-NULL values less distinct ones)."""
    out = {}
    exact = known is not None and known.bounds_exact
    for i, (name, engine_type) in enumerate(columns.items()):

        def got(metric: str, i: int = i) -> Any:
            return row.get(f"_hw_p{i}_{metric}")

        n = got("n")
        if n is None and known is not None and name in known.nulls:
            n = rows - known.nulls[name]
        nonnull = int(n or 0)
        d = _measured(known, "distinct").get(name)
        if d is None and duplicates and name in duplicates:  # a uniqueness rule's, exact
            d = nonnull - int(duplicates[name])
        estimate = int(got("d") or 0) if d is None else d
        distinct = None if rows == 0 else min(estimate, nonnull)
        nulls = None if rows == 0 else (rows - nonnull) / rows
        kind = kind_of(engine_type)
        if name in hidden:
            out[name] = ColumnStats(kind, nulls, distinct, shown=False)
            continue
        low, high = got("lo"), got("hi")
        if low is None and high is None and exact and known is not None:
            low, high = known.lower.get(name), known.upper.get(name)
        quantiles = got("q") or _measured(known, "quantiles").get(name)
        if quantiles and kind == "time":
            quantiles = [_moment(v, low) for v in quantiles]
        mean = got("avg")
        if mean is None:
            mean = _measured(known, "means").get(name)
        top = got("top")
        if top is None:
            top = _measured(known, "top").get(name)
        out[name] = ColumnStats(
            kind,
            nulls,
            distinct,
            min=_plain(low),
            max=_plain(high),
            mean=None if mean is None else float(mean),
            quantiles=None
            if not quantiles
            else {_key(q): _plain(v) for q, v in zip(QUANTILES, quantiles, strict=False)},
            top=None if top is None else [_plain(v) for v in top],
        )
    return TableProfile(rows, out)


def _measured(known: Stats | None, what: str) -> Mapping[str, Any]:
    """What `known` holds of `what` (`distinct` estimates, `means`, `quantiles`, `top`: an engine's,
    of a whole table just written; a landed batch's metadata holds none)."""
    found = getattr(known, what, None)
    return found if isinstance(found, Mapping) else {}


def _moment(value: Any, like: Any) -> Any:
    """Microseconds since the epoch (an engine's quantile of a moment) as a moment, with the
    time zone of `like` (the column's minimum), if it has one."""
    if not isinstance(value, int | float):
        return value
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(value))
    if isinstance(like, datetime) and like.tzinfo is None:
        return moment.replace(tzinfo=None)
    if isinstance(like, date) and not isinstance(like, datetime):
        return moment.date()
    return moment


def _key(fraction: float) -> str:
    """0.05 → "p5", 0.5 → "p50"."""
    return f"p{round(fraction * 100):d}"
