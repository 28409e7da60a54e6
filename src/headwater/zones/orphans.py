"""Orphan files: Parquet files in a table's data folder that no snapshot references (and
metadata files no snapshot names once snapshots expire).

A run killed after writing data files and before committing them leaves them behind. `collect`
removes them, but never a file a live writer may still commit: every `Lake.append` holds a
writer lock (`<lake>/.hw-writers/*.lock`, flock'd while it appends and released by the kernel
when its process dies, SIGKILL included), and a file modified after the start of any live
writer is kept. The order of the steps is what makes it safe: files are listed first, then
the live writers, then the files each table's snapshots reference, so a file committed
meanwhile is seen as referenced, and one a writer still holds is seen as young.
"""

from __future__ import annotations

import fcntl
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

LOCKS = ".hw-writers"
_SLACK_S = 2.0  # file times vs the clock a writer read when it started


@dataclass(frozen=True)
class Orphan:
    """A data file no snapshot of `table` references."""

    table: str
    path: str
    bytes: int


@contextmanager
def writing(folder: Path | None) -> Iterator[None]:
    """Hold a writer lock in the lake `folder` (None: a remote lake, nothing to hold)."""
    if folder is None:
        yield
        return
    locks = folder / LOCKS
    locks.mkdir(parents=True, exist_ok=True)  # private as the lake is (see Stores)
    name = f"{os.getpid()}-{uuid.uuid4().hex}"
    # locked before it has its name: a collector never sees a lock file not yet held
    pending = locks / f"{name}.tmp"
    fd = os.open(pending, os.O_CREAT | os.O_WRONLY, 0o600)
    held = locks / f"{name}.lock"
    try:
        # a filesystem without locks: the file alone marks a writer (seen as live)
        with suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, repr(time.time()).encode())
        os.rename(pending, held)
        yield
    finally:
        held.unlink(missing_ok=True)
        pending.unlink(missing_ok=True)
        os.close(fd)


def oldest_live_writer(folder: Path) -> float | None:
    """When the oldest live writer of the lake started (None: no live writer); the locks
    of writers that died are removed."""
    starts = []
    for lock in (folder / LOCKS).glob("*.lock"):
        try:
            fd = os.open(lock, os.O_RDONLY)
        except FileNotFoundError:
            continue  # its writer just finished
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held (or no locks here): a live writer, to be safe
                starts.append(float(os.read(fd, 64) or 0))
                continue
            lock.unlink(missing_ok=True)  # its writer died without removing it
        finally:
            os.close(fd)
    return min(starts) if starts else None


def data_files(table: Any) -> list[Path]:
    """The Parquet files in a table's local data folder."""
    folder = Path(local_path(table.location())) / "data"
    return sorted(folder.rglob("*.parquet")) if folder.is_dir() else []


def untidy(table: Any) -> bool:
    """Whether a table's data folder holds more files than its snapshots have added (a
    cheap test: one listing, no manifest read; raw tables are only appended to)."""
    snapshot = table.current_snapshot()
    summary = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
    committed = int(summary.get("total-data-files", 0)) + int(summary.get("total-delete-files", 0))
    return len(data_files(table)) > committed


def collect(
    tables: dict[str, Any], folder: Path, *, grace_s: float, dry_run: bool, reload: Any
) -> list[Orphan]:
    """Remove (unless `dry_run`) the data files of `tables` (name → Table) that no snapshot
    references, last modified before `grace_s` ago and before any live writer started.
    `reload(name)` gives a table as of its latest commit."""
    listed = {name: [(p, p.stat()) for p in data_files(t)] for name, t in tables.items()}
    cutoff = _cutoff(folder, grace_s)
    found = []
    for name, files in listed.items():
        if not files:
            continue
        referenced = _referenced(reload(name))
        for path, stat in files:
            if str(path) in referenced or stat.st_mtime >= cutoff:
                continue
            found.append(Orphan(name, str(path), stat.st_size))
            if not dry_run:
                path.unlink(missing_ok=True)
    return found


def _referenced(table: Any) -> set[str]:
    """Every data file any snapshot of `table` references (time travel reads them all)."""
    paths: set[str] = set()
    seen: set[str] = set()
    for snapshot in table.snapshots() if table is not None else []:
        for manifest in snapshot.manifests(table.io):
            if manifest.manifest_path in seen:
                continue
            seen.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                paths.add(local_path(entry.data_file.file_path))
    return paths


def unreferenced_metadata(table: Any, lake: Path, *, grace_s: float) -> list[Path]:
    """Manifest lists and manifests in a local table's metadata folder that no snapshot of it
    names (those of expired snapshots, manifests merged into others), modified over `grace_s`
    ago and before any live writer of the `lake` folder started (one may be about to commit
    the files it just wrote)."""
    folder = Path(local_path(table.location())) / "metadata"
    if not folder.is_dir():
        return []
    listed = [(p, p.stat().st_mtime) for p in folder.glob("*.avro")]
    cutoff = _cutoff(lake, grace_s)
    referenced: set[str] = set()
    for snapshot in table.snapshots():
        referenced.add(local_path(snapshot.manifest_list))
        referenced.update(local_path(m.manifest_path) for m in snapshot.manifests(table.io))
    return [p for p, mtime in listed if str(p) not in referenced and mtime < cutoff]


def _cutoff(lake: Path, grace_s: float) -> float:
    """Files modified from this time on may be a live writer's: never removed."""
    cutoff = time.time() - grace_s
    oldest = oldest_live_writer(lake)
    return cutoff if oldest is None else min(cutoff, oldest - _SLACK_S)


def local_path(uri: str) -> str:
    return unquote(urlparse(uri).path) if uri.startswith("file://") else uri
