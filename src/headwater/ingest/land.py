"""Land what a connector reads into `raw.<contract>`: conform to the contract, quarantine, commit.

Conforming is one SQL pass per Arrow part (casts, required fields, unknown columns under the
evolution policy, the watermark's late flag). Records that break the contract go to
`raw.<contract>__quarantine` with their reason and location. The connector's checkpoint (files
seen, incremental cursor) travels in the raw commit's snapshot summary, so a crash at any point
resumes with nothing lost or duplicated; quarantine commits first, and a rerun of the same
batch adds only the quarantined records it does not hold yet.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from headwater.contracts import Column, Contract, Delivery, Load
from headwater.contracts.secrets import Secrets
from headwater.contracts.specs import parse_watermark
from headwater.contracts.thresholds import parse_duration
from headwater.engine import Engine, scratch
from headwater.errors import HeadwaterError, TimedOut
from headwater.ingest.conform import INPUT, RESERVED, UNKNOWN, arrow_types, conform_query
from headwater.ingest.connectors import open_reader
from headwater.ingest.direct import DirectLane, direct_files
from headwater.ingest.files import batch_id
from headwater.ingest.http import HttpReader
from headwater.ingest.infer import infer_columns
from headwater.ingest.source import (
    CHECKPOINT_VERSION,
    ORIGIN,
    RECORD,
    Acknowledged,
    Checkpoint,
    FileSource,
    Part,
    Reader,
    Rejected,
    cursor_text,
)
from headwater.zones import history
from headwater.zones.datafiles import SelfWritten
from headwater.zones.lake import Lake
from headwater.zones.layout import QUARANTINE, RAW_METADATA

_ARROW = {
    "varchar": pa.string(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "boolean": pa.bool_(),
}
QUARANTINE_SCHEMA = pa.schema([(name, _ARROW[sql]) for name, sql in QUARANTINE.items()])
_SEEN = "_hw_seen"


@dataclass
class Landed:
    """What one ingest of one contract did."""

    table: str
    batch_id: str | None = None
    files: list[str] = field(default_factory=list)
    already_landed: int = 0
    rows: int = 0
    quarantined: int = 0
    late: int = 0
    skipped: int = 0  # records read again inside the incremental lag, already in raw
    read: str = ""  # what the connector read, for people: "3 new files", "12 pages"
    event_min: str | None = None
    event_max: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)
    # files DuckDB landed itself, by tier ("exact" or "read_json", ingest/direct.py), and
    # those it gave back to the careful lane, with why
    direct: dict[str, str] = field(default_factory=dict)
    careful: dict[str, str] = field(default_factory=dict)
    # what a user should know though nothing failed: a glob matching nothing, an empty
    # file, records read that are neither landed nor quarantined
    warnings: list[str] = field(default_factory=list)
    bytes: int | None = None  # what the batch's commit added to the lake (Parquet, compressed)


def ingest(
    contract: Contract,
    *,
    root: Path,
    lake: Lake,
    now: datetime,
    environ: Mapping[str, str] | None = None,
    reader: Reader | None = None,
    tidy: bool = True,
    deadline: float | None = None,
) -> Landed:
    """Land what `contract`'s connector has that raw does not, as one raw batch.

    `environ` expands `${VAR}` references (default: the process environment); their values
    never appear in an error, a location or the catalog. `reader` lands what an open reader
    holds instead of opening the connector (a stream worker's batch). Past `deadline` (a
    `time.monotonic()` value) reading stops before the next part (an HTTP page, a file, a
    chunk of rows) with `TimedOut`, and nothing is committed.

    Example:
        >>> ingest(contract, root=Path("shop"), lake=lake, now=now).rows   # doctest: +SKIP
        1200
    """
    secrets = Secrets(os.environ if environ is None else environ)
    try:
        return _land(
            contract,
            root=root,
            lake=lake,
            now=now,
            secrets=secrets,
            reader=reader,
            tidy=tidy,
            deadline=deadline,
        )
    except HeadwaterError as err:
        raise type(err)(
            secrets.scrub(err.message),
            where=err.where,
            hint=secrets.scrub(err.hint) if err.hint else None,
        ) from err  # the cause stays for --debug and callers; the CLI scrubs what it prints


def _land(
    contract: Contract,
    *,
    root: Path,
    lake: Lake,
    now: datetime,
    secrets: Secrets,
    reader: Reader | None = None,
    tidy: bool = True,
    deadline: float | None = None,
) -> Landed:
    table = contract.table
    quarantine = f"{table}__quarantine"
    _create_tables(contract, lake)
    # data files a killed run wrote and never committed (never those of a live writer)
    removed = lake.gc([table, quarantine], only_untidy=True) if tidy else []
    newest = lake.current_properties(table)
    whole = contract.load is Load.SNAPSHOT
    state = _resume(lake, table, newest)
    incremental = getattr(contract.connector, "incremental", None)
    if incremental is not None:
        state = replace(state, since=_since(state.cursor, incremental.initial, incremental.lag))
    if reader is None:
        reader = open_reader(
            contract.connector,
            root=root,
            state=state,
            secrets=secrets,
            columns=[c.name for c in contract.columns],
            whole=whole,
            name=contract.name,
            lake=lambda: lake.current_properties(table),
        )
    if isinstance(reader, HttpReader):
        reader.deadline = deadline  # stops between pages, not only between parts
    try:
        return _read_and_commit(
            contract, reader, lake, state, newest, removed, now=now, deadline=deadline
        )
    finally:
        close = getattr(reader, "close", None)
        if close is not None:
            close()  # a stream reader's consumer or connection, however the landing ended


def _read_and_commit(
    contract: Contract,
    reader: Reader,
    lake: Lake,
    state: Checkpoint,
    newest: dict[str, Any],
    removed: list[Any],
    *,
    now: datetime,
    deadline: float | None = None,
) -> Landed:
    table = contract.table
    quarantine = f"{table}__quarantine"
    whole = contract.load is Load.SNAPSHOT
    incremental = getattr(contract.connector, "incremental", None)
    result = Landed(table, already_landed=reader.already_landed)
    if removed:
        size = sum(o.bytes for o in removed)
        result.warnings.append(
            f"removed {len(removed)} data file(s) ({size:,} bytes) an interrupted run left "
            "uncommitted"
        )
    if reader.key == "":
        result.read = reader.describe()
        result.warnings += reader.warnings
        return result
    # a snapshot may repeat an earlier copy's files (an object put back): chained to the
    # previous batch, its id is still new
    before = (newest.get("batch_id") or "") if whole else ""
    result.batch_id = batch_id(f"{reader.key}\n{state.cursor}{before}")
    files = reader.direct
    result.files = [f.shown for f in files.new] if files is not None else []
    contract = _pinned(contract, lake)
    direct = direct_files(contract, files, local_lake=lake.local) if files is not None else []
    if files is not None and direct:
        parts = files.parts([f for f in files.new if f not in direct])
    else:
        parts = reader.parts()
    contract, parts = _inferred(contract, parts, reader)
    high = _event_high(contract, lake, newest)
    job = _Job(contract, result, now=now, cutoff=_late_cutoff(contract, high), state=state)
    landed_files = lake.files(table) if state.since is not None else []
    if incremental is not None and landed_files:
        job.load_seen(landed_files, incremental.column, since=state.since)

    def streamed() -> Iterator[pa.Table | SelfWritten]:
        if files is not None and direct:
            params = {"batch_id": result.batch_id, "now": now, "cutoff": job.cutoff}
            with DirectLane(contract, direct, params=params) as lane:
                yield from job.direct(lane, files)
        yield from _before(deadline, job.conformed(parts), contract)
        job.keep_rejected(reader.rejected)
        job.reconcile()
        result.warnings += reader.warnings

    conformed = _described(streamed(), reader, result)
    first = next(conformed, None)
    if first is None and not job.bad and job.checkpoint(reader).stored() == state.stored():
        result.read = reader.describe()
        return result  # nothing new: no commit, the checkpoint stands

    def commit_quarantine() -> None:
        if not job.bad:
            return  # nothing to set aside: no quarantine commit
        lake.append(
            quarantine,
            job.new_quarantine(lake, quarantine),
            properties={"batch_id": result.batch_id},
        )

    acknowledged = reader if isinstance(reader, Acknowledged) else None
    committed = lake.append(
        table,
        itertools.chain([first] if first is not None else [], conformed),
        before_commit=commit_quarantine,
        table_properties=lambda: _table_properties(contract),
        base=acknowledged.base if acknowledged is not None else None,
        properties={
            "batch_id": result.batch_id,
            "checkpoint": lambda: _record_checkpoint(lake, table, result, job.checkpoint(reader)),
            "rows": lambda: result.rows,
            "landed_at": now.isoformat(),  # the run's clock: what freshness SLAs read
            "event_min": lambda: result.event_min,
            "event_max": lambda: result.event_max,
            "event_high": lambda: _max(high, result.event_max) if result.event_max else high,
            "late": lambda: result.late,
            "event_ranges": job.event_ranges,
            "schema_version": contract.schema_version,
            "load": contract.load.value,
            "privacy_level": contract.privacy_level.value,
            "pii": {c.name: c.pii for c in contract.columns if c.pii},
        },
    )
    stale = _aside_path(newest) if newest else None
    if stale and Path(stale).name != _aside_file(result):
        lake.remove_aside(table, stale)  # the newest commit no longer needs it
    if acknowledged is not None:
        acknowledged.committed()
    written = committed.properties.get("bytes")
    result.bytes = int(written) if isinstance(written, int | float | str) else None
    return result


class _Job:
    """One landing: streams parts through the conform query and keeps the counts."""

    def __init__(
        self,
        contract: Contract,
        result: Landed,
        *,
        now: datetime,
        cutoff: datetime | None,
        state: Checkpoint,
    ):
        self.contract = contract
        self.result = result
        self.now = now
        self.cutoff = cutoff
        self.bad: list[pa.Table] = []
        self.queries: dict[tuple[object, ...], tuple[str, set[str]]] = {}
        self.hours: set[Any] = set()
        self.extra_keys: tuple[str, ...] = ()  # undeclared JSON keys seen (under evolve)
        self.event_column = parse_watermark(contract.watermark)[0] if contract.watermark else None
        incremental = getattr(contract.connector, "incremental", None)
        self.cursor_column = incremental.column if incremental is not None else None
        self.cursor: Any = _typed_cursor(state.cursor)
        self.unseen_sql: str | None = None
        self.tally: dict[str, list[int]] = {}  # origin → records read, landed, quarantined

    @cached_property
    def engine(self) -> Engine:
        """The careful lane's engine, made when a part first takes that lane (a DuckDB
        connection costs about 15 ms, and files the direct lane lands never need it)."""
        return scratch()

    def conformed(self, parts: Iterator[Part]) -> Iterator[pa.Table]:
        """The careful lane: each part typed by the conform query, bad records kept aside."""
        for part in parts:
            good = self._conform(part)
            if good.num_rows:
                yield good

    def direct(self, lane: DirectLane, reader: FileSource) -> Iterator[pa.Table | SelfWritten]:
        """The direct lane's data files (exact tier, then read_json tier), then the careful
        lane for the files it gave back. The lake writes a part before asking for the next."""
        yield lane.exact()
        checked = lane.check(lane.left())
        if checked:
            yield lane.part(checked)
        for written in lane.written:
            self._count(written.counted)
            self.result.direct[written.file.shown] = written.tier
        left = lane.left()
        self.result.careful = {f.shown: lane.declined.get(f.shown, "") for f in left}
        yield from self.conformed(reader.parts(left))

    def checkpoint(self, reader: Reader) -> Checkpoint:
        """The reader's checkpoint with the cursor of what this batch landed."""
        return replace(reader.checkpoint(), cursor=cursor_text(self.cursor), since=None)

    def keep_rejected(self, rejected: Rejected) -> None:
        """Quarantine what the reader could not even split into records (or read at all)."""
        if rejected.rows:
            self._keep_bad(
                pa.Table.from_pylist(
                    [
                        {**r, "_hw_batch_id": self.result.batch_id, "_hw_ingested_at": self.now}
                        for r in rejected.rows
                    ],
                    schema=QUARANTINE_SCHEMA,
                ),
            )
        for table in rejected.tables:
            n = table.num_rows
            self._keep_bad(
                table.append_column("_hw_batch_id", pa.array([self.result.batch_id] * n))
                .append_column(
                    "_hw_ingested_at", pa.array([self.now] * n, pa.timestamp("us", tz="UTC"))
                )
                .select(QUARANTINE_SCHEMA.names)
                .cast(QUARANTINE_SCHEMA)
            )

    def reconcile(self) -> None:
        """Every record read from a source is landed, quarantined or (incremental) already
        landed: a file where that does not add up is named in the run's warnings."""
        for origin, (read, landed, bad) in sorted(self.tally.items()):
            if read != landed + bad:
                self.result.warnings.append(
                    f"{origin}: {read:,} records read but {landed:,} landed and {bad:,} "
                    f"quarantined; {read - landed - bad:,} are unaccounted for (please report)"
                )

    def load_seen(self, files: list[str], column: str, *, since: Any) -> None:
        """Remember the keys raw holds from `since` on, so records read again inside the
        incremental lag are not landed twice (a key: primary key + cursor, else the record)."""
        declared = [c.name for c in self.contract.columns]
        keys = [*self.contract.primary_key, column] if self.contract.primary_key else declared
        names = [exp.column(k, quoted=True) for k in keys]
        source = self.engine.scan(files)
        seen = (
            exp.select(*names)
            .distinct()
            .from_(source)
            .where(
                exp.GTE(
                    this=exp.column(column, quoted=True), expression=exp.Placeholder(this="since")
                )
            )
        )
        self.engine.execute(
            exp.Create(
                this=exp.to_table(_SEEN),
                kind="TABLE",
                expression=seen,
                properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
            ),
            {"since": since},
        )
        match = exp.and_(
            *[
                exp.NullSafeEQ(
                    this=exp.column(k, table="_g", quoted=True),
                    expression=exp.column(k, table="_s", quoted=True),
                )
                for k in keys
            ]
        )
        # rendered once: it runs on every part of the batch
        self.unseen_sql = self.engine.render(
            exp.select(exp.Star())
            .from_(exp.to_table(INPUT).as_("_g"))
            .join(exp.to_table(_SEEN).as_("_s"), on=match, join_type="anti")
        )

    def new_quarantine(self, lake: Lake, quarantine: str) -> list[pa.Table]:
        """The quarantined records of this batch the quarantine table does not hold yet (a
        rerun after a crash between the two commits adds nothing twice)."""
        if not self.bad:
            return []
        bad = pa.concat_tables(self.bad)
        # a rerun's batch is the newest: its quarantine commit is among those Iceberg keeps
        done = [s for s in lake.recent(quarantine) if s.batch_id == self.result.batch_id]
        if not done:
            return [bad]
        self.engine.register(INPUT, bad)
        try:
            same = exp.and_(
                *[
                    exp.NullSafeEQ(this=exp.column(c, "_q"), expression=exp.column(c, "_i"))
                    for c in ("_hw_source", "_hw_record")
                ],
                exp.column("_hw_batch_id", "_q").eq(exp.Placeholder(this="batch")),
            )
            kept = exp.Exists(
                this=exp.select("1")
                .from_(
                    exp.select(exp.Star())
                    .from_(self.engine.scan(lake.files(quarantine)))
                    .subquery("_q")
                )
                .where(same)
            )
            new = exp.select(exp.Star()).from_(exp.to_table(INPUT).as_("_i")).where(exp.not_(kept))
            held = self.engine.read(new, {"batch": self.result.batch_id})
        finally:
            self.engine.unregister(INPUT)
        return [held.cast(QUARANTINE_SCHEMA)]

    def _conform(self, part: Part) -> pa.Table:
        data = part.data
        has_origin = ORIGIN in data.column_names
        columns = tuple(c for c in data.column_names if c not in (RECORD, ORIGIN))
        params = {
            "batch_id": self.result.batch_id,
            "now": self.now,
            "source": part.origin,
            "cutoff": self.cutoff,
        }
        unit = part.unit
        self.engine.register(INPUT, data)
        try:
            while True:
                sql, used = self._query(columns, part.format, self.extra_keys, has_origin, unit)
                out = self.engine.read(sql, {k: v for k, v in params.items() if k in used})
                if UNKNOWN not in out.column_names:
                    break
                found = pc.unique(pc.list_flatten(out.column(UNKNOWN))).to_pylist()
                new = [k for k in found if not k.startswith(RESERVED)]  # quarantined, not kept
                out = out.drop_columns([UNKNOWN])
                if not new:
                    break
                # a key never seen before: it becomes a column (evolve), and the part is read
                # again with it (rare: once per new key per run)
                self.extra_keys = tuple(sorted({*self.extra_keys, *new}))
        finally:
            self.engine.unregister(INPUT)
        good = out
        tally = self.tally.setdefault(part.origin, [0, 0, 0])
        tally[0] += data.num_rows
        tally[2] += out.num_rows - out.column("_hw_reason").null_count
        if out.column("_hw_reason").null_count < out.num_rows:  # filtering copies: only if needed
            failed = pc.is_valid(out.column("_hw_reason"))
            bad = out.filter(failed)
            self._keep_bad(bad.select(QUARANTINE_SCHEMA.names).cast(QUARANTINE_SCHEMA))
            good = out.filter(pc.invert(failed))
        good = good.drop_columns(["_hw_reason", "_hw_record"])
        tally[1] += good.num_rows  # landed now, or (incremental) already landed
        if self.unseen_sql is not None and good.num_rows:
            before = good.num_rows
            self.engine.register(INPUT, good)
            try:
                good = self.engine.read(self.unseen_sql)
            finally:
                self.engine.unregister(INPUT)
            self.result.skipped += before - good.num_rows
        self._count(good)
        return good

    def _query(
        self,
        columns: tuple[str, ...],
        fmt: str,
        extra_keys: tuple[str, ...],
        has_origin: bool,
        unit: str,
    ) -> tuple[str, set[str]]:
        """The conform SQL for this part shape (built once per shape, not per part)."""
        shape = (columns, fmt, extra_keys, has_origin, unit)
        if shape not in self.queries:
            query = conform_query(
                self.contract,
                list(columns),
                fmt,
                extra_keys=list(extra_keys),
                per_row_origin=has_origin,
                unit=unit,
            )
            self.queries[shape] = (
                self.engine.render(query),
                {p.name for p in query.find_all(exp.Placeholder)},
            )
        return self.queries[shape]

    def _keep_bad(self, bad: pa.Table) -> None:
        self.bad.append(bad)
        self.result.quarantined += bad.num_rows
        for reason in bad.column("_hw_reason").to_pylist():
            first = reason.split(";")[0]
            self.result.reasons[first] = self.result.reasons.get(first, 0) + 1

    def _count(self, good: pa.Table) -> None:
        self.result.rows += good.num_rows
        self.result.late += pc.sum(good.column("_hw_late")).as_py() or 0
        if self.cursor_column and good.num_rows and self.cursor_column in good.column_names:
            high = pc.max(good.column(self.cursor_column)).as_py()
            if high is not None and (self.cursor is None or high > self.cursor):
                self.cursor = high
        if self.event_column and good.num_rows and self.event_column in good.column_names:
            bounds = pc.min_max(good.column(self.event_column))
            lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
            if lo is not None:
                self.result.event_min = _min(self.result.event_min, lo.isoformat())
                self.result.event_max = _max(self.result.event_max, hi.isoformat())
                hours = pc.unique(pc.floor_temporal(good.column(self.event_column), unit="hour"))
                self.hours.update(h for h in hours.to_pylist() if h is not None)

    def event_ranges(self) -> list[list[str]]:
        """The hours this batch touched, as merged [start, end) ranges (ISO strings)."""
        out: list[list[Any]] = []
        for hour in sorted(self.hours):
            if out and out[-1][1] == hour:
                out[-1][1] = hour + timedelta(hours=1)
            else:
                out.append([hour, hour + timedelta(hours=1)])
        return [[lo.isoformat(), hi.isoformat()] for lo, hi in out]


def _described(
    parts: Iterator[pa.Table | SelfWritten], reader: Reader, result: Landed
) -> Iterator[pa.Table | SelfWritten]:
    """`parts`, and once they are read, what the reader read in `result.read`."""
    yield from parts
    skipped = f", {result.skipped:,} re-read rows already landed" if result.skipped else ""
    result.read = reader.describe() + skipped


def _aside_path(summary: Mapping[str, Any]) -> str | None:
    """Where a commit's checkpoint files were written aside (None: it wrote none)."""
    stored = summary.get("checkpoint")
    aside = stored.get("files") if isinstance(stored, Mapping) else None
    path = aside.get("path") if isinstance(aside, Mapping) else None
    return path if isinstance(path, str) else None


def _aside_file(result: Landed) -> str:
    return f"hw-checkpoint-{result.batch_id}.files"


def _record_checkpoint(
    lake: Lake, table: str, result: Landed, checkpoint: Checkpoint
) -> dict[str, Any]:
    """The summary's checkpoint; its files (they grow with the source) are written aside
    as gzipped JSON, named by the batch so a rerun of the batch replaces them. (Not `.gz`:
    a FileIO may compress by the name's extension on its own.)"""
    path = None
    if checkpoint.files:
        data = gzip.compress(json.dumps(sorted(checkpoint.files)).encode(), mtime=0)
        path = lake.write_aside(table, _aside_file(result), data)
    return checkpoint.summary(path)


def _files_aside(lake: Lake, table: str, path: str) -> list[str]:
    files = json.loads(gzip.decompress(lake.read_aside(table, path)))
    assert isinstance(files, list)
    return files


def _pinned(contract: Contract, lake: Lake) -> Contract:
    """A contract that declares no columns takes the ones pinned under its schema_version."""
    if contract.columns:
        return contract
    pinned = lake.properties(contract.table).get(f"schema.{contract.schema_version}")
    if not pinned:
        return contract
    columns = [Column.model_validate(c) for c in json.loads(pinned)]
    return contract.model_copy(update={"columns": columns})


def _inferred(
    contract: Contract, parts: Iterator[Part], reader: Reader | None = None
) -> tuple[Contract, Iterator[Part]]:
    """The first load of a schema_version with no columns takes the source's own (a database
    table's, from a reader with `source_columns`) or infers them from its first part (landing
    pins them)."""
    if contract.columns:
        return contract, parts
    known: list[Column] | None = getattr(reader, "source_columns", None)
    if known:
        return contract.model_copy(update={"columns": known}), parts
    first = next(parts, None)
    if first is None:
        return contract, parts
    columns = infer_columns(first, scratch())
    return contract.model_copy(update={"columns": columns}), itertools.chain([first], parts)


def with_columns(
    contract: Contract, *, root: Path, environ: Mapping[str, str] | None = None
) -> Contract:
    """`contract` with every column its source's first part has: those it declares as
    declared, the others as landing would infer them (what `headwater test` needs of a seed
    nobody has loaded yet, whose sidecar may declare some columns or none)."""
    secrets = Secrets(os.environ if environ is None else environ)
    reader = open_reader(contract.connector, root=root, state=Checkpoint(), secrets=secrets)
    bare = contract.model_copy(update={"columns": []})
    inferred, _ = _inferred(bare, reader.parts())
    declared = {c.name for c in contract.columns}
    extra = [c for c in inferred.columns if c.name not in declared]
    return contract.model_copy(update={"columns": [*contract.columns, *extra]})


def _table_properties(contract: Contract) -> dict[str, str]:
    """What the raw table records of its contract: privacy, PII tags and the schema pinned
    under the contract's schema_version (declared or inferred)."""
    columns = [c.model_dump(mode="json", exclude_defaults=True) for c in contract.columns]
    stream = contract.delivery is Delivery.STREAM
    return {
        "keep_snapshots": str(history.STREAM_KEEP if stream else history.KEEP),
        "source": contract.source,
        "schema_version": contract.schema_version,
        "privacy_level": contract.privacy_level.value,
        "owner": contract.owner or "",
        "pii": json.dumps({c.name: c.pii for c in contract.columns if c.pii}, sort_keys=True),
        f"schema.{contract.schema_version}": json.dumps(columns, sort_keys=True),
        # what a later contract may not narrow under the same schema_version (change.contracts)
        f"valid_values.{contract.schema_version}": json.dumps(
            contract.allowed_values(), sort_keys=True
        ),
    }


def _create_tables(contract: Contract, lake: Lake) -> None:
    """Create raw and quarantine tables with their declared columns before any data lands."""
    if lake.table(contract.table) is None:
        types = arrow_types([c.type for c in contract.columns])
        fields = [pa.field(c.name, t) for c, t in zip(contract.columns, types, strict=True)]
        fields += [pa.field(name, _ARROW[sql]) for name, sql in RAW_METADATA.items()]
        lake.create(contract.table, pa.schema(fields))
    if lake.table(f"{contract.table}__quarantine") is None:
        lake.create(f"{contract.table}__quarantine", QUARANTINE_SCHEMA)


def _resume(lake: Lake, table: str, newest: dict[str, Any]) -> Checkpoint:
    """Where the table's source stands: the newest commit's checkpoint, or (a table last
    written before checkpoints were whole) every commit's, folded."""
    read = lambda path: _files_aside(lake, table, path)  # noqa: E731
    stored = newest.get("checkpoint")
    if isinstance(stored, Mapping) and stored.get("version", 0) >= CHECKPOINT_VERSION:
        return Checkpoint.resume([newest], read)
    return Checkpoint.resume([s.properties for s in lake.snapshots(table)], read)


def _event_high(contract: Contract, lake: Lake, newest: dict[str, Any]) -> str | None:
    """The highest event time landed so far: kept in each commit (`event_high`), else (a
    table last written by an earlier release) the highest of every commit's."""
    if not contract.watermark or not newest:
        return None
    if "event_high" in newest:
        return newest["event_high"]  # type: ignore[no-any-return]
    highs = [s.properties.get("event_max") for s in lake.snapshots(contract.table)]
    return max((h for h in highs if h), default=None)


def _late_cutoff(contract: Contract, high: str | None) -> datetime | None:
    """Rows with event time before (highest event time landed so far - lateness) are late;
    never in a snapshot, whose every copy holds the old times again."""
    if not contract.watermark or contract.load is Load.SNAPSHOT or not high:
        return None
    _, lateness = parse_watermark(contract.watermark)
    return datetime.fromisoformat(high) - timedelta(seconds=lateness)


def _since(cursor: Any, initial: str | None, lag: str) -> Any:
    """The lower bound of an incremental read: the cursor landed so far minus the lag."""
    value = _typed_cursor(cursor if cursor is not None else initial)
    if isinstance(value, datetime):
        return value - timedelta(seconds=parse_duration(lag))
    return value


def _typed_cursor(value: Any) -> Any:
    """A committed cursor back as a value: ISO text as a datetime, numbers as they are."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def _min(a: str | None, b: str) -> str:
    return b if a is None or b < a else a


def _max(a: str | None, b: str) -> str:
    return b if a is None or b > a else a


def _before(
    deadline: float | None, parts: Iterator[pa.Table | SelfWritten], contract: Contract
) -> Iterator[pa.Table | SelfWritten]:
    """`parts`, stopping with `TimedOut` once `deadline` has passed (nothing is committed:
    the commit follows the last part)."""
    for part in parts:
        if deadline is not None and time.monotonic() > deadline:
            raise TimedOut(
                f"landing {contract.table} ran past its timeout and was stopped; nothing was "
                "committed (the next landing starts from the same checkpoint)",
                hint="set a longer `timeout:` in the contract, or headwater.yml's defaults.timeout",
            )
        yield part
