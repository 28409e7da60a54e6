"""What every connector hands to landing: parts of a source as Arrow, and its checkpoint.

A connector is opened with the state its earlier batches committed (`State`) and returns a
`Reader`: the parts it reads now, a key naming exactly what this run reads (the batch id is
made from it, so a rerun after a crash gets the same id), and the checkpoint to commit with
the batch. Records a reader cannot even split (a CSV line with the wrong field count) go to
`rejected`, to be quarantined with their location.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

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


@dataclass(frozen=True)
class State:
    """What the batches landed so far committed: the files seen and the incremental cursor
    (already moved back by the contract's lag: `since`)."""

    files: frozenset[str] = frozenset()
    since: Any = None
    cursor: Any = None

    @classmethod
    def of(cls, history: Iterable[dict[str, Any]]) -> State:
        """The state recorded in the snapshot summaries of a raw table, oldest first."""
        files: set[str] = set()
        cursor = None
        for props in history:
            checkpoint = props.get("checkpoint") or {}
            files.update(checkpoint.get("files") or [])
            if checkpoint.get("cursor") is not None:
                cursor = checkpoint["cursor"]
        return cls(frozenset(files), cursor=cursor)


class Reader(Protocol):
    """One run of one connector."""

    key: str
    rejected: Rejected

    def parts(self) -> Iterator[Part]:
        """The source's new records, streamed as parts of bounded size."""
        ...

    def checkpoint(self) -> dict[str, Any]:
        """What to commit with the batch (read after `parts` is exhausted)."""
        ...

    def describe(self) -> str:
        """What this run read, for people: "3 new files", "12 pages", "5,000 rows"."""
        ...


def with_positions(table: pa.Table | pa.RecordBatch, offset: int) -> pa.Table:
    """`table` with a RECORD column numbering its rows from `offset + 1`."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    positions = pa.array(range(offset + 1, offset + table.num_rows + 1), pa.int64())
    return table.append_column(RECORD, positions)


def cursor_text(value: Any) -> Any:
    """A cursor value as it is committed (JSON): datetimes as ISO text."""
    return value.isoformat() if isinstance(value, datetime) else value
