"""Erasing rows from a lake table: which data files of a snapshot hold rows to erase and
what remains of them, and which snapshots still hold erased files once that is committed.

Iceberg never changes a data file: erasing rewrites each file that holds a doomed row
without it (copy-on-write) and commits the table's content without the old files, so every
other row keeps its exact value and every file without a doomed row stays as it is. The old
files stay readable through the snapshots made before (time travel) until those expire;
`holding` names exactly those snapshots, so expiry removes them and nothing else (a data
product's other data states, which releases still serve, are snapshots that never held an
erased file).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot

# what says which rows of one data file's rows (in the table's current schema) to erase:
# true to erase; false or null to keep
Doomed = Callable[[pa.Table], pa.Array | pa.ChunkedArray]
# snapshot properties that describe one landed batch: a commit that only erases carries the
# others on (the checkpoint a connector resumes from, the highest event time landed, a data
# product's model and data key), never these (it landed nothing)
BATCH_PROPERTIES = frozenset(
    {"batch_id", "rows", "landed_at", "event_min", "event_max", "event_ranges", "late"}
)


@dataclass
class Rewrite:
    """How a snapshot's content looks without the doomed rows."""

    rows: int = 0  # doomed rows found
    untouched: list[DataFile] = field(default_factory=list)  # files without any of them
    rewritten: list[DataFile] = field(default_factory=list)  # files that held some
    remaining: list[pa.Table] = field(default_factory=list)  # the other rows of those files


def plan(
    table: Table, doomed: Doomed, *, snapshot_id: int, where: tuple[str, Any] | None = None
) -> Rewrite:
    """Read the files of snapshot `snapshot_id` that may hold doomed rows (those whose column
    bounds allow `where` = (column, value), when given: the manifests prune the rest unread)
    and split them into files to keep and rows to keep.

    Each candidate file is read whole into memory, as pyiceberg's own copy-on-write delete
    does; a file is a few hundred MB at most (`zones.lake.FILE_BYTES`)."""
    from pyiceberg.expressions import AlwaysTrue, EqualTo
    from pyiceberg.io.pyarrow import ArrowScan

    every = table.scan(snapshot_id=snapshot_id).plan_files()
    prune: Any = AlwaysTrue()
    if where is not None:  # pyiceberg's stubs describe the model's fields, not its constructor
        prune = EqualTo(*where)  # type: ignore[call-arg, arg-type]
    candidates = table.scan(snapshot_id=snapshot_id, row_filter=prune).plan_files()
    reader = ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue())
    out = Rewrite()
    hit: set[str] = set()
    for task in candidates:
        rows = reader.to_table([task])
        mask = pc.fill_null(doomed(rows), False)
        found = int(pc.sum(mask).as_py() or 0)
        if not found:
            continue
        out.rows += found
        hit.add(task.file.file_path)
        out.rewritten.append(task.file)
        out.remaining.append(rows.filter(pc.invert(mask)))
    out.untouched = [t.file for t in every if t.file.file_path not in hit]
    return out


def holding(
    table: Table, files: Collection[str], overwrites: Collection[int] = (), *, current: bool = False
) -> list[Snapshot]:
    """The snapshots of `table` that still hold any of `files` (erased data files) — in their
    content, or as deleted entries of a manifest, which keep the file's column bounds — and
    the erasure's `overwrites` (whose deleted entries name the files they replaced); the
    current snapshot only if `current` (an erasure's last commit holds none of them).

    A table rewritten whole time and again (a data product: `Lake.replace`) carries its
    deleted entries on from commit to commit, so a later data state that never held an
    erased row may still name an erased file: such a state must be committed afresh."""
    newest = table.current_snapshot()
    current_id = newest.snapshot_id if newest is not None and not current else None
    wanted = set(files)
    found = []
    seen: dict[str, bool] = {}  # manifest path → whether it names an erased file
    for snapshot in table.snapshots():
        if snapshot.snapshot_id == current_id:
            continue
        if snapshot.snapshot_id in overwrites or any(
            _names(manifest, table, wanted, seen) for manifest in snapshot.manifests(table.io)
        ):
            found.append(snapshot)
    return found


def referenced(table: Table, files: Collection[str]) -> set[str]:
    """Those of `files` a snapshot of `table` still names."""
    wanted = set(files)
    out: set[str] = set()
    for snapshot in table.snapshots():
        for manifest in snapshot.manifests(table.io):
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                if entry.data_file.file_path in wanted:
                    out.add(entry.data_file.file_path)
    return out


def _names(manifest: Any, table: Table, files: set[str], seen: dict[str, bool]) -> bool:
    path = manifest.manifest_path
    if path not in seen:
        entries = manifest.fetch_manifest_entry(table.io, discard_deleted=False)
        seen[path] = any(e.data_file.file_path in files for e in entries)
    return seen[path]
