"""The files connector: CSV / JSON-lines / Parquet files, local or on object storage (fsspec).

A file is new when its key is: path + size + mtime locally, path + ETag + size on S3 or GCS.
CSV fields arrive as text and JSON lines as whole lines, so that conforming to the contract
(casts, required fields, unknown keys) happens in one SQL pass in `land`, where a value that
breaks its type is quarantined instead of failing the file. Files are read in blocks, never
whole, so a file larger than memory lands with bounded memory.
"""

from __future__ import annotations

import glob
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from headwater.contracts import FilesConnector
from headwater.contracts.load import shown_path
from headwater.contracts.secrets import Secrets
from headwater.errors import DataError, Location, SourceError, TransientSourceError
from headwater.ingest.source import LINE, RECORD, Checkpoint, Part, Rejected, with_positions
from headwater.ingest.streams import as_text, check_columns, header, opened, text_format

# Arrow's CSV reader holds some tens of blocks in flight: small blocks keep memory flat, and
# blocks are gathered into parts of PART_BYTES so each conform pass has enough rows
BLOCK_BYTES = 1 << 20
PART_BYTES = 8 << 20
# object storage holds a buffer (and its copies in the HTTP client) beside each part: smaller
# parts keep the whole under the same bound as local files
REMOTE_PART_BYTES = 4 << 20
# a record larger than a block is read again with blocks up to this size
MAX_BLOCK_BYTES = 1 << 29
_STRADDLING = "straddles two block boundaries"
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
    """The files of a connector not landed before (`Checkpoint.files`), read block by block.

    A file that cannot be read (not CSV / JSON lines / Parquet, a broken header, a corrupt
    or truncated file) is not an error of the batch: it goes to `rejected` as one record
    naming the file and why, and the rest lands. It is recorded as seen like any other, so
    it is not read again until it changes (its key does).
    """

    def __init__(
        self,
        connector: FilesConnector,
        *,
        root: Path,
        state: Checkpoint,
        secrets: Secrets,
        columns: Sequence[str] = (),
        whole: bool = False,
    ) -> None:
        self.connector = connector
        self.columns = tuple(columns)  # the contract's declared columns (a CSV header names some)
        self.rejected = Rejected()
        self.warnings: list[str] = []
        self.whole = whole
        self._fs = _filesystem(connector, secrets)
        found = discover(connector, root, self._fs, warnings=self.warnings)
        self.new = [f for f in found if f.key not in state.files]
        if whole:  # a full copy: every file again when one changed, appeared or went away
            self.new = found if {f.key for f in found} != state.files else []
        else:
            self._warn_changed(state)
        self.already_landed = len(found) - len(self.new)
        self.key = "\n".join(sorted(f.key for f in self.new))
        # a full copy is its files alone; appended files add to those landed before
        self._landed = frozenset(f.key for f in found) if whole else state.files
        self.direct: FilesReader | None = self  # DuckDB can read the files itself

    def _warn_changed(self, state: Checkpoint) -> None:
        """Append mode lands a changed file's every record again: say so, once per file."""
        landed = {key.rsplit("|", 2)[0] for key in state.files}
        for file in self.new:
            if file.shown in landed:
                self.warnings.append(
                    f"{file.shown} changed after it landed: all its records land again "
                    "(load: append); if the file is a full copy of its source, set "
                    "load: snapshot (or load: merge with a primary_key) in the contract"
                )

    @property
    def local(self) -> bool:
        """Whether the files are on this machine (not on object storage)."""
        return self._fs is None

    def parts(self, files: list[SourceFile] | None = None) -> Iterator[Part]:
        """The new files (or those of them in `files`), in parts of at most PART_BYTES."""
        for file in self.new if files is None else files:
            yield from self._parts_of(file)

    def _parts_of(self, file: SourceFile) -> Iterator[Part]:
        pending: list[pa.Table] = []
        size = yielded = 0
        limit = PART_BYTES if self._fs is None else REMOTE_PART_BYTES
        try:
            for table in read(file, self.connector, self.rejected, self._fs, columns=self.columns):
                pending.append(table)
                size += table.nbytes
                if size >= limit:
                    part = pa.concat_tables(pending)
                    pending, size, yielded = [], 0, yielded + part.num_rows
                    yield Part(part, file.format, file.shown)
        except (SourceError, DataError) as err:  # unreadable, or its header unusable
            # what was already handed on lands; the rest of the file is one quarantined record
            landed = f" (its first {yielded:,} records landed)" if yielded else ""
            self.rejected.add(file.shown, err.render() + landed, f"<whole file, {file.size} bytes>")
            pending = []
        if pending:
            part = pa.concat_tables(pending)
            yielded += part.num_rows
            yield Part(part, file.format, file.shown)
        if file.size == 0:
            self.warnings.append(f"{file.shown} is empty (0 bytes): nothing to land")

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(files=self._landed | {f.key for f in self.new})

    def describe(self) -> str:
        if self.whole:
            files = f"{len(self.new)} file{'s' * (len(self.new) != 1)}"
            return f"a new snapshot of {files}" if self.new else "snapshot unchanged"
        landed = f" ({self.already_landed} already landed)" if self.already_landed else ""
        return f"{len(self.new)} new file{'s' * (len(self.new) != 1)}{landed}"


def discover(
    connector: FilesConnector, root: Path, fs: Any = None, *, warnings: list[str] | None = None
) -> list[SourceFile]:
    """Every file the connector's path or glob matches, in a stable order; what a user should
    know of the match (nothing matched, a folder, a broken link) goes to `warnings`."""
    notes: list[str] = [] if warnings is None else warnings
    if fs is not None:
        found = _discover_remote(connector, fs)
        if not found:
            notes.append(f"connector.path {connector.path} matches no file")
        return found
    pattern = connector.path if Path(connector.path).is_absolute() else str(root / connector.path)
    if Path(pattern).is_dir():
        notes.append(
            f"connector.path {connector.path} is a folder; name the files in it, e.g. "
            f"{connector.path.rstrip('/')}/*.{connector.format or 'csv'}"
        )
        return []
    found = []
    for name in sorted(glob.glob(pattern, recursive=True)):
        path = Path(name)
        if not path.is_file():
            if not path.exists():
                link = shown_path(path.parent, root) + "/" + path.name
                notes.append(f"{link} matches the path but cannot be read (a broken link?)")
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
    if not found and not notes:
        notes.append(f"connector.path {connector.path} matches no file")
    return found


def read(
    file: SourceFile,
    connector: FilesConnector,
    rejected: Rejected,
    fs: Any = None,
    *,
    columns: Sequence[str] = (),
) -> Iterator[pa.Table]:
    """Stream one file as Arrow tables with a `_hw_position` column, text as valid UTF-8.

    A record larger than a block is read by reading the file again with larger blocks, past
    the records already streamed. A file that cannot be read raises SourceError naming it.
    """
    readers = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}
    done, block, codec = 0, BLOCK_BYTES, None
    while True:
        offset = 0
        try:
            with opened(file.path, connector, fs, fmt=file.format) as (source, codec):
                batches = readers[file.format](
                    source, file, connector, rejected, block=block, fs=fs, columns=columns
                )
                # one table held back: the last of a file is checked for a quote left open
                held, held_end = None, 0
                for batch in batches:
                    start, offset = offset, offset + batch.num_rows
                    if offset <= done:
                        continue
                    if held is not None:
                        done = held_end
                        yield as_text(held, shown=file.shown, rejected=rejected)
                    held = with_positions(batch, start).slice(max(done - start, 0))
                    held_end = offset
                if held is not None:
                    if file.format == "csv":
                        held = _open_quote_at_end(held, file.shown, rejected)
                    done = held_end
                    yield as_text(held, shown=file.shown, rejected=rejected)
            return
        except pa.ArrowInvalid as err:
            if _STRADDLING in str(err) and block < MAX_BLOCK_BYTES:
                block *= 8  # a record larger than a block: read again with larger blocks
                continue
            raise _unreadable(file, err, codec) from err
        except (OSError, ValueError, EOFError) as err:
            raise _unreadable(file, err, codec) from err


def _unreadable(file: SourceFile, err: BaseException, codec: str | None) -> SourceError:
    why = str(err).splitlines()[0] if str(err) else type(err).__name__
    kind = f"{codec}-compressed {file.format}" if codec else file.format
    return SourceError(
        f"cannot read this {kind} file: {why}",
        where=Location(file.shown),
        hint="the whole file is quarantined and the rest lands; fix or replace the file "
        "and it lands when it changes",
    )


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
    if protocol in ("s3", "s3a"):
        # s3fs retries each call itself, and botocore inside it 5 times more: a dead endpoint
        # took 8 s per call (25 s a run) to say so. Two tries each; the run's own retries
        # (defaults.retries) cover the rest. A user's config_kwargs.retries wins.
        config = dict(options.get("config_kwargs") or {})
        config.setdefault("retries", {"max_attempts": 2, "mode": "standard"})
        options["config_kwargs"] = config
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


def _read_csv(
    source: Any,
    file: SourceFile,
    connector: FilesConnector,
    rejected: Rejected,
    *,
    block: int,
    fs: Any,
    columns: Sequence[str],
) -> Iterator[pa.RecordBatch]:
    names = header(file.path, connector, fs, shown=file.shown, declared=columns)
    if not names:
        return  # an empty file: no records
    quote = '"'

    def on_invalid(row: pacsv.InvalidRow) -> str:
        where = f"{file.shown}:{row.number}" if row.number is not None else file.shown
        lines = row.text.split("\n")
        if len(lines) > 1 and row.number is not None:
            _spanning(file.shown, row, lines, rejected, open_quote=row.text.count(quote) % 2 == 1)
        else:
            why = f"expected {row.expected_columns} fields, found {row.actual_columns}"
            rejected.add(where, why, row.text)
        return "skip"

    reader = pacsv.open_csv(
        source,
        read_options=pacsv.ReadOptions(
            column_names=names,
            skip_rows=1 if connector.header else 0,
            block_size=block,
            use_threads=False,
            encoding=connector.encoding,
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=connector.delimiter, invalid_row_handler=on_invalid
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.binary() for n in names}, strings_can_be_null=True
        ),
    )
    yield from reader


def _spanning(
    shown: str, row: pacsv.InvalidRow, lines: list[str], rejected: Rejected, *, open_quote: bool
) -> None:
    """A bad record read over several lines (a quote left open, or quotes that pair up
    across lines) is quarantined line by line, the first as the cause, so that every line
    read is accounted for."""
    first = row.number
    last = first + len(lines) - 1
    if open_quote:
        why = f"unterminated quote: lines {first}-{last} were read as one record; close the quote"
    else:
        why = (
            f"lines {first}-{last} were read as one record (a quoted field spans them) of "
            f"{row.actual_columns} fields, not {row.expected_columns}; check the quotes"
        )
    rejected.add(f"{shown}:{first}", why, lines[0])
    for k, line in enumerate(lines[1:], first + 1):
        rejected.add(f"{shown}:{k}", f"part of the record read from line {first}", line)


def _open_quote_at_end(table: pa.Table, shown: str, rejected: Rejected) -> pa.Table:
    """A quote left open in the last field of a file runs to its end with the right field
    count: its record (a field ending in a line break) is quarantined line by line, like an
    unterminated quote elsewhere, instead of landing with the lines it swallowed."""
    if not table.num_rows:
        return table
    last = table.slice(table.num_rows - 1).to_pylist()[0]
    position = last.pop(RECORD)
    open_fields = [v for v in last.values() if isinstance(v, bytes) and v.endswith(b"\n")]
    if not open_fields:
        return table
    lines = open_fields[0].decode(errors="replace").split("\n")[1:-1]
    shown_row = {
        k: v.decode(errors="replace") if isinstance(v, bytes) else v for k, v in last.items()
    }
    rejected.add(
        f"{shown} record {position}",
        f"unterminated quote: its field runs over the {len(lines)} line(s) after it to the end "
        "of the file; close the quote",
        json.dumps(shown_row),
    )
    for k, line in enumerate(lines, 1):
        rejected.add(
            f"{shown} record {position}, line +{k}",
            f"inside the unterminated quote of record {position}",
            line,
        )
    return table.slice(0, table.num_rows - 1)


def _read_jsonl(
    source: Any,
    file: SourceFile,
    connector: FilesConnector,
    rejected: Rejected,
    *,
    block: int,
    fs: Any,
    columns: Sequence[str],
) -> Iterator[pa.RecordBatch]:
    # one column of whole lines: the delimiter is a control character valid JSON never holds raw
    def on_invalid(row: pacsv.InvalidRow) -> str:
        where = f"{file.shown}:{row.number}" if row.number is not None else file.shown
        rejected.add(where, "malformed JSON", row.text)
        return "skip"

    reader = pacsv.open_csv(
        source,
        read_options=pacsv.ReadOptions(
            column_names=[LINE], block_size=block, use_threads=False, encoding=connector.encoding
        ),
        parse_options=pacsv.ParseOptions(
            delimiter="\x01",
            quote_char=False,
            escape_char=False,
            double_quote=False,
            invalid_row_handler=on_invalid,
        ),
        convert_options=pacsv.ConvertOptions(column_types={LINE: pa.binary()}),
    )
    yield from reader


def _read_parquet(
    source: Any,
    file: SourceFile,
    connector: FilesConnector,
    rejected: Rejected,
    *,
    block: int,
    fs: Any,
    columns: Sequence[str],
) -> Iterator[pa.RecordBatch]:
    parquet = pq.ParquetFile(source)
    check_columns(parquet.schema_arrow.names, shown=file.shown)
    yield from parquet.iter_batches(batch_size=128_000)


def _format(connector: FilesConnector, path: str) -> str:
    if connector.format:
        return connector.format
    fmt = _EXTENSIONS.get(Path(text_format(path)).suffix.lower())
    if fmt is None:
        raise SourceError(
            f"cannot tell the format of {Path(path).name}",
            hint="set `format: csv | jsonl | parquet` on the connector",
        )
    return fmt
