"""A table's statistics as Spark writes the table, so that an audit and a profile of a version
Spark just wrote need no Spark job of their own (0.3-2 s each, and one per model), where
Spark keeps no statistics it would tell without reading the table.

Two sources, both of the write itself:

- **The Iceberg metadata the write committed** (`from_files`): every data file's entry in the
  manifest holds its rows and, per column, its NULLs, NaNs and lower and upper bounds
  (Iceberg's default metrics; exact for numbers and times, a prefix for text, which is not
  used). Summed over the files the snapshot added, they are the table's row count, NULLs and
  bounds: what rules use, at the cost of reading a manifest (no job, no row).
- **An `Observation` on the query written** (`observing`), for what profiles use besides: an
  estimate of the distinct values, the mean, and estimates of the values at QUANTILES (a KLL
  sketch). Spark evaluates an observation's aggregates row by row outside its generated
  code: they cost the write 10-20%, so a project that keeps no profiles (`defaults:
  {profile: false}`) has none. A boolean's top values follow from its mean.
- **The data files the write committed**, for the TOP most frequent values of text
  (`top_values`): counted with Arrow in about SAMPLE rows, the first rows of each file, as
  DuckDB's profile counts them in whole blocks. Spark's `approx_top_k` in the observation
  cost 0.2 s a column a million rows (a Java string made of each value): 4x the quantiles'
  sketch.

A column of a type without bounds (text, lists, structs) gets its NULLs counted and its
distinct values estimated (a map's NULLs only: Spark cannot hash a map); what is not measured
here the audit scans for, as on any engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from headwater.engine.base import QUANTILES, SAMPLE, TOP, ColumnStats

if TYPE_CHECKING:
    import pyarrow.fs as pafs
    from pyspark.sql import Column
    from pyspark.sql.types import StructType

ROWS = "_hw_rows"
# the quantiles' sketch: a KLL sketch (Spark 4.1, Apache DataSketches) of this size puts a
# value's rank within about 1 percentile point of the one reported (the sampled profile's,
# quality/profile.py: ±0.5, ±2 on a sorted column). Its update costs a third of Spark's
# `percentile_approx` at accuracy 200 (0.05 s against 0.14 s a column on a write of 1M
# rows), and about the same at 200 or 1,000
SKETCH = 400
FILES = 64  # the data files top values are counted in, at most (a request each on S3)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def observing(
    schema: StructType,
) -> tuple[list[Column], Callable[[Mapping[str, Any]], tuple[int, dict[str, Profiled]]]]:
    """The aggregates to observe on a query of `schema` while it is written (the rows, and
    per column what profiles use: distinct values, mean, quantiles, top values), and how to
    read them."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    aggregates: list[Column] = [F.count(F.lit(1)).alias(ROWS)]
    kinds: dict[str, str] = {}
    for i, field in enumerate(schema.fields):
        column = F.col("`" + field.name.replace("`", "``") + "`")
        kind = _kind(field.dataType, T)
        kinds[field.name] = kind
        if kind in ("map", "nested"):  # Iceberg keeps no metrics of them: their NULLs here
            aggregates.append(F.count(column).alias(f"_hw_o{i}_n"))
        if kind != "map":
            aggregates.append(F.approx_count_distinct(column).alias(f"_hw_o{i}_d"))
        if kind in ("number", "date", "moment", "local"):
            # as the scanned profile measures them (engine `quantiles`): numbers as doubles,
            # times as microseconds since the epoch. One sketch a column, its list as JSON
            # text (py4j hands a list over as a Java object): an element read from the
            # sketch per fraction would be a sketch each, 5x the whole write
            ranked = (
                column.cast("double")
                if kind == "number"
                else F.unix_micros(column.cast("timestamp")).cast("double")
            )
            sketch = F.kll_sketch_agg_double(ranked, SKETCH)
            ranks = F.array(*(F.lit(q) for q in QUANTILES))
            # a sketch of no value (every value NULL or NaN, which KLL leaves out) has no
            # quantiles: asked for them, it fails the observation, which then never reports
            values = F.count(F.nanvl(ranked, F.lit(None)))
            quantiles = F.when(values > 0, F.kll_sketch_get_quantile_double(sketch, ranks))
            aggregates.append(F.to_json(quantiles).alias(f"_hw_o{i}_q"))
        if kind == "number":
            aggregates.append(F.avg(column.cast("double")).alias(f"_hw_o{i}_m"))
        elif kind == "bool":
            aggregates.append(F.avg(column.cast("int")).alias(f"_hw_o{i}_m"))

    def read(values: Mapping[str, Any]) -> tuple[int, dict[str, Profiled]]:
        rows = int(values[ROWS])
        out = {}
        for i, name in enumerate(kinds):
            counted, distinct, sketched, mean = (
                values.get(f"_hw_o{i}_{m}") for m in ("n", "d", "q", "m")
            )
            quantiles = tuple(json.loads(sketched)) if sketched else ()
            out[name] = Profiled(
                nulls=None if counted is None else rows - int(counted),
                distinct=None if distinct is None else int(distinct),
                mean=None if mean is None else float(mean),
                quantiles=quantiles if quantiles and None not in quantiles else None,
                top=_shares(mean) if kinds[name] == "bool" else None,
            )
        return rows, out

    return aggregates, read


def texts(schema: StructType) -> list[str]:
    """The text columns of `schema` (whose top values `top_values` counts)."""
    from pyspark.sql import types as T

    return [f.name for f in schema.fields if _kind(f.dataType, T) == "text"]


def _shares(mean: float | None) -> tuple[bool, ...]:
    """A boolean column's values, the most frequent first, from its share of true."""
    if mean is None:  # no value
        return ()
    if mean in (0.0, 1.0):
        return (mean == 1.0,)
    return (True, False) if mean >= 0.5 else (False, True)


def top_values(
    files: Sequence[tuple[str, int]],
    columns: Sequence[str],
    filesystem: pafs.FileSystem,
    *,
    seed: int,
) -> dict[str, tuple[Any, ...]]:
    """The TOP most frequent values of `columns` (text) in the Parquet `files` (path within
    `filesystem`, rows) a table's version is made of, counted in about SAMPLE rows: the
    first rows of each file, an equal share from each (of FILES files at most, drawn with
    `seed`). A value's share is what top values need, not ranks: runs of neighbouring rows
    tell it (see quality/profile.py, BLOCKS), unless the rows are sorted by the column."""
    import math
    import random

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    order = list(files)
    random.Random(seed).shuffle(order)
    chosen = order[:FILES]
    want = max(1, math.ceil(SAMPLE / len(chosen))) if chosen else 0
    parts: list[pa.RecordBatch] = []
    for path, _ in chosen:
        with filesystem.open_input_file(path) as handle:
            taken = 0
            batches = pq.ParquetFile(handle).iter_batches(
                batch_size=min(want, 65_536), columns=list(columns)
            )
            for batch in batches:
                parts.append(batch)
                taken += batch.num_rows
                if taken >= want:
                    break
    out: dict[str, tuple[Any, ...]] = {}
    for name in columns:
        chunks = [part.column(name) for part in parts]
        values = pa.chunked_array(chunks, type=chunks[0].type if chunks else pa.string())
        counted = pa.RecordBatch.from_struct_array(pc.value_counts(values.drop_null()))
        if not counted.num_rows:
            out[name] = ()
            continue
        # the most frequent in Arrow: a unique key's 500,000 values made Python objects and
        # sorted took 1 s a column
        first = pc.select_k_unstable(
            counted, k=min(TOP, counted.num_rows), sort_keys=[("counts", "descending")]
        )
        ranked = sorted(counted.take(first).to_pylist(), key=lambda pair: -pair["counts"])
        out[name] = tuple(pair["values"] for pair in ranked)
    return out


def from_files(
    jvm: Any, table: Any, snapshot: Any
) -> tuple[int, dict[str, ColumnStats], list[tuple[str, int]]]:
    """The rows of the Iceberg `snapshot` of `table` (Java objects, through py4j) and, per
    column, its NULLs and bounds, from the metrics of the data files the snapshot added: the
    whole table, for a snapshot that replaced it (CREATE [OR REPLACE] TABLE AS); and those
    files (location, rows). A column whose metrics the table does not keep (its
    `write.metadata.metrics` mode) is left out."""
    conversions = jvm.org.apache.iceberg.types.Conversions
    rows = int(snapshot.summary().get("added-records") or 0)
    # name → (field id, Iceberg type, bounded kind or None)
    columns = {
        f.name(): (f.fieldId(), f.type(), _iceberg_kind(f.type())) for f in table.schema().columns()
    }
    nulls: dict[str, int] = dict.fromkeys(columns, 0)
    low: dict[str, Any] = {}
    high: dict[str, Any] = {}
    unbounded: set[str] = set()  # a NaN (outside Iceberg's bounds), or values without bounds
    added: list[tuple[str, int]] = []
    files = snapshot.addedDataFiles(table.io()).iterator()
    while files.hasNext():
        data = files.next()
        added.append((str(data.location()), int(data.recordCount())))
        counted, nans = data.nullValueCounts(), data.nanValueCounts()
        lowers, uppers = data.lowerBounds(), data.upperBounds()
        for name, (field_id, iceberg_type, kind) in columns.items():
            if name not in nulls:
                continue
            found = None if counted is None else counted.get(field_id)
            if found is None:  # the table keeps no metrics of it
                del nulls[name]
                continue
            nulls[name] += int(found)
            if kind is None or name in unbounded:
                continue
            lower = None if lowers is None else lowers.get(field_id)
            upper = None if uppers is None else uppers.get(field_id)
            if (nans is not None and (nans.get(field_id) or 0) > 0) or (
                (lower is None or upper is None) and int(found) < int(data.recordCount())
            ):
                unbounded.add(name)
                continue
            if lower is None or upper is None:
                continue  # only NULLs in this file
            lo, hi = (_value(conversions.fromByteBuffer(iceberg_type, b)) for b in (lower, upper))
            low[name] = lo if name not in low else min(low[name], lo)
            high[name] = hi if name not in high else max(high[name], hi)
    out = {}
    for name, count in nulls.items():
        kind = columns[name][2]
        bounded = kind is not None and name not in unbounded
        out[name] = ColumnStats(
            may_be_null=count > 0,
            lower=_time(low.get(name), kind) if bounded else None,
            upper=_time(high.get(name), kind) if bounded else None,
            nulls=count,
        )
    return rows, out, added


@dataclass(frozen=True)
class Profiled:
    """What an observation measured of a column for profiles (`observing`); its NULLs only
    of a column Iceberg keeps no metrics of (lists, structs, maps)."""

    nulls: int | None = None
    distinct: int | None = None
    mean: float | None = None
    quantiles: tuple[Any, ...] | None = None
    top: tuple[Any, ...] | None = None


def _iceberg_kind(data_type: Any) -> Any:
    """The kind of an Iceberg type whose bounds are used (`_kind`'s words); None for the
    others (text's bounds are prefixes of its values)."""
    name = str(data_type.typeId().name())
    if name in ("INTEGER", "LONG", "FLOAT", "DOUBLE", "DECIMAL"):
        return "number"
    if name == "DATE":
        return "date"
    if name == "TIMESTAMP":
        return "moment" if data_type.shouldAdjustToUTC() else "local"
    return None


def _value(value: Any) -> Any:
    """A bound as py4j hands it over: a number, or a Java BigDecimal (as a Decimal)."""
    if isinstance(value, int | float | Decimal):
        return value
    return Decimal(str(value.toPlainString()))


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
    if isinstance(data_type, T.ArrayType | T.StructType):
        return "nested"
    if isinstance(data_type, T.StringType | T.VarcharType | T.CharType):
        return "text"
    return "other"  # binary: its distinct values estimated


def _time(value: Any, kind: str) -> Any:
    """A bound as observed (days or microseconds since the epoch for times) as a value: a
    date, a UTC datetime (an instant), a naive one (a wall-clock time), a number."""
    if value is None or kind == "number":
        return value
    if kind == "date":
        return (EPOCH + timedelta(days=int(value))).date()
    moment = EPOCH + timedelta(microseconds=int(value))
    return moment if kind == "moment" else moment.replace(tzinfo=None)
