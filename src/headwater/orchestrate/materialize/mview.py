"""`materialized_view`: a query's result kept as a table and refreshed when its inputs
change — only the time buckets new data touched, when the query allows it.

A materialized view that aggregates ONE `incremental_by_time` model and groups by that
model's time column (or `date_trunc('<unit>', it)`, or `CAST(it AS DATE)`) has each output row
depend only on the input rows of its bucket. When the input was written this run over some
intervals, and the view was last refreshed from the input's previous state, the refresh
deletes the buckets those intervals touch and inserts them again from those input rows
only: an aggregate over a year of events refreshes a day after a day of new data. Anything
else (another shape of query, a missed refresh, a full refresh) recomputes the whole result,
as a `table` does. Both give the same table (tests/orchestrate/test_mview.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlglot import exp

from headwater.contracts import ModelKind
from headwater.models import Model
from headwater.models.intervals import Range
from headwater.orchestrate.materialize.base import Job, replace_table

UNITS = ("hour", "day", "week", "month", "quarter", "year")


@dataclass(frozen=True)
class Buckets:
    """How a materialized view's rows split by the time of the input they aggregate."""

    source: str  # the incremental_by_time model it aggregates
    time_column: str  # that model's time column
    column: str  # the view's output column holding each row's bucket
    unit: str | None  # date_trunc's unit; None: the time column itself


def buckets(model: Model, models: Mapping[str, Model]) -> Buckets | None:
    """The buckets of `model`'s query, if it refreshes by them (see the module's doc)."""
    query = model.query
    if not isinstance(query, exp.Select) or len(model.depends_on) != 1:
        return None
    source = models.get(model.depends_on[0])
    if source is None or source.config.kind is not ModelKind.INCREMENTAL_BY_TIME:
        return None
    time_column = source.config.time_column
    if time_column is None:
        return None
    if (
        any(query.args.get(k) for k in ("limit", "offset", "distinct", "with", "qualify"))
        or query.find(exp.Window)
        or len(list(query.find_all(exp.Table))) != 1
        or len(list(query.find_all(exp.Select))) != 1
    ):
        return None
    group = query.args.get("group")
    if group is None:
        return None
    for position, item in enumerate(query.expressions, 1):
        bucket = _unit(item.unalias(), time_column)
        if bucket is None or not item.alias_or_name:
            continue
        if _grouped(group, item, position):
            return Buckets(source.name, time_column, item.alias_or_name, bucket or None)
    return None


def _unit(node: exp.Expr, time_column: str) -> str | None:
    """The bucket unit `node` makes of the time column ("" for the column itself); None if
    it is not a bucket of it."""
    if isinstance(node, exp.Column) and node.name == time_column:
        return ""
    if isinstance(node, exp.Cast) and node.to.is_type(exp.DataType.Type.DATE):
        return "day" if _unit(node.this, time_column) == "" else None
    if isinstance(node, exp.TimestampTrunc | exp.DateTrunc):
        unit = node.args.get("unit")
        name = unit.name.lower() if unit is not None else ""
        if name in UNITS and _unit(node.this, time_column) == "":
            return name
    return None


def _grouped(group: exp.Group, item: exp.Expr, position: int) -> bool:
    if group.args.get("all"):
        return True
    for key in group.expressions:
        if isinstance(key, exp.Literal) and not key.is_string and key.name == str(position):
            return True
        if isinstance(key, exp.Column) and not key.table and key.name == item.alias_or_name:
            return True
        if key == item.unalias():
            return True
    return False


def spans(touched: Sequence[Range], unit: str | None) -> list[Range]:
    """The buckets (merged) that the input intervals `touched` fall in."""
    out: list[Range] = []
    for lo, hi in sorted(touched):
        span = (floor(lo, unit), ceil(hi, unit))
        if out and span[0] <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], span[1]))
        else:
            out.append(span)
    return out


def floor(moment: datetime, unit: str | None) -> datetime:
    """The start of the bucket `moment` is in (as DuckDB's date_trunc, weeks from Monday)."""
    if unit is None:
        return moment
    day = moment.replace(minute=0, second=0, microsecond=0)
    if unit == "hour":
        return day
    day = day.replace(hour=0)
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return day.replace(day=1, month=(day.month - 1) // 3 * 3 + 1)
    if unit == "year":
        return day.replace(day=1, month=1)
    return day


def ceil(moment: datetime, unit: str | None) -> datetime:
    """The end of the bucket a range ending (exclusive) at `moment` reaches."""
    start = floor(moment, unit)
    return start if start == moment else _next(start, unit)


def _next(start: datetime, unit: str | None) -> datetime:
    if unit == "hour":
        return start + timedelta(hours=1)
    if unit == "week":
        return start + timedelta(days=7)
    if unit in ("month", "quarter", "year"):
        months = {"month": 1, "quarter": 3, "year": 12}[unit]
        total = start.month - 1 + months
        return start.replace(year=start.year + total // 12, month=total % 12 + 1)
    return start + timedelta(days=1)


def within(column: str, ranges: Sequence[Range]) -> exp.Expr:
    """`column` in any of `ranges` ([start, end))."""
    return exp.or_(
        *[
            exp.and_(
                exp.GTE(this=exp.column(column, quoted=True), expression=_moment(lo)),
                exp.LT(this=exp.column(column, quoted=True), expression=_moment(hi)),
            )
            for lo, hi in ranges
        ]
    )


def _moment(value: datetime) -> exp.Expr:
    kind = "TIMESTAMPTZ" if value.tzinfo else "TIMESTAMP"
    return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build(kind))


@dataclass(frozen=True)
class Refresh:
    """A refresh of some buckets: which, and the query over only their input rows."""

    column: str
    ranges: list[Range]
    query: exp.Query


class MaterializedView:
    def write(self, job: Job) -> int | None:
        refresh = job.refresh
        if refresh is None:
            return job.cursor.execute(replace_table(job.target, job.query))
        job.cursor.execute(exp.delete(job.target, within(refresh.column, refresh.ranges)))
        job.cursor.execute(exp.insert(refresh.query, job.target))
        return job.count()

    def one_statement(self, job: Job) -> bool:
        return job.refresh is None
