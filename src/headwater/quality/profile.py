"""A table's profile in ONE query: its row count and, per column, the share of NULLs and an
approximate count of distinct values; the smallest and largest value only of the columns the
caller names as showable (never a PII column: its values are not even read)."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from headwater.engine.base import Engine

# types whose minimum and maximum say something (not lists, structs, maps or blobs)
ORDERED = re.compile(
    r"^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?\d*|DECIMAL|NUMERIC|DOUBLE|FLOAT\d*|REAL|DATE|"
    r"TIME|TIMESTAMP|VARCHAR|TEXT|STRING|CHAR|BOOLEAN|BOOL|UUID)\b",
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
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)
