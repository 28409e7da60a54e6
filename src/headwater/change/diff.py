"""Compare two versions of one model for blue/green deployment: blue, the version an
environment shows now, and green, the version staged to replace it (`headwater diff` shows the
comparison; the auto-approve policy decides on it).

What data-diff and dbt-audit-helper report, as data: columns added, removed or retyped; each
column's nulls, distinct values, range and mean on each side; and, on the model's key, the rows
only one side has and the rows whose other columns changed, with a few examples. Each side's
metrics are one query; the row diff is a FULL OUTER JOIN of the two versions on the key,
counted in one query and sampled in a second, bounded one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlglot import exp
from sqlglot.errors import SqlglotError

from headwater.engine import Engine

_TYPE = exp.DataType.Type
_NUMERIC = exp.DataType.NUMERIC_TYPES - {_TYPE.BIT}  # types with a mean
# types with a meaningful minimum and maximum (not nested, not JSON, not binary)
_ORDERED = (
    _NUMERIC | exp.DataType.TEMPORAL_TYPES | exp.DataType.TEXT_TYPES | {_TYPE.BOOLEAN, _TYPE.UUID}
)
_BLUE, _GREEN = "b", "g"  # the two versions' aliases in the row diff


@dataclass(frozen=True)
class ColumnStats:
    """One column of one version: its NULLs, its distinct values (approximate: the same
    values give the same estimate, so two versions compare), its range for orderable types
    and its mean for numeric ones (None otherwise, or when every value is NULL)."""

    nulls: int
    distinct: int
    min: Any | None
    max: Any | None
    mean: float | None


@dataclass(frozen=True)
class ColumnDiff:
    """A column of either version: a type None means the version lacks it (added in green:
    no `blue_type`; removed: no `green_type`), as do its stats."""

    name: str
    blue_type: str | None
    green_type: str | None
    blue: ColumnStats | None
    green: ColumnStats | None


@dataclass(frozen=True)
class VersionDiff:
    """Blue against green, of one model. `blue` None: the model is new. The row diff
    (`only_blue`, `only_green`, `changed`, `samples`) is None and empty when there is no
    `key` to join the versions on.

    Each sample is `{"side": "blue" | "green" | "changed", "key": {column: value}, "blue":
    {column: value} | None, "green": …}`: the key, and the columns both versions share
    besides it on each side that has the row, as JSON can hold them.
    """

    model: str
    blue: str | None
    green: str
    blue_rows: int | None
    green_rows: int
    columns: list[ColumnDiff]
    key: list[str]
    only_blue: int | None
    only_green: int | None
    changed: int | None
    samples: list[dict[str, Any]]

    @property
    def row_change(self) -> float | None:
        """Green's rows relative to blue's (0.1: 10% more); None for a new model or an empty
        blue that green adds rows to (0.0 when both are empty)."""
        if self.blue_rows is None:
            return None
        if self.blue_rows == 0:
            return 0.0 if self.green_rows == 0 else None
        return (self.green_rows - self.blue_rows) / self.blue_rows

    @property
    def schema_changed(self) -> bool:
        """Whether a column was added, removed or retyped (true for a new model)."""
        return any(c.blue_type != c.green_type for c in self.columns)


def diff_versions(
    engine: Engine,
    model: str,
    blue: str | None,
    green: str,
    *,
    key: Sequence[str] = (),
    sample: int = 10,
) -> VersionDiff:
    """Compare the physical tables `blue` (None: a new model) and `green` of `model`.

    Rows are matched on `key`, the model's grain, assumed unique (a NULL key matches a NULL
    key); with no key, or one a version lacks, the row diff is skipped. A matched row changed
    when a column both versions have differs (IS DISTINCT FROM: NULL against NULL is no
    change); a retyped column is compared as text unless both of its types are numeric.
    At most `sample` example rows are fetched, in key order.

    Example:
        >>> d = diff_versions(engine, "marts.orders", "hw_marts.orders__a1", "hw_marts.orders__b2",
        ...                   key=["order_id"])
        >>> d.only_green, d.changed, d.row_change
        (3, 1, 0.03)
    """
    green_types = engine.columns(green)
    blue_types = engine.columns(blue) if blue is not None else {}
    green_rows, green_stats = _profile(engine, green, green_types)
    blue_rows, blue_stats = _profile(engine, blue, blue_types) if blue is not None else (None, {})
    names = [*green_types, *(n for n in blue_types if n not in green_types)]
    columns = [
        ColumnDiff(n, blue_types.get(n), green_types.get(n), blue_stats.get(n), green_stats.get(n))
        for n in names
    ]
    keys = list(dict.fromkeys([key] if isinstance(key, str) else key))
    join = None
    if blue is not None and keys and all(k in blue_types and k in green_types for k in keys):
        join = _Join(engine.dialect, blue, green, keys, blue_types, green_types)
    counts = [int(n) for n in engine.rows(join.counts())[0]] if join else [None, None, None]
    samples = (
        [join.sample(r) for r in engine.rows(join.samples(sample))] if join and sample > 0 else []
    )
    return VersionDiff(
        model=model,
        blue=blue,
        green=green,
        blue_rows=blue_rows,
        green_rows=green_rows,
        columns=columns,
        key=keys if join else [],
        only_blue=counts[0],
        only_green=counts[1],
        changed=counts[2],
        samples=samples,
    )


def _profile(
    engine: Engine, table: str, types: dict[str, str]
) -> tuple[int, dict[str, ColumnStats]]:
    """The rows of `table` and the stats of each of its columns, in one query."""
    metrics: list[exp.Expr] = [exp.Count(this=exp.Star())]
    kinds = {name: _kind(kind, engine.dialect) for name, kind in types.items()}
    for name, (ordered, numeric) in kinds.items():
        column = exp.column(name, quoted=True)
        metrics += [
            exp.Sub(this=exp.Count(this=exp.Star()), expression=exp.Count(this=column.copy())),
            exp.ApproxDistinct(this=column.copy()),
        ]
        metrics += [exp.Min(this=column.copy()), exp.Max(this=column.copy())] if ordered else []
        metrics += [exp.Avg(this=column.copy())] if numeric else []
    rows, *values = engine.rows(exp.select(*metrics).from_(_table(table)))[0]
    found = iter(values)
    stats = {}
    for name, (ordered, numeric) in kinds.items():
        nulls, distinct = next(found), next(found)
        low, high = (_plain(next(found)), _plain(next(found))) if ordered else (None, None)
        mean = next(found) if numeric else None
        stats[name] = ColumnStats(
            nulls=int(nulls),
            distinct=int(distinct),
            min=low,
            max=high,
            mean=None if mean is None else float(mean),
        )
    return int(rows), stats


@dataclass(frozen=True)
class _Join:
    """The two versions side by side on the key: each a subquery of a presence marker, the
    key and the columns compared (the others both have), FULL OUTER JOINed."""

    dialect: str
    blue: str
    green: str
    key: list[str]
    blue_types: dict[str, str]
    green_types: dict[str, str]

    @property
    def compared(self) -> list[str]:
        return [c for c in self.green_types if c in self.blue_types and c not in self.key]

    @property
    def marker(self) -> str:
        """A column name neither subquery has: TRUE on every row of its version."""
        marker = "_hw_row"
        while marker in self.green_types or marker in self.blue_types:
            marker += "_"
        return marker

    def counts(self) -> exp.Select:
        """Rows only in blue, only in green, and in both but changed."""
        kinds = (self._only(_BLUE), self._only(_GREEN), self._changed())
        return self._joined(exp.select(*(_count_if(c) for c in kinds)))

    def samples(self, limit: int) -> exp.Select:
        """Up to `limit` rows of any of the three kinds, in key order."""
        columns = [*self.key, *self.compared]
        query = exp.select(
            exp.column(self.marker, _BLUE, quoted=True),
            exp.column(self.marker, _GREEN, quoted=True),
            *(exp.column(c, side, quoted=True) for c in columns for side in (_BLUE, _GREEN)),
        )
        return (
            self._joined(query)
            .where(exp.or_(self._only(_BLUE), self._only(_GREEN), self._changed()))
            .order_by(
                *(
                    exp.Ordered(this=exp.func("COALESCE", *self._pair(k)), nulls_first=False)
                    for k in self.key
                )
            )
            .limit(limit)
        )

    def sample(self, row: tuple[Any, ...]) -> dict[str, Any]:
        """One row of `samples` as `VersionDiff.samples` holds it."""
        in_blue, in_green, *values = row
        columns = [*self.key, *self.compared]
        blue = dict(zip(columns, map(_plain, values[0::2]), strict=True))
        green = dict(zip(columns, map(_plain, values[1::2]), strict=True))
        return {
            "side": "changed" if in_blue and in_green else ("blue" if in_blue else "green"),
            "key": {k: (blue if in_blue else green)[k] for k in self.key},
            "blue": {c: blue[c] for c in self.compared} if in_blue else None,
            "green": {c: green[c] for c in self.compared} if in_green else None,
        }

    def _joined(self, query: exp.Select) -> exp.Select:
        """`query` reading blue FULL OUTER JOIN green on the key."""
        on = exp.and_(*(exp.NullSafeEQ(this=b, expression=g) for b, g in map(self._pair, self.key)))
        joined = query.from_(self._side(_BLUE), copy=False)
        return joined.join(self._side(_GREEN), on=on, join_type="FULL OUTER", copy=False)

    def _side(self, alias: str) -> exp.Subquery:
        table = self.blue if alias == _BLUE else self.green
        return (
            exp.select(
                exp.true().as_(self.marker, quoted=True),
                *(exp.column(c, quoted=True) for c in [*self.key, *self.compared]),
            )
            .from_(_table(table))
            .subquery(alias)
        )

    def _only(self, side: str) -> exp.Expr:
        """The row is in `side` only: the other side's marker is NULL."""
        other = _GREEN if side == _BLUE else _BLUE
        return exp.column(self.marker, other, quoted=True).is_(exp.null())

    def _changed(self) -> exp.Expr:
        differs = [exp.NullSafeNEQ(this=b, expression=g) for b, g in map(self._pair, self.compared)]
        return exp.and_(
            exp.column(self.marker, _BLUE, quoted=True),
            exp.column(self.marker, _GREEN, quoted=True),
            exp.or_(*differs) if differs else exp.false(),
        )

    def _pair(self, name: str) -> tuple[exp.Expr, exp.Expr]:
        """Blue's and green's `name`, comparable: as they are when their types are the same or
        both numeric, else as text (an INTEGER compared with a VARCHAR does not bind)."""
        blue = exp.column(name, _BLUE, quoted=True)
        green = exp.column(name, _GREEN, quoted=True)
        kinds = (self.blue_types[name], self.green_types[name])
        if kinds[0] == kinds[1] or all(_kind(k, self.dialect)[1] for k in kinds):
            return blue, green
        return exp.cast(blue, _TYPE.TEXT), exp.cast(green, _TYPE.TEXT)


def _kind(type_text: str, dialect: str) -> tuple[bool, bool]:
    """Whether a column of the engine's type `type_text` has a range, and a mean."""
    try:
        kind = exp.DataType.build(type_text, dialect=dialect)
    except SqlglotError:  # a type sqlglot cannot read is neither
        return False, False
    return kind.is_type(*_ORDERED), kind.is_type(*_NUMERIC)


def _count_if(condition: exp.Expr) -> exp.Expr:
    return exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=condition))


def _table(name: str) -> exp.Table:
    """`schema.name` as a table with every part quoted."""
    table = exp.to_table(name)
    for part in table.find_all(exp.Identifier):
        part.set("quoted", True)
    return table


def _plain(value: Any) -> Any:
    """A value as JSON holds it: dates and times in ISO 8601, bytes in hex, decimals, UUIDs
    and intervals as their text; lists and structs value by value."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
