"""The files connector: CSV / JSON-lines / Parquet files, local or on object storage (fsspec).

A file is new when its key is: path + size + mtime locally, path + ETag + size on S3 or GCS.
CSV fields arrive as text and JSON lines as whole lines, so that conforming to the contract
(casts, required fields, unknown keys) happens in one SQL pass in `land`, where a value that
breaks its type is quarantined instead of failing the file. Files are read in blocks, never
whole, so a file larger than memory lands with bounded memory.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from headwater.contracts import FilesConnector
from headwater.contracts.load import shown_path
from headwater.contracts.secrets import Secrets
from headwater.errors import Location, SourceError, TransientSourceError
from headwater.ingest.source import LINE, Part, Rejected, State, with_positions

# Arrow's CSV reader holds some tens of blocks in flight: small blocks keep memory flat, and
# blocks are gathered into parts of PART_BYTES so each conform pass has enough rows
BLOCK_BYTES = 1 << 20
PART_BYTES = 8 << 20
# object storage holds a buffer (and its copies in the HTTP client) beside each part: smaller
# parts keep the whole under the same bound as local files
REMOTE_PART_BYTES = 4 << 20
REMOTE_BUFFER_BYTES = 16 << 20  # one range request each (fewer round trips to S3 / GCS)
_EXTENSIONS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass(frozen=True)
class SourceFile:
    """A file found by the connector; `key` changes when the file's content may have changed."""

    path: str
    shown: str
    format: str
    size: int
    version: str  # mtime in ns locally, the ETag on object storage

    @property
    def key(self) -> str:
        return f"{self.shown}|{self.size}|{self.version}"


class FilesReader:
    """The files of a connector not landed before (`State.files`), read block by block."""

    def __init__(
        self, connector: FilesConnector, *, root: Path, state: State, secrets: Secrets
    ) -> None:
        self.connector = connector
        self.rejected = Rejected()
        self._fs = _filesystem(connector, secrets)
        found = discover(connector, root, self._fs)
        self.new = [f for f in found if f.key not in state.files]
        self.already_landed = len(found) - len(self.new)
        self.key = "\n".join(sorted(f.key for f in self.new))

    @property
    def local(self) -> bool:
        """Whether the files are on this machine (not on object storage)."""
        return self._fs is None

    def parts(self, files: list[SourceFile] | None = None) -> Iterator[Part]:
        """The new files (or those of them in `files`), in parts of at most PART_BYTES."""
        for file in self.new if files is None else files:
            pending: list[pa.Table] = []
            size = 0
            for table in read(file, self.connector, self.rejected, self._fs):
                pending.append(table)
                size += table.nbytes
                if size >= (PART_BYTES if self._fs is None else REMOTE_PART_BYTES):
                    yield Part(pa.concat_tables(pending), file.format, file.shown)
                    pending, size = [], 0
            if pending:
                yield Part(pa.concat_tables(pending), file.format, file.shown)

    def checkpoint(self) -> dict[str, Any]:
        return {"files": [f.key for f in self.new]}

    def describe(self) -> str:
        landed = f" ({self.already_landed} already landed)" if self.already_landed else ""
        return f"{len(self.new)} new file{'s' * (len(self.new) != 1)}{landed}"


def discover(connector: FilesConnector, root: Path, fs: Any = None) -> list[SourceFile]:
    """Every file the connector's path or glob matches, in a stable order."""
    if fs is not None:
        return _discover_remote(connector, fs)
    pattern = connector.path if Path(connector.path).is_absolute() else str(root / connector.path)
    found = []
    for name in sorted(glob.glob(pattern, recursive=True)):
        path = Path(name)
        if not path.is_file():
            continue
        stat = path.stat()
        found.append(
            SourceFile(
                name,
                shown_path(path, root),
                _format(connector, name),
                stat.st_size,
                str(stat.st_mtime_ns),
            )
        )
    return found


def read(
    file: SourceFile, connector: FilesConnector, rejected: Rejected, fs: Any = None
) -> Iterator[pa.Table]:
    """Stream one file as Arrow tables with a `_hw_position` column."""
    readers = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}
    offset = 0
    try:
        with _open(file, fs) as handle:
            for batch in readers[file.format](handle, file, connector, rejected):
                yield with_positions(batch, offset)
                offset += batch.num_rows
    except (OSError, pa.ArrowInvalid) as err:
        raise SourceError(
            f"cannot read this {file.format} file: {str(err).splitlines()[0]}",
            where=Location(file.shown),
            hint="fix or remove the file, then run again; nothing of this batch was landed",
        ) from err


def batch_id(key: str) -> str:
    """A deterministic id for landing exactly what `key` names (same key → same id)."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _filesystem(connector: FilesConnector, secrets: Secrets) -> Any:
    """An fsspec filesystem for s3:// and gs:// paths; None for local files."""
    if "://" not in connector.path:
        return None
    import fsspec  # only object storage needs it

    protocol = connector.path.split("://", 1)[0]
    where = f"connector.path {connector.path}"
    options = _expand(connector.storage_options, secrets, "connector.storage_options")
    if connector.endpoint_url:
        options["endpoint_url"] = secrets.expand(connector.endpoint_url, where=where)
    # a fresh listing every run: fsspec would otherwise reuse a cached one and miss new objects
    options.update(skip_instance_cache=True, use_listings_cache=False)
    try:
        return fsspec.filesystem(protocol, **options)
    except (ImportError, ValueError, TypeError) as err:
        raise SourceError(
            f"cannot open {protocol}:// storage: {secrets.scrub(str(err))}",
            hint="install s3fs for s3://, gcsfs for gs://, and check connector.storage_options",
        ) from None


def _expand(options: dict[str, Any], secrets: Secrets, where: str) -> dict[str, Any]:
    """`options` with `${VAR}` expanded in every string, nested mappings included."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, str):
            out[key] = secrets.expand(value, where=f"{where}.{key}")
        elif isinstance(value, dict):
            out[key] = _expand(value, secrets, f"{where}.{key}")
        else:
            out[key] = value
    return out


def _discover_remote(connector: FilesConnector, fs: Any) -> list[SourceFile]:
    protocol, pattern = connector.path.split("://", 1)
    try:
        found = fs.glob(pattern, detail=True)
    except Exception as err:  # botocore, aiohttp and gcsfs errors share no base class
        raise TransientSourceError(
            f"cannot list {connector.path}: {type(err).__name__}: {str(err).splitlines()[0]}",
            hint="check the bucket, the endpoint and the credentials",
        ) from None
    files = []
    for name, info in sorted(found.items()):
        if info.get("type") != "file":
            continue
        version = str(info.get("ETag") or info.get("etag") or info.get("md5Hash") or "")
        if not version:
            version = str(info.get("LastModified") or info.get("mtime") or "")
        shown = f"{protocol}://{name}"
        files.append(
            SourceFile(name, shown, _format(connector, name), int(info["size"]), version.strip('"'))
        )
    return files


def _open(file: SourceFile, fs: Any) -> IO[bytes] | _Local:
    if fs is None:
        return _Local(file.path)
    # one range request per buffer, and no other copy of it: memory stays flat however
    # large the object is
    raw = fs.open(file.path, "rb", cache_type="none")
    return io.BufferedReader(raw, buffer_size=REMOTE_BUFFER_BYTES)


class _Local:
    """A local path, handed to Arrow's own (faster) file reader."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self) -> str:
        return self.path

    def __exit__(self, *exc: object) -> None:
        return None


def _read_csv(
    handle: Any, file: SourceFile, connector: FilesConnector, rejected: Rejected
) -> Iterator[pa.RecordBatch]:
    names = _csv_header(handle, connector)

    def on_invalid(row: pacsv.InvalidRow) -> str:
        where = f"{file.shown}:{row.number}" if row.number is not None else file.shown
        rejected.add(
            where, f"expected {row.expected_columns} fields, found {row.actual_columns}", row.text
        )
        return "skip"

    reader = pacsv.open_csv(
        handle,
        read_options=pacsv.ReadOptions(
            column_names=names,
            skip_rows=1 if connector.header else 0,
            block_size=BLOCK_BYTES,
            use_threads=False,
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=connector.delimiter, invalid_row_handler=on_invalid
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=True
        ),
    )
    yield from reader


def _csv_header(handle: Any, connector: FilesConnector) -> list[str]:
    if isinstance(handle, str):
        with open(handle, newline="", encoding="utf-8", errors="replace") as text:
            first = next(csv.reader(text, delimiter=connector.delimiter), None)
    else:
        line = handle.readline()
        handle.seek(0)
        text_line = io.StringIO(line.decode("utf-8", errors="replace"))
        first = next(csv.reader(text_line, delimiter=connector.delimiter), None)
    if not first:
        return []
    if connector.header:
        return [name.strip() for name in first]
    return [f"column{i}" for i in range(len(first))]


def _read_jsonl(
    handle: Any, file: SourceFile, connector: FilesConnector, rejected: Rejected
) -> Iterator[pa.RecordBatch]:
    # one column of whole lines: the delimiter is a control character valid JSON never holds raw
    def on_invalid(row: pacsv.InvalidRow) -> str:
        where = f"{file.shown}:{row.number}" if row.number is not None else file.shown
        rejected.add(where, "malformed JSON", row.text)
        return "skip"

    reader = pacsv.open_csv(
        handle,
        read_options=pacsv.ReadOptions(
            column_names=[LINE], block_size=BLOCK_BYTES, use_threads=False
        ),
        parse_options=pacsv.ParseOptions(
            delimiter="\x01",
            quote_char=False,
            escape_char=False,
            double_quote=False,
            invalid_row_handler=on_invalid,
        ),
        convert_options=pacsv.ConvertOptions(column_types={LINE: pa.string()}),
    )
    yield from reader


def _read_parquet(
    handle: Any, file: SourceFile, connector: FilesConnector, rejected: Rejected
) -> Iterator[pa.RecordBatch]:
    yield from pq.ParquetFile(handle).iter_batches(batch_size=128_000)


def _format(connector: FilesConnector, path: str) -> str:
    if connector.format:
        return connector.format
    fmt = _EXTENSIONS.get(Path(path).suffix.lower())
    if fmt is None:
        raise SourceError(
            f"cannot tell the format of {Path(path).name}",
            hint="set `format: csv | jsonl | parquet` on the connector",
        )
    return fmt
