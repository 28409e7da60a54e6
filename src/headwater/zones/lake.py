"""The lake: Apache Iceberg tables (the raw zone) through pyiceberg's SQL catalog.

A landed batch is ONE Iceberg commit whose snapshot summary carries the connector checkpoint,
so data and checkpoint are atomic. Engines read a table through the file list pyiceberg plans.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pyarrow as pa
import sqlalchemy as sa

from headwater.errors import StoreError
from headwater.zones import erasure, history
from headwater.zones.datafiles import DataFiles, SelfWritten, align
from headwater.zones.orphans import (
    Orphan,
    collect,
    local_path,
    unreferenced_metadata,
    untidy,
    writing,
)

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.table import Table
    from pyiceberg.types import IcebergType

# pyiceberg is imported when a table is first loaded or written (it costs ~0.4 s to import):
# what a table holds now (`version`) is read from the catalog's own table without it

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

PREFIX = "hw."
# pyiceberg's SQL catalog table, read directly for the cheap `version` check
_ICEBERG_TABLES = sa.table(
    "iceberg_tables",
    sa.column("catalog_name"),
    sa.column("table_namespace"),
    sa.column("table_name"),
    sa.column("metadata_location"),
)


@dataclass(frozen=True)
class Snapshot:
    """One commit of a lake table, with the headwater properties of its summary."""

    snapshot_id: int
    timestamp_ms: int
    properties: dict[str, Any]

    @property
    def batch_id(self) -> str | None:
        return self.properties.get("batch_id")


@dataclass(frozen=True)
class BatchStats:
    """What the manifests say about one landed batch's data files, without reading them:
    rows, nulls per column, and exact bounds of numeric, date and timestamp columns (or
    bounds the values lie within, when not `bounds_exact`)."""

    rows: int
    nulls: dict[str, int]
    lower: dict[str, Any]
    upper: dict[str, Any]
    bounds_exact: bool = True


@dataclass(frozen=True)
class Erased:
    """What erasing rows from one table did: `rows` removed, the data `files` that held them
    (out of the table's content, still in older snapshots until `expire_erased`), its
    `overwrites` (commits whose manifests still list those files as deleted, with their
    column bounds: they expire with the older snapshots) and the `snapshot_id` that holds
    the table without the rows (None: nothing was committed)."""

    table: str
    rows: int
    files: tuple[str, ...] = ()
    overwrites: tuple[int, ...] = ()
    snapshot_id: int | None = None


# pyiceberg retries an append that lost a race on top of the winner's commit; a landing must not
# (its checkpoint follows the snapshot it read: two landings of the same files or offsets would
# both commit), so a lost race is a `Conflict` and the landing reads the new state again
NO_RETRY = {"commit.retry.num-retries": "0"}
# what every lake table is made with: no replay; manifests merged once 32 pile up (a stream
# adds one a commit, and planning a scan reads them all) into ones of 256 KB at most; and
# metadata files beyond the newest 20 deleted (each commit writes one, a stream thousands a day)
WRITE_PROPERTIES = {
    **NO_RETRY,
    "commit.manifest-merge.enabled": "true",
    "commit.manifest.min-count-to-merge": "32",
    # a merged manifest past 256 KB (about 500 data files) is never merged again, so a merge
    # costs the same on day 30 as on day 1 (by default manifests grow to 8 MB, rewritten whole)
    "commit.manifest.target-size-bytes": str(256 << 10),
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
}


class Conflict(StoreError):
    """Another writer committed to the table between reading it and committing: nothing was
    committed; trying again (from the new state) may succeed."""

    retryable = True


class LakeFiles(list[str]):
    """The data files of one snapshot of a lake table — a list of local paths, as DuckDB reads
    them — that also names the `table` and `snapshot` they make up: an engine that reads
    Iceberg itself (Spark) reads that snapshot of that table instead of the files."""

    def __init__(self, paths: list[str], table: str, snapshot: int | None) -> None:
        super().__init__(paths)
        self.table = table
        self.snapshot = snapshot


class Lake:
    """Iceberg tables addressed as `zone.name` (e.g. `raw.orders`)."""

    def __init__(
        self,
        catalog_url: str,
        location: str,
        root: Path,
        *,
        io: Mapping[str, str] | None = None,
        filesystem: Mapping[str, Any] | None = None,
    ):
        """`io`: the Iceberg FileIO properties of an object store (s3.endpoint, …);
        `filesystem`: the same store's fsspec options, for engines that read the lake's files
        through fsspec (`Lake.filesystems`)."""
        warehouse = location if "://" in location else (root / location).resolve().as_uri()
        if warehouse.startswith("file://"):
            Path(local_path(warehouse)).mkdir(parents=True, exist_ok=True)
        self._warehouse, self._url = warehouse, catalog_url
        self.io = dict(io or {})
        self._filesystem = dict(filesystem or {})
        self._iceberg: SqlCatalog | None = None
        self._sql: sa.Engine | None = None
        self._opening = threading.Lock()
        # loaded tables by name, with the metadata file they were loaded from
        self._loaded: dict[str, tuple[str, Table]] = {}

    @property
    def _catalog(self) -> SqlCatalog:
        """pyiceberg's SQL catalog of the lake, made on first use."""
        with self._opening:
            if self._iceberg is None:
                from pyiceberg.catalog.sql import SqlCatalog

                self._iceberg = SqlCatalog(
                    "headwater", uri=self._url, warehouse=self._warehouse, **self.io
                )
            return self._iceberg

    def prepare(self) -> None:
        """Create the Iceberg catalog's tables in the catalog database if they are missing:
        an engine that shares them (Spark's JDBC catalog) expects them there."""
        self._catalog  # noqa: B018  (made on first use)

    def _engine(self) -> sa.Engine:
        """A database connection pool for the cheap catalog reads: pyiceberg's own once it is
        loaded, else one of ours (no pyiceberg import)."""
        with self._opening:
            if self._iceberg is not None:
                return self._iceberg.engine
            if self._sql is None:
                self._sql = sa.create_engine(self._url)
            return self._sql

    def table(self, name: str) -> Table | None:
        """The table as of its latest commit; loaded again only when a commit replaced its
        metadata file (one indexed catalog query tells), not on every call."""
        location = self.version(name)
        if location is None:
            return None
        loaded = self._loaded.get(name)
        if loaded is not None and loaded[0] == location:
            return loaded[1]
        from pyiceberg.exceptions import NoSuchTableError

        try:
            table = self._catalog.load_table(name)
        except NoSuchTableError:
            return None
        self._loaded[name] = (table.metadata_location, table)
        return table

    def append(
        self,
        name: str,
        parts: Iterable[pa.Table | SelfWritten],
        *,
        properties: dict[str, Any],
        before_commit: Callable[[], None] | None = None,
        table_properties: Callable[[], dict[str, str]] | None = None,
        base: Callable[[dict[str, Any]], None] | None = None,
    ) -> Snapshot:
        """Append `parts` and record `properties` in ONE commit (one snapshot); the table
        grows new columns. A part is Arrow, or `SelfWritten` data files.

        Parts stream into Parquet data files, one row group per part, so memory stays bounded
        by a part however much is appended; nothing is visible until the single commit at the
        end. A property may be a callable, read after the last part (e.g. a row count).
        `table_properties` (read after the last part) are set on the table in the same
        commit (key prefixed `hw.`). `before_commit` runs after the data files are written
        and before the commit (to commit a dependent table first).

        `base` is called with the properties of the snapshot the commit will follow, before
        any part is read: a writer that must follow a given state (a stream's offsets) checks
        it there, and raises to abort. The commit succeeds only if no other commit came in
        between; if one did, `Conflict` is raised and nothing is committed.
        """
        table = self._ensure(name)
        if any(table.properties.get(k) != v for k, v in WRITE_PROPERTIES.items()):
            # a table made by an earlier release (e.g. with pyiceberg's replay on): set first,
            # in its own commit (a commit reads them from the metadata it starts from)
            with table.transaction() as tx:
                tx.set_properties(WRITE_PROPERTIES)
            table = self._ensure(name)
        if base is not None:
            base(_properties(table.current_snapshot()))
        from pyiceberg.exceptions import CommitFailedException

        try:
            landed = self._append(table, name, parts, properties, before_commit, table_properties)
        except CommitFailedException as err:
            raise Conflict(
                f"{name} was committed to by another writer meanwhile ({err})",
                hint="nothing was committed; land the batch again",
            ) from err
        self.expire(name)
        return landed

    def _append(
        self,
        table: Table,
        name: str,
        parts: Iterable[pa.Table | SelfWritten],
        properties: dict[str, Any],
        before_commit: Callable[[], None] | None,
        table_properties: Callable[[], dict[str, str]] | None,
    ) -> Snapshot:
        with writing(self.folder), table.transaction() as tx:
            with DataFiles(table, tx) as files:
                for part in parts:
                    if isinstance(part, SelfWritten):
                        files.grow(part.schema)
                        files.add(part)
                    elif part.num_rows:
                        files.grow(part.schema)
                        files.write(align(part, files.arrow_schema))
            summary = {
                PREFIX + k: _encode(v() if callable(v) else v) for k, v in properties.items()
            }
            # what the commit adds to the lake, for the task's metrics
            summary[PREFIX + "bytes"] = _encode(sum(f.file_size_in_bytes for f in files.written))
            wanted: dict[str, str] = {}
            if table_properties is not None:
                wanted |= {PREFIX + k: v for k, v in table_properties().items()}
            changed = {k: v for k, v in wanted.items() if table.properties.get(k) != v}
            if changed:
                tx.set_properties(changed)
            with tx.update_snapshot(snapshot_properties=summary).merge_append() as append:
                for data_file in files.written:
                    append.append_data_file(data_file)
            if before_commit is not None:
                before_commit()
        return self.recent(name)[-1]

    def replace(
        self,
        name: str,
        parts: Iterable[pa.Table | SelfWritten],
        *,
        schema: pa.Schema,
        properties: dict[str, Any],
    ) -> Snapshot:
        """Make `parts` the table's whole content in ONE commit (an Iceberg overwrite: every
        data file of the current snapshot out, the parts' in), with `properties` in its
        summary; created with `schema` if new, grown by its new columns.

        Earlier snapshots stay readable by id (a data product's older states, which
        releases still serve): nothing here expires them."""
        table = self._ensure(name, schema)
        current = table.current_snapshot()
        old = [t.file for t in table.scan().plan_files()] if current is not None else []
        from pyiceberg.exceptions import CommitFailedException

        try:
            with writing(self.folder), table.transaction() as tx:
                with DataFiles(table, tx) as files:
                    files.grow(schema)
                    for part in parts:
                        if isinstance(part, SelfWritten):
                            files.add(part)
                        elif part.num_rows:
                            files.write(align(part, files.arrow_schema))
                summary = {PREFIX + k: _encode(v) for k, v in properties.items()}
                with tx.update_snapshot(snapshot_properties=summary).overwrite() as overwrite:
                    for data_file in old:
                        overwrite.delete_data_file(data_file)
                    for data_file in files.written:
                        overwrite.append_data_file(data_file)
        except CommitFailedException as err:
            raise Conflict(
                f"{name} was committed to by another writer meanwhile ({err})",
                hint="nothing was committed; publish again",
            ) from err
        return self.recent(name)[-1]

    def erase(
        self,
        name: str,
        doomed: erasure.Doomed,
        *,
        properties: dict[str, Any],
        where: tuple[str, Any] | None = None,
        snapshot_id: int | None = None,
        dry_run: bool = False,
        afresh: bool = False,
    ) -> Erased:
        """Make the content of snapshot `snapshot_id` (default: the current one) less the rows
        `doomed` picks the table's content, rewriting only the data files that hold them;
        `where` = (column, value) lets the manifests skip files that cannot hold a doomed row.

        Two commits: an overwrite (its summary: the snapshot's own properties but those of a
        batch, plus `properties`), then an empty append whose manifests no longer list the
        old files as deleted (such an entry keeps a file's column bounds: a value of the
        rows). Older snapshots keep the old files for time travel until `expire_erased`.
        `dry_run` counts the rows and commits nothing; `afresh` commits even when no row is
        doomed (a snapshot that names erased files as deleted is made again without them).

        Raises:
            Conflict: another writer committed meanwhile (nothing was committed).
        """
        table = self.table(name)
        if table is None:
            return Erased(name, 0)
        if snapshot_id is None:
            source = table.current_snapshot()
        else:
            source = table.snapshot_by_id(snapshot_id)
        if source is None:
            return Erased(name, 0)
        plan = erasure.plan(table, doomed, snapshot_id=source.snapshot_id, where=where)
        files = tuple(f.file_path for f in plan.rewritten)
        if dry_run or not (plan.rows or afresh):
            return Erased(name, plan.rows, files)
        carried = {
            k: v for k, v in _properties(source).items() if k not in erasure.BATCH_PROPERTIES
        }
        summary = {PREFIX + k: _encode(v) for k, v in (carried | properties).items()}
        current = table.current_snapshot()
        present = [t.file for t in table.scan().plan_files()] if current is not None else []
        from pyiceberg.exceptions import CommitFailedException

        try:
            with writing(self.folder), table.transaction() as tx:
                with DataFiles(table, tx) as written:
                    for part in plan.remaining:
                        if part.num_rows:
                            written.write(align(part, written.arrow_schema))
                kept = {f.file_path for f in plan.untouched}
                with tx.update_snapshot(snapshot_properties=summary).overwrite() as overwrite:
                    for data_file in present:
                        if data_file.file_path not in kept:
                            overwrite.delete_data_file(data_file)
                    now = {f.file_path for f in present}
                    for data_file in [*plan.untouched, *written.written]:
                        if data_file.file_path not in now:
                            overwrite.append_data_file(data_file)
                with tx.update_snapshot(snapshot_properties=summary).fast_append():
                    pass  # the tidy commit: the same content, no deleted entries
        except CommitFailedException as err:
            raise Conflict(
                f"{name} was committed to by another writer meanwhile ({err})",
                hint="nothing was erased from it; run the erasure again",
            ) from err
        # the table object holds what this transaction committed (another writer's commit
        # since would be the newest snapshot of the catalog's table, not of this object)
        tidy = table.current_snapshot()
        assert tidy is not None and tidy.parent_snapshot_id is not None
        return Erased(name, plan.rows, files, (tidy.parent_snapshot_id,), tidy.snapshot_id)

    def holding(self, name: str, files: list[str]) -> list[int]:
        """The snapshots of the table, the current one included, that still name any of
        `files` (data files an erasure took out), oldest first."""
        table = self.table(name)
        if table is None:
            return []
        return [s.snapshot_id for s in erasure.holding(table, files, current=True)]

    def expire_erased(self, name: str, files: list[str], overwrites: list[int]) -> int:
        """Expire every snapshot of the table that still holds any of `files` (data files an
        erasure took out of its content), then delete those files and the manifests and
        manifest lists no snapshot names any more; returns the snapshots expired. Their
        summaries stay in the batch index (`zones.history`), as any expired snapshot's do."""
        table = self.table(name)
        if table is None:
            return 0
        found = erasure.holding(table, files, overwrites)
        if found:
            expired = [
                history.Expired(
                    s.snapshot_id, s.sequence_number or 0, s.timestamp_ms, _properties(s)
                )
                for s in found
            ]
            history.record(self._engine(), name, expired)
            ids = [s.snapshot_id for s in found]
            from pyiceberg.exceptions import CommitFailedException

            try:
                table.maintenance.expire_snapshots().by_ids(ids).commit()
            except CommitFailedException as err:
                raise Conflict(
                    f"{name} was committed to by another writer meanwhile ({err})",
                    hint="nothing was expired of it; run `headwater forget --expire` again",
                ) from err
            table = self.table(name)
        if table is None:
            return len(found)
        still = erasure.referenced(table, files)
        for path in files:
            if path not in still:
                self._delete(table, path)
        folder = self.folder
        if folder is not None:
            for stale in unreferenced_metadata(table, folder, grace_s=0.0):
                stale.unlink(missing_ok=True)
        return len(found)

    def _delete(self, table: Table, path: str) -> None:
        """Delete one data file of `table`; never one outside this lake's own folder (a
        project copied with `cp -r` names the original's files)."""
        folder = self.folder
        if folder is not None and not Path(local_path(path)).resolve().is_relative_to(
            folder.resolve()
        ):
            return
        with contextlib.suppress(OSError, FileNotFoundError):
            table.io.delete(path)

    def snapshot_files(self, name: str, snapshot_id: int) -> list[str]:
        """Paths (local, or the object store's URIs) of the data files of one snapshot.

        Raises:
            StoreError: the table or that snapshot is gone (expired or dropped).
        """
        table = self.table(name)
        if table is None or table.snapshot_by_id(snapshot_id) is None:
            raise StoreError(
                f"{name} holds no snapshot {snapshot_id} any more",
                hint="it was expired or dropped (headwater gc); read a newer release",
            )
        return [
            local_path(t.file.file_path) for t in table.scan(snapshot_id=snapshot_id).plan_files()
        ]

    def drop(self, name: str) -> None:
        """Drop the table and its files (a local lake's folder goes too)."""
        table = self.table(name)
        if table is None:
            return
        location = local_path(table.location())
        self._catalog.drop_table(name)
        self._loaded.pop(name, None)
        folder = self.folder
        if folder is not None and Path(location).resolve().is_relative_to(folder.resolve()):
            import shutil

            shutil.rmtree(location, ignore_errors=True)

    def write_aside(self, name: str, file: str, data: bytes) -> str:
        """Write `data` as `file` beside the table's metadata, for a commit to name in its
        summary; returns the path to record (relative to the table). Every metadata file
        copies every snapshot's summary, so what grows with the table is kept here instead.
        The same `file` written again (a rerun of the same batch) replaces it."""
        table = self._ensure(name)
        path = f"metadata/{file}"
        with table.io.new_output(f"{table.location()}/{path}").create(overwrite=True) as out:
            out.write(data)
        return path

    def read_aside(self, name: str, path: str) -> bytes:
        """What `write_aside` wrote at `path` (raises StoreError when it is gone)."""
        table = self._ensure(name)
        try:
            with table.io.new_input(f"{table.location()}/{path}").open() as stream:
                return stream.read()
        except (OSError, FileNotFoundError) as err:
            raise StoreError(
                f"{name}: the file its newest commit names, {path}, cannot be read: {err}",
                hint="the lake's folder was changed by hand; restore it from a backup",
            ) from err

    def remove_aside(self, name: str, path: str) -> None:
        """Delete a file written aside that no commit to come needs (a missing one is fine).

        Never one outside this lake's own folder: a project copied with `cp -r` still names
        the original's files (Iceberg metadata holds absolute paths), which the original's
        newest commit may need."""
        table = self._ensure(name)
        target = f"{table.location()}/{path}"
        folder = self.folder
        if folder is not None and not Path(local_path(target)).resolve().is_relative_to(
            folder.resolve()
        ):
            return
        with contextlib.suppress(OSError, FileNotFoundError):
            table.io.delete(target)

    def create(self, name: str, schema: pa.Schema) -> Table:
        """Create the table if it does not exist yet (so readers see its columns before data)."""
        table = self._ensure(name, schema)
        missing = [f for f in schema if f.name not in table.schema().column_names]
        if missing:
            with table.update_schema() as update:
                update.union_by_name(pa.schema(missing))
            table = self._catalog.load_table(name)
        return table

    def snapshots(self, name: str) -> list[Snapshot]:
        """Every commit of the table, oldest first: those expired from Iceberg (kept in the
        batch index, `zones.history`) and those it still holds."""
        live = self.recent(name)
        ids = {s.snapshot_id for s in live}
        old = [
            Snapshot(e.snapshot_id, e.timestamp_ms, e.properties)
            for e in history.expired(self._engine(), name)
            if e.snapshot_id not in ids
        ]
        return old + live

    def recent(self, name: str) -> list[Snapshot]:
        """The commits Iceberg still holds (the newest ones), oldest first."""
        table = self.table(name)
        if table is None:
            return []
        return [
            Snapshot(snap.snapshot_id, snap.timestamp_ms, _properties(snap))
            for snap in table.snapshots()
        ]

    def expire(self, name: str, *, keep: int | None = None) -> int:
        """Move the table's older snapshots from Iceberg to the batch index once it holds
        twice `keep` (default: the table's `hw.keep_snapshots`, else `history.KEEP`); returns
        how many moved. Another writer committing meanwhile makes it a no-op (the next
        commit tries again)."""
        table = self.table(name)
        if table is None:
            return 0
        keep = keep or int(table.properties.get(history.KEEP_PROPERTY, history.KEEP))
        snaps = table.snapshots()
        if len(snaps) <= 2 * keep:
            return 0
        current_id = table.metadata.current_snapshot_id
        cutoff = snaps[-keep].timestamp_ms  # snapshots strictly older than the keep-th newest
        old = [s for s in snaps if s.timestamp_ms < cutoff and s.snapshot_id != current_id]
        if not old:
            return 0
        expired = [
            history.Expired(s.snapshot_id, s.sequence_number or 0, s.timestamp_ms, _properties(s))
            for s in old
        ]
        history.record(self._engine(), name, expired)
        from pyiceberg.exceptions import CommitFailedException

        try:
            # by time, not by id: pyiceberg copies the whole metadata for each id it is given
            expiry = table.maintenance.expire_snapshots()
            expiry.older_than(_EPOCH + timedelta(milliseconds=cutoff)).commit()
        except CommitFailedException:
            return 0
        folder = self.folder
        table = self.table(name)
        if folder is not None and table is not None:
            for path in unreferenced_metadata(table, folder, grace_s=history.METADATA_GRACE_S):
                path.unlink(missing_ok=True)
        return len(old)

    def current_properties(self, name: str) -> dict[str, Any]:
        """What the table's newest commit recorded (its summary properties); {} for a table
        without commits."""
        table = self.table(name)
        return {} if table is None else _properties(table.current_snapshot())

    def version(self, name: str) -> str | None:
        """The table's current metadata file: it changes with every commit, and reading it
        from the catalog is one indexed query (no Iceberg metadata is loaded)."""
        namespace, table = name.split(".")
        query = sa.select(_ICEBERG_TABLES.c.metadata_location).where(
            _ICEBERG_TABLES.c.catalog_name == "headwater",
            _ICEBERG_TABLES.c.table_namespace == namespace,
            _ICEBERG_TABLES.c.table_name == table,
        )
        try:
            with self._engine().connect() as conn:
                found = conn.execute(query).scalar()
        except sa.exc.DBAPIError:
            if self._iceberg is not None:
                raise
            # a lake no table was ever written to: its catalog table is made on first write
            with self._engine().connect() as conn:
                if sa.inspect(conn).has_table(_ICEBERG_TABLES.name):
                    raise
            return None
        return str(found) if found else None

    @property
    def warehouse(self) -> str:
        """The lake's location as a URL (file:///… or s3://…): where engines find its tables."""
        return self._warehouse

    def reach(self) -> None:
        """Check that a lake on object storage can be reached and its bucket exists (a local
        lake's folder was made when the lake was). One request.

        Raises:
            StoreError: the store does not answer, refuses the keys, or has no such bucket.
        """
        if self.local:
            return
        from pyiceberg.io.pyarrow import PyArrowFileIO

        scheme, rest = self._warehouse.split("://", 1)
        bucket = rest.split("/", 1)[0]
        endpoint = self.io.get("s3.endpoint")
        at = f" at {endpoint}" if endpoint else ""
        try:
            filesystem = PyArrowFileIO(self.io).fs_by_scheme(scheme.lower(), bucket)
            found = filesystem.get_file_info(bucket)
        except (OSError, ValueError) as err:
            raise StoreError(
                f"cannot reach the lake {self._warehouse}{at}: {err}",
                hint="is the object store up? check lake_storage (endpoint_url, key, secret, "
                "region) in headwater.yml, or the AWS_* variables",
            ) from None
        if found.type.name == "NotFound":
            raise StoreError(
                f"the lake's bucket {bucket!r}{at} does not exist",
                hint=f"make the bucket first (aws s3 mb {scheme}://{bucket}), or point `lake:` "
                "at one that exists",
            )

    @property
    def filesystems(self) -> dict[str, dict[str, Any]]:
        """The fsspec filesystems an engine needs to read the lake's files, by protocol (none
        for a local lake)."""
        if self.local:
            return {}
        return {self._warehouse.split("://", 1)[0].lower(): dict(self._filesystem)}

    @property
    def place(self) -> str | Path:
        """Where the lake's files are, as an engine's sandbox names it: the local folder, or
        the object store's prefix (s3://bucket/lake)."""
        return self.folder or self._warehouse

    @property
    def folder(self) -> Path | None:
        """The lake's local folder (None for object storage)."""
        return Path(local_path(self._warehouse)) if self.local else None

    def table_names(self) -> list[str]:
        """Every table of the lake, as `zone.name`."""
        names = []
        for namespace in self._catalog.list_namespaces():
            names += [".".join(t) for t in self._catalog.list_tables(namespace)]
        return sorted(names)

    def gc(
        self,
        names: list[str] | None = None,
        *,
        grace_s: float = 0.0,
        dry_run: bool = False,
        only_untidy: bool = False,
    ) -> list[Orphan]:
        """Remove data files no snapshot references (a killed run's), of the tables `names`
        (default: all), modified over `grace_s` ago and never one a live writer may still
        commit (see `zones.orphans`). `only_untidy`: look only at tables whose data folder
        holds more files than they committed (cheap enough for every run). Local lakes only.

        Example:
            >>> [o.path for o in lake.gc(dry_run=True)]   # doctest: +SKIP
            ['/shop/.headwater/lake/raw/orders/data/00000-0-….parquet']
        """
        folder = self.folder
        if folder is None:
            return []
        tables = {n: t for n in names or self.table_names() if (t := self.table(n)) is not None}
        if only_untidy:
            tables = {n: t for n, t in tables.items() if untidy(t)}
        if not tables:
            return []
        return collect(tables, folder, grace_s=grace_s, dry_run=dry_run, reload=self.table)

    @property
    def local(self) -> bool:
        """Whether data files live on this machine (so DuckDB can write them itself)."""
        return self._warehouse.startswith("file://")

    def files(self, name: str) -> LakeFiles:
        """Local paths of the data files of the table's current snapshot."""
        table = self.table(name)
        current = None if table is None else table.current_snapshot()
        if table is None or current is None:
            return LakeFiles([], name, None)
        paths = [local_path(task.file.file_path) for task in table.scan().plan_files()]
        return LakeFiles(paths, name, current.snapshot_id)

    def batch_stats(self, name: str, batch_id: str) -> BatchStats | None:
        """Statistics of the data files one batch added (found by their `_hw_batch_id`
        bounds), summed from the manifests; None if a file lacks them."""
        table = self.table(name)
        if table is None or table.current_snapshot() is None:
            return None
        fields = {f.field_id: f for f in table.schema().fields}
        rows, nulls = 0, dict.fromkeys((f.name for f in fields.values()), 0)
        lower: dict[str, Any] = {}
        upper: dict[str, Any] = {}
        from pyiceberg.expressions import EqualTo

        exact = _exact_bounds()
        # pyiceberg's stubs describe the model's fields, not its positional constructor
        batch = EqualTo("_hw_batch_id", batch_id)  # type: ignore[call-arg, arg-type]
        tasks = table.scan(row_filter=batch).plan_files()
        if not tasks:
            return None
        for task in tasks:
            data = task.file
            if data.null_value_counts is None or data.record_count is None:
                return None
            rows += data.record_count
            for field_id, field in fields.items():
                if field_id in data.null_value_counts:
                    if field.name in nulls:
                        nulls[field.name] += data.null_value_counts[field_id]
                elif field.field_type.is_primitive and field_id not in (data.value_counts or {}):
                    # a column the file does not have (the table grew after it was written)
                    # is NULL in every row of it
                    if field.name in nulls:
                        nulls[field.name] += data.record_count
                else:
                    nulls.pop(field.name, None)  # unknown for this file: unknown for the batch
                if not isinstance(field.field_type, exact):
                    continue
                for bounds, out, pick in (
                    (data.lower_bounds, lower, min),
                    (data.upper_bounds, upper, max),
                ):
                    raw = (bounds or {}).get(field_id)
                    if raw is None:
                        continue
                    value = _bound(field.field_type, raw)
                    out[field.name] = (
                        value if field.name not in out else pick(out[field.name], value)
                    )
        return BatchStats(rows, nulls, lower, upper)

    def properties(self, name: str) -> dict[str, str]:
        """The table's headwater properties (`headwater.` prefix removed)."""
        table = self.table(name)
        if table is None:
            return {}
        return {k[len(PREFIX) :]: v for k, v in table.properties.items() if k.startswith(PREFIX)}

    def schema(self, name: str) -> pa.Schema | None:
        table = self.table(name)
        return table.schema().as_arrow() if table is not None else None

    def row_count(self, name: str) -> int:
        """Rows in the table's current snapshot, from its summary (no scan)."""
        table = self.table(name)
        snap = table.current_snapshot() if table is not None else None
        summary = snap.summary.additional_properties if snap and snap.summary else {}
        return int(summary.get("total-records", 0))

    def current_snapshot_id(self, name: str) -> int | None:
        """The id of the table's current snapshot (None: no commit yet). A local lake reads it
        from the current metadata file (a few KB of JSON, well under a millisecond) instead of
        loading the table through pyiceberg (tens of milliseconds)."""
        location = self.version(name)
        if location is not None and self.local:
            path = Path(local_path(location))
            try:
                raw = path.read_bytes()
                if path.name.endswith(".gz.metadata.json"):
                    raw = gzip.decompress(raw)
                found = json.loads(raw).get("current-snapshot-id")
            except (OSError, ValueError):
                found = None  # unreadable here: ask pyiceberg, which says why
            else:
                return None if found in (None, -1) else int(found)
        table = self.table(name)
        snap = table.current_snapshot() if table is not None else None
        return snap.snapshot_id if snap else None

    def _ensure(self, name: str, schema: pa.Schema | None = None) -> Table:
        """The table, created (with `schema`, in one commit) if it does not exist yet."""
        namespace = name.split(".")[0]
        self._catalog.create_namespace_if_not_exists(namespace)
        table = self.table(name)
        if table is None:
            table = self._catalog.create_table_if_not_exists(
                name, schema=schema or pa.schema([]), properties=WRITE_PROPERTIES
            )
        return table


# properties that are text: summaries written before every value was JSON hold them bare, and
# a bare batch id such as 60789286803551e8 must not come back as the number 6.08e+21
_TEXT = {
    "batch_id",
    "schema_version",
    "load",
    "privacy_level",
    "event_min",
    "event_max",
    "landed_at",
}


def _properties(snapshot: Any) -> dict[str, Any]:
    """headwater's properties of a pyiceberg snapshot's summary (None: no snapshot)."""
    summary = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
    return {
        k[len(PREFIX) :]: _decode(v, text=k[len(PREFIX) :] in _TEXT)
        for k, v in summary.items()
        if k.startswith(PREFIX)
    }


def _encode(value: Any) -> str:
    return json.dumps(value)


def _decode(value: str, *, text: bool = False) -> Any:
    try:
        decoded = json.loads(value)
    except ValueError:
        return value  # written bare by an earlier release
    if text and decoded is not None and not isinstance(decoded, str):
        return value
    return decoded


def _exact_bounds() -> tuple[type[IcebergType], ...]:
    """The Iceberg types whose manifest bounds are exact (string bounds are truncated)."""
    from pyiceberg.types import (
        DateType,
        DecimalType,
        DoubleType,
        FloatType,
        IntegerType,
        LongType,
        TimestampType,
        TimestamptzType,
    )

    return (
        IntegerType,
        LongType,
        FloatType,
        DoubleType,
        DecimalType,
        DateType,
        TimestampType,
        TimestamptzType,
    )


def _bound(kind: IcebergType, raw: bytes) -> Any:
    """A manifest bound as a Python value: timestamps as UTC datetimes, dates as dates."""
    from pyiceberg.conversions import from_bytes
    from pyiceberg.types import DateType, PrimitiveType, TimestampType, TimestamptzType

    value = from_bytes(cast(PrimitiveType, kind), raw)  # bounds are kept for primitives only
    if isinstance(kind, TimestampType | TimestamptzType):
        return _EPOCH + timedelta(microseconds=int(value))
    if isinstance(kind, DateType):
        return date(1970, 1, 1) + timedelta(days=int(value))
    return value
