"""Feature views read two ways: training sets, point in time (each label row gets the values
its entity had at that row's time), and online lookups of the latest values — both with the
one TTL rule of `headwater.change.online.status`.

    >>> import headwater.serve.features as features
    >>> features.training_set("shop", "customer_stats", "labels.csv")      # doctest: +SKIP
    pyarrow.Table …

A training set is one `ASOF LEFT JOIN` in an in-memory engine with a memory cap that spills
to a temporary folder; the entity file is streamed in as Arrow batches (never uploaded, never
loaded whole), so a feature table and an entity file larger than memory stay within the cap.
"""

from __future__ import annotations

import difflib
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
from sqlglot import exp

from headwater.change.online import (
    KEY_SEPARATOR,
    Declared,
    OnlineStore,
    Status,
    entity_key,
    feature_columns,
    feature_view,
    micros,
    status,
    ttl_micros,
)
from headwater.change.versions import PROD
from headwater.contracts.specs import FeatureView
from headwater.engine import Engine, scratch
from headwater.errors import EngineError, UsageError
from headwater.project import Project, load_project
from headwater.serve.errors import ApiError
from headwater.serve.reader import Reader, Source

ROW = "_hw_row"  # an entity row's place in its file: the order rows come back in
TIME = "_hw_t"
MEMORY_LIMIT = "1GB"  # the engine's cap; what does not fit spills to a temporary folder
BATCH_ROWS = 64 * 1024
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
Entities: TypeAlias = "str | Path | pa.Table | pa.RecordBatchReader"


def training_set(
    project: Project | str | Path,
    view: str,
    entities: Entities,
    *,
    env: str = PROD,
    as_of: int | None = None,
    time_column: str = "event_timestamp",
    out: str | Path | None = None,
    memory_limit: str = MEMORY_LIMIT,
    on_rows: Callable[[int], None] | None = None,
) -> pa.Table | Path:
    """Every row of `entities` (a CSV or Parquet file, or Arrow data) in its order, with all
    its columns, plus the features of `view` as of the row's `time_column`: each the value of
    the entity's latest feature row with event_time <= time, NULL when there is none or when
    it is older than the view's TTL (time - ttl <= event_time, inclusive, as online).

    Reads the product `env` serves (or release `as_of` served). With `out`, the result is
    written there as Parquet (streamed) and the path returned; else an Arrow table.
    `on_rows` is told how many entity rows were read so far (a progress bar).

    Raises:
        UsageError: no such view, entity file, or column in it (named, with the file); a key
            that cannot be read as the feature table's type; a release not kept.
        SpecError: the view names a column its model does not have.
    """
    loaded = project if isinstance(project, Project) else load_project(project)
    declared = feature_view(loaded, view)
    source, lake, filesystems = _source(loaded, declared, env=env, as_of=as_of)
    features = feature_columns(declared, source.schema.names)
    label, reader = _entities(entities)
    _check_columns(label, reader.schema, declared, time_column, features)
    spill = Path(tempfile.mkdtemp(prefix="hw-features-"))
    target = None if out is None else _output(Path(out))
    allowed = [lake, *([target.parent] if target else [])]
    engine = _bounded(allowed, memory_limit=memory_limit, spill=spill, filesystems=filesystems)
    try:
        engine.register("_hw_entities", _numbered(reader, on_rows))
        query = _point_in_time(engine, source, declared, features, reader.schema, time_column)
        try:
            if target is None:
                return engine.read(query)
            engine.execute(_copy(query, target))
        except EngineError as err:
            raise _bad_entities(label, err) from None
        return target
    finally:
        engine.close()
        shutil.rmtree(spill, ignore_errors=True)


def online_features(
    project: Project | str | Path,
    view: str,
    keys: Sequence[Any],
    *,
    env: str = PROD,
    now: datetime,
    store: OnlineStore | None = None,
) -> list[dict[str, Any]]:
    """The latest values of each of `keys` from the online store, each feature with its
    status as of `now`: PRESENT (now - ttl <= event_time <= now), EXPIRED (older: no value)
    or NOT_FOUND (no row of the entity at or before `now`). A key is the entity's value, or
    for an entity of several columns a list of them (or their text joined by `|`, see
    `entity_key`).

        >>> online_features(p, "customer_stats", [42], now=now)    # doctest: +SKIP
        [{"key": 42, "event_time": datetime(…), "features": {"orders": {"value": 3,
          "status": "PRESENT"}}}]

    Raises:
        UsageError: no such view, or a key with the wrong number of parts.
        StoreError: the online store cannot be read, or holds no state of the view in `env`.
    """
    loaded = project if isinstance(project, Project) else load_project(project)
    declared = feature_view(loaded, view)
    texts = [key_text(declared, k) for k in keys]
    opened = store or OnlineStore.open(loaded)
    try:
        held, found = opened.lookup(env, view, texts)
    finally:
        if store is None:
            opened.close()
    at, ttl = micros(now), ttl_micros(declared.spec)
    answers = []
    for key, text in zip(keys, texts, strict=True):
        record = found[text]
        event = None if record is None else record[0]
        state = status(None if event is None else micros(event), at, ttl)
        values = record[1] if record is not None and state is Status.PRESENT else {}
        answers.append(
            {
                "key": key,
                "event_time": None if state is Status.NOT_FOUND else event,
                "features": {
                    f: {"value": values.get(f), "status": state.value} for f in held.features
                },
            }
        )
    return answers


def key_text(view: Declared, key: Any) -> str:
    """`key` as the online store writes it (`entity_key`): a value, a list of the entity's
    values, or text already joined by `|`.

    Raises:
        UsageError: the key has another number of parts than the entity has columns.
    """
    size = len(view.spec.entity)
    if isinstance(key, list | tuple):
        parts = list(key)
    elif isinstance(key, str) and size > 1:
        parts = [p.replace("\\|", "|").replace("\\\\", "\\") for p in _split(key)]
    else:
        parts = [key]
    if len(parts) != size:
        raise UsageError(
            f"key {key!r} of feature view {view.name!r} has {len(parts)} part(s), but its "
            f"entity has {size}: {', '.join(view.spec.entity)}",
            hint=f"give the {size} values in that order (as text: joined by {KEY_SEPARATOR})",
        )
    return entity_key(parts)


def _split(text: str) -> list[str]:
    """`a|b\\|c` → [`a`, `b\\|c`]: split at each `|` no backslash escapes."""
    return re.split(r"(?<!\\)((?:\\\\)*)\|", text)[::2] if text else [text]


# ---- the training set's parts -------------------------------------------------------------


def _source(
    project: Project, view: Declared, *, env: str, as_of: int | None
) -> tuple[Source, str | Path, dict[str, dict[str, Any]]]:
    """The product snapshot the view's model is served from, where the lake's files are
    (`Lake.place`), and the filesystems that read them (`Lake.filesystems`)."""
    reader = Reader(project, env=env)
    try:
        lake = reader.lake
        return reader.source(view.model, as_of=as_of), lake.place, lake.filesystems
    except ApiError as err:
        raise UsageError(
            f"cannot read feature view {view.name!r}: {err.message}", hint=err.hint
        ) from None
    finally:
        reader.close()


def _entities(entities: Entities) -> tuple[str, pa.RecordBatchReader]:
    """The entity rows as a stream of batches, and how to name them in an error.

    Raises:
        UsageError: the file is missing, of another format, or not readable as one.
    """
    if isinstance(entities, pa.Table):
        return "the entity table", entities.to_reader(max_chunksize=BATCH_ROWS)
    if isinstance(entities, pa.RecordBatchReader):
        return "the entity stream", entities
    path = Path(entities)
    if not path.exists():
        raise UsageError(f"{path}: no such entity file", hint="give a CSV or Parquet file")
    kind = "parquet" if path.is_dir() else FORMATS.get(path.suffix.lower())
    if kind is None:
        raise UsageError(
            f"{path}: an entity file is .csv or .parquet", hint="convert it, or rename it"
        )
    try:
        scanner = ds.dataset(path, format=kind).scanner(batch_size=BATCH_ROWS)
        return str(path), scanner.to_reader()
    except (pa.ArrowInvalid, OSError) as err:
        raise UsageError(f"{path}: not a readable {kind} file: {err}") from None


def _check_columns(
    label: str, schema: pa.Schema, view: Declared, time_column: str, features: Sequence[str]
) -> None:
    """The entity data has the view's key columns and the time column, and no column the
    result would show twice.

    Raises:
        UsageError: naming the file and the column.
    """
    names = schema.names
    wanted = [(c, f"a key of feature view {view.name!r}") for c in view.spec.entity]
    wanted.append((time_column, "the time of each row (--time-column names another)"))
    for column, why in wanted:
        if column not in names:
            close = difflib.get_close_matches(column, names, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"its columns: {', '.join(names)}"
            raise UsageError(f"{label} has no column {column!r}, {why}", hint=hint)
    for column in names:
        if column in features or column.startswith("_hw_"):
            raise UsageError(
                f"{label} has a column {column!r}, which the training set adds itself",
                hint="rename or drop that column of the entity file",
            )


def _numbered(
    reader: pa.RecordBatchReader, on_rows: Callable[[int], None] | None
) -> pa.RecordBatchReader:
    """`reader` with each row's place in it (`_hw_row`), counted as the engine pulls batches."""
    schema = reader.schema.append(pa.field(ROW, pa.int64()))

    def batches() -> Iterator[pa.RecordBatch]:
        done = 0
        for batch in reader:
            rows = pa.array(np.arange(done, done + batch.num_rows, dtype=np.int64))
            yield pa.RecordBatch.from_arrays([*batch.columns, rows], schema=schema)
            done += batch.num_rows
            if on_rows is not None:
                on_rows(done)

    return pa.RecordBatchReader.from_batches(schema, batches())


def _point_in_time(
    engine: Engine,
    source: Source,
    view: Declared,
    features: Sequence[str],
    entities: pa.Schema,
    time_column: str,
) -> exp.Select:
    """The ASOF LEFT JOIN of the entity rows (`_hw_entities`) to the view's feature rows:
    per entity row, the feature row of the same key with the greatest event time <= its time;
    its values kept where `_valid`, in the entity rows' order."""
    scan = _scan(engine, source)
    keys = len(view.spec.entity)
    on = exp.and_(
        *[exp.column(f"_hw_k{i}", "e").eq(exp.column(f"_hw_k{i}", "f")) for i in range(keys)],
        exp.GTE(this=exp.column(TIME, "e"), expression=exp.column(TIME, "f")),
    )
    right = _feature_rows(scan.copy(), view.spec, features)
    join = exp.Join(this=right.subquery("f"), method="ASOF", side="LEFT", on=on)
    ttl = ttl_micros(view.spec)
    values = [
        _valid(exp.column(f"_hw_v{i}", "f"), ttl).as_(f, quoted=True)
        for i, f in enumerate(features)
    ]
    left = _entity_rows(engine, scan, view.spec, entities, time_column)
    return (
        exp.select(*[exp.column(c, "e", quoted=True) for c in entities.names], *values)
        .from_(left.subquery("e"))
        .join(join)
        .order_by(exp.column(ROW, "e"))
    )


def _entity_rows(
    engine: Engine, scan: exp.Expr, spec: FeatureView, entities: pa.Schema, time_column: str
) -> exp.Select:
    """The entity rows, with their keys as the feature table types them (`_hw_k0`…) and
    their time as a UTC timestamp (`_hw_t`)."""
    named = exp.select(*[exp.column(c, quoted=True) for c in spec.entity]).from_(scan)
    types = engine.columns(named)
    keys = [
        exp.cast(exp.column(c, quoted=True), exp.DataType.build(types[c], dialect=engine.dialect))
        for c in spec.entity
    ]
    return exp.select(
        exp.column(ROW),
        *[exp.column(c, quoted=True) for c in entities.names],
        *[key.as_(f"_hw_k{i}") for i, key in enumerate(keys)],
        exp.cast(exp.column(time_column, quoted=True), "timestamptz").as_(TIME),
    ).from_("_hw_entities")


def _feature_rows(scan: exp.Expr, spec: FeatureView, features: Sequence[str]) -> exp.Select:
    """The feature rows that have an event time: keys, time, values (`_hw_v0`…)."""
    event = exp.column(spec.event_time, quoted=True)
    return (
        exp.select(
            *[exp.column(c, quoted=True).as_(f"_hw_k{i}") for i, c in enumerate(spec.entity)],
            exp.cast(event, "timestamptz").as_(TIME),
            *[exp.column(f, quoted=True).as_(f"_hw_v{i}") for i, f in enumerate(features)],
        )
        .from_(scan)
        .where(event.copy().is_(exp.null()).not_())
    )


def _valid(value: exp.Expr, ttl_us: int | None) -> exp.Expr:
    """`value` where its row is within the TTL of the entity row's time, else NULL: the SQL
    of `headwater.change.online.status` (the ASOF condition already says event <= time)."""
    if ttl_us is None:
        return value
    oldest = exp.Sub(
        this=exp.column(TIME, "e"),
        expression=exp.Interval(this=exp.Literal.number(ttl_us), unit=exp.var("MICROSECOND")),
    )
    fresh = exp.GTE(this=exp.column(TIME, "f"), expression=oldest)
    return exp.Case(ifs=[exp.If(this=fresh, true=value)])


def _scan(engine: Engine, source: Source) -> exp.Expr:
    """The product's rows (an empty table of its columns for a snapshot without files)."""
    if source.files:
        return engine.scan(source.files)
    name = f"_hw_empty_{source.product.snapshot_id}"
    engine.register(name, source.schema.empty_table())
    return exp.to_table(name)


def _copy(query: exp.Select, path: Path) -> exp.Copy:
    """COPY (query) TO path as Parquet: written as the rows come, in their order."""
    option = exp.CopyParameter(this=exp.var("FORMAT"), expression=exp.var("parquet"))
    return exp.Copy(
        this=query.subquery(), kind=False, files=[exp.Literal.string(str(path))], params=[option]
    )


def _output(path: Path) -> Path:
    """Where the training set goes, its folder made.

    Raises:
        UsageError: the folder cannot be made.
    """
    try:
        path.resolve().parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{path}: cannot write the training set there: {err}") from None
    return path.resolve()


def _bad_entities(label: str, err: EngineError) -> Exception:
    """An engine error of reading the entities as the user's: a value of theirs that is not
    of the feature table's type, or a file that is not what its name says (its reader's
    words, without the engine's name for the stream and the Python traceback it quotes)."""
    text = err.message
    if not any(word in text for word in ("onversion", "Invalid", "CSV")):
        return err
    text = text.split(" Detail: Python exception")[0]
    text = re.sub(r"^.*registered as '_hw_entities' failed: (Invalid: )?", "", text)
    return UsageError(
        f"{label}: its rows cannot be joined to the feature rows: {text}",
        hint="each key column must hold values of the feature table's key type, and the time "
        "column times (e.g. 2026-01-31 12:00:00); a CSV column's type is taken from its "
        "first rows",
    )


def _bounded(
    folders: Sequence[str | Path],
    *,
    memory_limit: str,
    spill: Path,
    filesystems: dict[str, dict[str, Any]],
) -> Engine:
    """An in-memory engine that uses at most `memory_limit` (spilling to `spill`) and may
    read and write files under `folders` only."""
    return scratch(
        files_under=folders, memory_limit=memory_limit, spill_to=spill, filesystems=filesystems
    )
