"""The memory source: the test double of a source, registered for a test under kind `memory`.

It holds records by partition, each record at an offset, as a stream does (Kafka, a change
log), and commits the next offset of each partition in its typed checkpoint. Landing treats
it as any other source: it has no direct lane, and resumes from the newest raw commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from headwater.ingest.source import Checkpoint, Part, Rejected, with_positions

KIND = "memory"


@dataclass
class MemoryConnector:
    """`partitions[name]` are the records of one partition, at offsets 0, 1, …; `fail_after`
    raises after that many parts (a source dying mid-read)."""

    partitions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    part_rows: int = 2
    fail_after: int | None = None
    opened: list[Checkpoint] = field(default_factory=list)  # the checkpoint of each run
    kind: str = KIND


class MemoryReader:
    """One run: every record past the committed offset of its partition."""

    direct = None

    def __init__(self, connector: MemoryConnector, *, state: Checkpoint, **_: Any) -> None:
        connector.opened.append(state)
        self.connector = connector
        self.rejected = Rejected()
        self.warnings: list[str] = []
        self.already_landed = sum(state.offsets.values())
        self._state = state
        self._next = dict(state.offsets)
        self.key = ",".join(
            f"{p}@{state.offsets.get(p, 0)}-{len(records)}"
            for p, records in sorted(connector.partitions.items())
            if len(records) > state.offsets.get(p, 0)
        )

    def parts(self) -> Iterator[Part]:
        made = 0
        for name, records in sorted(self.connector.partitions.items()):
            start = self._state.offsets.get(name, 0)
            for at in range(start, len(records), self.connector.part_rows):
                if self.connector.fail_after is not None and made >= self.connector.fail_after:
                    raise ConnectionError(f"partition {name} went away at offset {at}")
                chunk = records[at : at + self.connector.part_rows]
                yield Part(with_positions(pa.Table.from_pylist(chunk), at), "arrow", name)
                made += 1
                self._next[name] = at + len(chunk)

    def checkpoint(self) -> Checkpoint:
        return replace(self._state, offsets=self._next)

    def describe(self) -> str:
        return f"{sum(self._next.values()) - self.already_landed} records"
