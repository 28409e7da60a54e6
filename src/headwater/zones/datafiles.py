"""Parquet data files of one Iceberg commit, written by the lake (`DataFiles`) or by a part
that writes its own (`SelfWritten`, e.g. DuckDB's COPY)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from headwater.zones.orphans import local_path

if TYPE_CHECKING:
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import Table

FILE_BYTES = 512 << 20  # Arrow bytes written to one data file before the next is started


@dataclass(frozen=True)
class SelfWritten:
    """A part that writes its own Parquet data files (e.g. DuckDB's COPY) instead of handing
    Arrow to the lake.

    The lake first grows the table by `schema`, then calls `write(table_schema, new_path)`:
    `table_schema` is the table's Arrow schema with each field's Iceberg id in its metadata
    (`PARQUET:field_id`), `new_path()` gives a fresh local path in the table's data folder.
    `write` returns the paths it wrote, each a Parquet file in `table_schema`; they join the
    same commit as the other parts. What it did not write it must not leave behind.
    """

    schema: pa.Schema
    write: Callable[[pa.Schema, Callable[[], str]], list[str]]


class DataFiles:
    """Parquet data files of one commit, written part by part (a row group each) and rolled
    over at FILE_BYTES or when the table's schema grows.

    A part is written on a background thread while the caller makes the next one (Parquet
    encoding and the caller's DuckDB queries both release the GIL); one write at a time.
    """

    def __init__(self, table: Table, tx: Any) -> None:
        self.table = table
        self.tx = tx
        self.written: list[DataFile] = []
        self._writer: Any = None
        self._path = ""
        self._schema: Any = None
        self._bytes = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hw-lake-write")
        self._pending: Future[None] | None = None
        self._metadata: Any = None
        self._arrow: pa.Schema | None = None

    @property
    def metadata(self) -> Any:
        """The transaction's table metadata, read once and again only after the schema grew
        (pyiceberg deep-copies the whole metadata, every snapshot in it, on each read)."""
        if self._metadata is None:
            self._metadata = self.tx.table_metadata
        return self._metadata

    @property
    def arrow_schema(self) -> pa.Schema:
        if self._arrow is None:
            self._arrow = self.metadata.schema().as_arrow()
        return self._arrow

    def grow(self, schema: pa.Schema) -> None:
        """Add the columns of `schema` the table lacks (in this transaction)."""
        known = set(self.metadata.schema().column_names)
        missing = [f for f in schema if f.name not in known]
        if missing:
            self.tx.update_schema().union_by_name(pa.schema(missing)).commit()
            self._metadata = self._arrow = None

    def __enter__(self) -> DataFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._wait()
            if exc[0] is None:
                self._close()
        finally:
            self._pool.shutdown(wait=True)

    def write(self, part: pa.Table) -> None:
        from pyiceberg.io.pyarrow import ParquetFormatWriter
        from pyiceberg.table.locations import load_location_provider

        self._wait()
        schema = self.metadata.schema()
        if self._writer is not None and (schema != self._schema or self._bytes >= FILE_BYTES):
            self._close()
        if self._writer is None:
            metadata = self.metadata
            locations = load_location_provider(metadata.location, metadata.properties)
            self._path = locations.new_data_location(f"{uuid.uuid4()}.parquet")
            self._writer = ParquetFormatWriter(
                self.table.io.new_output(self._path), schema, metadata.properties
            )
            self._schema = schema
            self._bytes = 0
        self._pending = self._pool.submit(self._writer.write, part)
        self._bytes += part.nbytes

    def add(self, part: SelfWritten) -> None:
        """Let `part` write its files into the table's data folder, and keep them."""
        from pyiceberg.io.pyarrow import parquet_file_to_data_file, schema_to_pyarrow
        from pyiceberg.table.locations import load_location_provider

        metadata = self.metadata
        locations = load_location_provider(metadata.location, metadata.properties)
        uris: dict[str, str] = {}

        def new_path() -> str:
            uri = locations.new_data_location(f"{uuid.uuid4()}.parquet")
            local = local_path(uri)
            if local == uri:
                raise ValueError(f"self-written data files need a local lake, not {uri}")
            Path(local).parent.mkdir(parents=True, exist_ok=True)
            uris[local] = uri
            return local

        for path in part.write(schema_to_pyarrow(metadata.schema()), new_path):
            self.written.append(parquet_file_to_data_file(self.table.io, metadata, uris[path]))

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _close(self) -> None:
        from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
        from pyiceberg.typedef import Record

        self._wait()
        if self._writer is None:
            return
        stats = self._writer.close()
        metadata = self.metadata
        self.written.append(
            DataFile.from_args(
                content=DataFileContent.DATA,
                file_path=self._path,
                file_format=FileFormat.PARQUET,
                partition=Record(),
                file_size_in_bytes=len(self.table.io.new_input(self._path)),
                sort_order_id=None,
                spec_id=metadata.default_spec_id,
                equality_ids=None,
                key_metadata=None,
                **stats.to_serialized_dict(),
            )
        )
        self._writer = None


def align(part: pa.Table, schema: pa.Schema) -> pa.Table:
    """Order columns as the table has them; add nulls for columns this part lacks."""
    columns = [
        part.column(f.name).cast(f.type)
        if f.name in part.column_names
        else pa.nulls(part.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)
