"""A table's statistics measured by Spark while it writes the table (an `Observation` on the
query written): its row count and, per column, the NULLs, an estimate of the distinct values,
the bounds, the mean and estimates of the values at QUANTILES. They are what DuckDB answers
from the statistics it keeps of a table it wrote, and more: an audit and a profile of a
version Spark just wrote then need no Spark job of their own (0.3-2 s each, and one per
model), where Spark keeps no statistics it would tell without reading the table.

A column of a type without bounds (text, lists, structs) gets its NULLs and distinct values
counted (a map's NULLs only: Spark cannot hash a map); what is not measured here the audit
scans for, as on any engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from headwater.engine.base import QUANTILES, ColumnStats

if TYPE_CHECKING:
    from pyspark.sql import Column
    from pyspark.sql.types import StructType

ROWS = "_hw_rows"
# the quantiles' sketch: a value's rank within 1/ACCURACY of the rows of the one reported, as
# the sampled profile's (quality/profile.py: ±0.5 percentile points); Spark's default, 10,000,
# costs twice as much (0.6 s against 0.26 s more on a write of 1M rows)
ACCURACY = 200
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def observing(
    schema: StructType, *, profiles: bool = True
) -> tuple[list[Column], Callable[[Mapping[str, Any]], tuple[int, dict[str, ColumnStats]]]]:
    """The aggregates to observe on a query of `schema` while it is written, and how to read
    the rows and each column's statistics from their values. Without `profiles` (a project
    that keeps none), only what rules use: NULLs and bounds (the distinct counts and the
    quantiles cost the write 10-30%; counts and bounds next to nothing)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    aggregates: list[Column] = [F.count(F.lit(1)).alias(ROWS)]
    kinds: dict[str, str] = {}
    for i, field in enumerate(schema.fields):
        column = F.col("`" + field.name.replace("`", "``") + "`")
        kind = _kind(field.dataType, T)
        kinds[field.name] = kind
        aggregates.append(F.count(column).alias(f"_hw_o{i}_n"))
        if kind != "map" and profiles:
            aggregates.append(F.approx_count_distinct(column).alias(f"_hw_o{i}_d"))
        if kind in ("number", "date", "moment", "local"):
            # times as numbers since the epoch (the session's time zone is UTC): an observed
            # value reaches Python as py4j makes it, a Java object for a date or a time
            bound = (
                column
                if kind == "number"
                else F.unix_date(column)
                if kind == "date"
                else F.unix_micros(column.cast("timestamp"))
            )
            aggregates += [F.min(bound).alias(f"_hw_o{i}_lo"), F.max(bound).alias(f"_hw_o{i}_hi")]
            if profiles:
                # as the scanned profile measures them (engine `quantiles`): numbers as
                # doubles, times as microseconds since the epoch. One sketch a column, its
                # list as JSON text (py4j hands a list over as a Java object): an element read
                # from the sketch per fraction would be a sketch each, 5x the whole write
                ranked = (
                    column.cast("double")
                    if kind == "number"
                    else F.unix_micros(column.cast("timestamp"))
                )
                sketch = F.percentile_approx(ranked, list(QUANTILES), ACCURACY)
                aggregates.append(F.to_json(sketch).alias(f"_hw_o{i}_q"))
        if kind == "number" and profiles:
            aggregates.append(F.avg(column.cast("double")).alias(f"_hw_o{i}_m"))
        elif kind == "bool" and profiles:
            aggregates.append(F.avg(column.cast("int")).alias(f"_hw_o{i}_m"))

    def read(values: Mapping[str, Any]) -> tuple[int, dict[str, ColumnStats]]:
        rows = int(values[ROWS])
        out = {}
        for i, (name, kind) in enumerate(kinds.items()):

            def got(metric: str, i: int = i) -> Any:
                return values.get(f"_hw_o{i}_{metric}")

            nulls = rows - int(got("n"))
            low, high = (_time(got(bound), kind) for bound in ("lo", "hi"))
            sketched = got("q")
            quantiles = tuple(json.loads(sketched)) if sketched else ()
            mean = got("m")
            out[name] = ColumnStats(
                may_be_null=nulls > 0,
                lower=low,
                upper=high,
                distinct=None if got("d") is None else int(got("d")),
                nulls=nulls,
                mean=None if mean is None else float(mean),
                quantiles=quantiles if quantiles and None not in quantiles else None,
            )
        return rows, out

    return aggregates, read


def _kind(data_type: Any, T: Any) -> str:
    if isinstance(data_type, T.BooleanType):
        return "bool"
    if isinstance(data_type, T.NumericType):
        return "number"
    if isinstance(data_type, T.DateType):
        return "date"
    if isinstance(data_type, T.TimestampNTZType):
        return "local"  # a wall-clock time: a naive datetime either way
    if isinstance(data_type, T.TimestampType):
        return "moment"
    if isinstance(data_type, T.MapType):
        return "map"
    return "other"  # text, lists, structs: counted and their distinct values estimated


def _time(value: Any, kind: str) -> Any:
    """A bound as observed (days or microseconds since the epoch for times) as a value: a
    date, a UTC datetime (an instant), a naive one (a wall-clock time), a number."""
    if value is None or kind == "number":
        return value
    if kind == "date":
        return (EPOCH + timedelta(days=int(value))).date()
    moment = EPOCH + timedelta(microseconds=int(value))
    return moment if kind == "moment" else moment.replace(tzinfo=None)
