"""What every connector hands to landing: parts of a source as Arrow, and its checkpoint.

A source is opened at the checkpoint its earlier batches committed (`Checkpoint`) and returns a
`Reader`: the parts it reads now, a key naming exactly what this run reads (the batch id is
made from it, so a rerun after a crash gets the same id), and the typed checkpoint to commit
with the batch. Records a reader cannot even split (a CSV line with the wrong field count) go to
`rejected`, to be quarantined with their location.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa

LINE = "_hw_line"  # the one column of a JSON part: one JSON record per row, as text
RECORD = "_hw_position"  # 1-based position of the record within its origin
ORIGIN = "_hw_origin"  # optional: where each row came from, when a part spans several origins
JSON = "jsonl"  # the format of parts made of LINE


@dataclass(frozen=True)
class Part:
    """A slice of a source: `LINE` + `RECORD` (JSON), or one column per field + `RECORD`
    (CSV text, Parquet/Arrow typed), and where it came from."""

    data: pa.Table
    format: str
    origin: str
    unit: str = "record"  # what RECORD counts, as `_hw_source` shows it ("offset": a stream's)


@dataclass
class Rejected:
    """Records the reader itself could not split into fields (wrong column count, bad line,
    bytes that are not text) and files it could not read at all, each once."""

    rows: list[dict[str, str]] = field(default_factory=list)
    tables: list[pa.Table] = field(default_factory=list)  # _hw_source, _hw_reason, _hw_record
    _seen: set[tuple[str, str]] = field(default_factory=set)

    def add(self, source: str, reason: str, text: str) -> None:
        if (source, text) in self._seen:
            return  # read again (a file retried with larger blocks)
        self._seen.add((source, text))
        self.rows.append({"_hw_source": source, "_hw_reason": reason, "_hw_record": text})

    def add_table(self, table: pa.Table) -> None:
        if table.num_rows:
            self.tables.append(table)

    @property
    def count(self) -> int:
        return len(self.rows) + sum(int(t.num_rows) for t in self.tables)


CHECKPOINT_VERSION = 2  # summaries before it held only their own batch's files (folded)


@dataclass(frozen=True)
class Checkpoint:
    """Where a source stands after the batches landed so far: all a run resumes from.

    Each raw commit records the whole checkpoint in its snapshot summary, so a run resumes
    from the newest snapshot alone. `files` are the keys of the files landed (of the latest
    copy, for `load: snapshot`); they can be many, so the lake keeps them beside the commit
    (`Lake.write_aside`) and the summary names that file. `offsets` (a stream's partitions)
    and `lsn` (a change log's position) are the room streams and CDC sources commit in.
    `since` is not stored: it is the cursor moved back by the contract's lag, for this run.
    """

    files: frozenset[str] = frozenset()
    cursor: Any = None  # as committed: JSON, datetimes as ISO text
    offsets: Mapping[str, int] = field(default_factory=dict)
    lsn: str | None = None
    since: Any = None

    def stored(self) -> tuple[Any, ...]:
        """What the summary records: two checkpoints with the same are the same position."""
        return self.files, self.cursor, dict(self.offsets), self.lsn

    def summary(self, files_path: str | None) -> dict[str, Any]:
        """The summary's `checkpoint` (`files_path`: where `files` were written aside)."""
        out: dict[str, Any] = {"version": CHECKPOINT_VERSION, "cursor": self.cursor}
        if self.files:
            out["files"] = {"count": len(self.files), "path": files_path}
        if self.offsets:
            out["offsets"] = dict(self.offsets)
        if self.lsn is not None:
            out["lsn"] = self.lsn
        return out

    @classmethod
    def resume(
        cls, history: Sequence[Mapping[str, Any]], read_files: Callable[[str], list[str]]
    ) -> Checkpoint:
        """The checkpoint of a raw table's snapshot summaries, oldest first: the newest one's
        (`read_files` reads the files it wrote aside). A table last written before
        checkpoints were whole folds every summary, once: its next commit is whole."""
        if not history:
            return cls()
        newest = history[-1].get("checkpoint")
        if not isinstance(newest, Mapping) or newest.get("version", 0) < CHECKPOINT_VERSION:
            return cls._folded(history, read_files)
        return cls._whole(newest, read_files)

    @classmethod
    def _whole(
        cls, stored: Mapping[str, Any], read_files: Callable[[str], list[str]]
    ) -> Checkpoint:
        aside = stored.get("files") or {}
        return cls(
            files=frozenset(read_files(aside["path"])) if aside.get("path") else frozenset(),
            cursor=stored.get("cursor"),
            offsets=dict(stored.get("offsets") or {}),
            lsn=stored.get("lsn"),
        )

    @classmethod
    def _folded(
        cls, history: Sequence[Mapping[str, Any]], read_files: Callable[[str], list[str]]
    ) -> Checkpoint:
        """Version-1 summaries each held the files of their own batch and its cursor; a
        whole checkpoint among them (written before a downgrade) stands for all before it."""
        out = cls()
        for props in history:
            stored = props.get("checkpoint")
            if not isinstance(stored, Mapping):
                continue
            if stored.get("version", 0) >= CHECKPOINT_VERSION:
                out = cls._whole(stored, read_files)
                continue
            files = out.files | frozenset(stored.get("files") or [])
            cursor = stored["cursor"] if stored.get("cursor") is not None else out.cursor
            out = replace(out, files=files, cursor=cursor)
        return out


class FileSource(Protocol):
    """The direct-lane capability: a source whose new records are whole files DuckDB can
    read itself (ingest/direct.py). A reader declares it by its `direct` attribute."""

    connector: Any
    new: list[Any]  # the files to land (files.SourceFile)

    @property
    def local(self) -> bool:
        """Whether the files are on this machine."""
        ...

    def parts(self, files: list[Any] | None = None) -> Iterator[Part]:
        """The records of the new files (or of those in `files`), in parts."""
        ...


class Reader(Protocol):
    """One run of one source, opened at its checkpoint: what it has that raw does not yet.

    `key` names exactly what this run reads (the batch id is made from it, so a rerun after a
    crash gets the same id); "" when there is nothing to read.
    """

    key: str
    rejected: Rejected
    warnings: list[str]  # what a user should know though nothing failed
    already_landed: int  # files (or records) found that an earlier batch landed

    @property
    def direct(self) -> FileSource | None:
        """The direct-lane capability, or None: a source without it is read part by part."""
        ...

    def parts(self) -> Iterator[Part]:
        """The source's new records, streamed as parts of bounded size."""
        ...

    def checkpoint(self) -> Checkpoint:
        """Where the source stands once every part read lands (read after `parts` is
        exhausted); landing sets the cursor from the data it landed."""
        ...

    def describe(self) -> str:
        """What this run read, for people: "3 new files", "12 pages", "5,000 rows"."""
        ...


@runtime_checkable
class Acknowledged(Protocol):
    """A reader whose source learns what landed (a stream's consumer): `base` sees the
    properties of the raw snapshot the commit will follow and raises if the reader did not
    read from there (another worker landed meanwhile); `committed` runs once the batch is
    committed (to acknowledge it to the source: Kafka offsets, a replication slot's LSN)."""

    def base(self, properties: Mapping[str, Any]) -> None: ...

    def committed(self) -> None: ...


def with_positions(table: pa.Table | pa.RecordBatch, offset: int) -> pa.Table:
    """`table` with a RECORD column numbering its rows from `offset + 1`."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    positions = pa.array(range(offset + 1, offset + table.num_rows + 1), pa.int64())
    return table.append_column(RECORD, positions)


def cursor_text(value: Any) -> Any:
    """A cursor value as it is committed (JSON): datetimes as ISO text."""
    return value.isoformat() if isinstance(value, datetime) else value


@runtime_checkable
class StreamBatch(Reader, Acknowledged, Protocol):
    """A stream follower's batch: a reader of what it read, acknowledged once landed."""

    @property
    def redelivered(self) -> int:
        """Messages read again that the lake already held (skipped)."""
        ...

    def produced(self) -> list[float]:
        """When each record was produced at the source (epoch seconds; latency is measured
        from there)."""
        ...
