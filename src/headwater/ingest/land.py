"""Land new source files into `raw.<contract>`: conform to the contract, quarantine, commit.

Conforming is one SQL pass per Arrow batch (casts, required fields, unknown columns under the
evolution policy, the watermark's late flag). Records that break the contract go to
`raw.<contract>__quarantine` with their reason and location. The files landed are the
checkpoint and travel in the raw commit's snapshot summary, so a crash at any point resumes
with nothing lost or duplicated; quarantine commits first and is skipped for files it holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from headwater.contracts import Contract, Evolution
from headwater.contracts.specs import parse_watermark
from headwater.engine.duckdb import DuckDBEngine
from headwater.ingest.conform import INPUT, arrow_type, conform_query, unknown_keys_query
from headwater.ingest.files import RECORD, Rejected, SourceFile, batch_id, discover, read
from headwater.zones.lake import Lake
from headwater.zones.layout import QUARANTINE, RAW_METADATA

_ARROW = {
    "varchar": pa.string(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "boolean": pa.bool_(),
}
QUARANTINE_SCHEMA = pa.schema([(name, _ARROW[sql]) for name, sql in QUARANTINE.items()])


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
    event_min: str | None = None
    event_max: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)


def ingest(contract: Contract, *, root: Path, lake: Lake, now: datetime) -> Landed:
    """Land every file of `contract` not landed before, as one raw batch.

    Example:
        >>> ingest(contract, root=Path("shop"), lake=lake, now=now).rows   # doctest: +SKIP
        1200
    """
    table = contract.table
    quarantine = f"{table}__quarantine"
    found = discover(contract.connector, root)
    landed_keys = _checkpointed(lake, table)
    new = [f for f in found if f.key not in landed_keys]
    result = Landed(table, already_landed=len(found) - len(new))
    _create_tables(contract, lake)
    if not new:
        return result
    result.batch_id = batch_id(new)
    result.files = [f.shown for f in new]
    job = _Job(contract, result, now=now, cutoff=_late_cutoff(contract, lake))
    in_quarantine = _checkpointed(lake, quarantine)

    def commit_quarantine() -> None:
        parts = [job.quarantine_part(f) for f in new if f.key not in in_quarantine]
        lake.append(
            quarantine,
            [p for p in parts if p.num_rows],
            properties={"batch_id": result.batch_id, "files": [f.key for f in new]},
        )

    lake.append(
        table,
        job.conformed(new),
        before_commit=commit_quarantine,
        properties={
            "batch_id": result.batch_id,
            "files": [f.key for f in new],
            "rows": lambda: result.rows,
            "event_min": lambda: result.event_min,
            "event_max": lambda: result.event_max,
            "late": lambda: result.late,
            "event_ranges": job.event_ranges,
        },
    )
    return result


class _Job:
    """One landing: streams files through the conform query and keeps the counts."""

    def __init__(
        self, contract: Contract, result: Landed, *, now: datetime, cutoff: datetime | None
    ):
        self.contract = contract
        self.result = result
        self.now = now
        self.cutoff = cutoff
        self.engine = DuckDBEngine()
        self.bad: dict[str, list[pa.Table]] = {}
        self.queries: dict[tuple[object, ...], tuple[str, set[str]]] = {}
        self.hours: set[Any] = set()
        self.keys_sql = unknown_keys_query(contract).sql(dialect="duckdb")
        self.event_column = parse_watermark(contract.watermark)[0] if contract.watermark else None

    def conformed(self, files: list[SourceFile]) -> Iterator[pa.Table]:
        for file in files:
            rejected = Rejected()
            for part in read(file, self.contract.connector, rejected):
                good = self._conform(file, part)
                if good.num_rows:
                    yield good
            if rejected.rows:
                self._keep_bad(
                    file,
                    pa.Table.from_pylist(
                        [
                            {**r, "_hw_batch_id": self.result.batch_id, "_hw_ingested_at": self.now}
                            for r in rejected.rows
                        ],
                        schema=QUARANTINE_SCHEMA,
                    ),
                )

    def quarantine_part(self, file: SourceFile) -> pa.Table:
        parts = self.bad.get(file.key, [])
        return pa.concat_tables(parts) if parts else QUARANTINE_SCHEMA.empty_table()

    def _conform(self, file: SourceFile, part: pa.Table) -> pa.Table:
        columns = tuple(c for c in part.column_names if c != RECORD)
        extra_keys = tuple(self._unknown_json_keys(file, part))
        sql, used = self._query(columns, file.format, extra_keys)
        params = {
            "batch_id": self.result.batch_id,
            "now": self.now,
            "source": file.shown,
            "cutoff": self.cutoff,
        }
        self.engine.register(INPUT, part)
        try:
            out = self.engine.read(sql, {k: v for k, v in params.items() if k in used})
        finally:
            self.engine.unregister(INPUT)
        failed = pc.is_valid(out.column("_hw_reason"))
        bad = out.filter(failed)
        if bad.num_rows:
            self._keep_bad(file, bad.select(QUARANTINE_SCHEMA.names).cast(QUARANTINE_SCHEMA))
        good = out.filter(pc.invert(failed)).drop_columns(["_hw_reason", "_hw_record"])
        self._count(good)
        return good

    def _query(
        self, columns: tuple[str, ...], fmt: str, extra_keys: tuple[str, ...]
    ) -> tuple[str, set[str]]:
        """The conform SQL for this batch shape (built once per shape, not per batch)."""
        shape = (columns, fmt, extra_keys)
        if shape not in self.queries:
            query = conform_query(self.contract, list(columns), fmt, extra_keys=list(extra_keys))
            self.queries[shape] = (
                query.sql(dialect="duckdb"),
                {p.name for p in query.find_all(exp.Placeholder)},
            )
        return self.queries[shape]

    def _unknown_json_keys(self, file: SourceFile, part: pa.Table) -> list[str]:
        if file.format != "jsonl" or self.contract.evolution is not Evolution.EVOLVE:
            return []
        self.engine.register(INPUT, part)
        try:
            rows = self.engine.rows(self.keys_sql)
        finally:
            self.engine.unregister(INPUT)
        return sorted(r[0] for r in rows)

    def _keep_bad(self, file: SourceFile, bad: pa.Table) -> None:
        self.bad.setdefault(file.key, []).append(bad)
        self.result.quarantined += bad.num_rows
        for reason in bad.column("_hw_reason").to_pylist():
            first = reason.split(";")[0]
            self.result.reasons[first] = self.result.reasons.get(first, 0) + 1

    def _count(self, good: pa.Table) -> None:
        self.result.rows += good.num_rows
        self.result.late += pc.sum(good.column("_hw_late")).as_py() or 0
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


def _create_tables(contract: Contract, lake: Lake) -> None:
    """Create raw and quarantine tables with their declared columns before any data lands."""
    if lake.table(contract.table) is None:
        fields = [pa.field(c.name, arrow_type(c.type)) for c in contract.columns]
        fields += [pa.field(name, _ARROW[sql]) for name, sql in RAW_METADATA.items()]
        lake.create(contract.table, pa.schema(fields))
    if lake.table(f"{contract.table}__quarantine") is None:
        lake.create(f"{contract.table}__quarantine", QUARANTINE_SCHEMA)


def _checkpointed(lake: Lake, table: str) -> set[str]:
    """File keys recorded in the snapshot summaries of `table`: the connector checkpoint."""
    keys: set[str] = set()
    for snap in lake.snapshots(table):
        keys.update(snap.properties.get("files") or [])
    return keys


def _late_cutoff(contract: Contract, lake: Lake) -> datetime | None:
    """Rows with event time before (highest event time landed so far - lateness) are late."""
    if not contract.watermark:
        return None
    highs = [
        s.properties["event_max"]
        for s in lake.snapshots(contract.table)
        if s.properties.get("event_max")
    ]
    if not highs:
        return None
    _, lateness = parse_watermark(contract.watermark)
    return datetime.fromisoformat(max(highs)) - timedelta(seconds=lateness)


def _min(a: str | None, b: str) -> str:
    return b if a is None or b < a else a


def _max(a: str | None, b: str) -> str:
    return b if a is None or b > a else a
