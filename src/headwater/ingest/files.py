"""The files connector: find CSV / JSON-lines / Parquet files and stream them as Arrow batches.

CSV fields arrive as text and JSON lines as whole lines, so that conforming to the contract
(casts, required fields, unknown keys) happens in one SQL pass in `land`, where a value that
breaks its type is quarantined instead of failing the file. Nothing reads a whole file at once.
"""

from __future__ import annotations

import csv
import glob
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from headwater.contracts import FilesConnector
from headwater.contracts.load import shown_path
from headwater.errors import Location, SourceError

LINE = "_hw_line"  # the one column of a JSON-lines batch
RECORD = "_hw_position"  # 1-based position of the record in its file
BLOCK_BYTES = 8 << 20
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

    path: Path
    shown: str
    format: str
    size: int
    mtime_ns: int

    @property
    def key(self) -> str:
        return f"{self.shown}|{self.size}|{self.mtime_ns}"


@dataclass
class Rejected:
    """Records the reader itself could not split into fields (wrong column count, bad line)."""

    rows: list[dict[str, str]] = field(default_factory=list)

    def add(self, source: str, reason: str, text: str) -> None:
        self.rows.append({"_hw_source": source, "_hw_reason": reason, "_hw_record": text})


def discover(connector: FilesConnector, root: Path) -> list[SourceFile]:
    """Every file the connector's path or glob matches, in a stable order."""
    pattern = connector.path if Path(connector.path).is_absolute() else str(root / connector.path)
    found = []
    for name in sorted(glob.glob(pattern, recursive=True)):
        path = Path(name)
        if not path.is_file():
            continue
        stat = path.stat()
        found.append(
            SourceFile(
                path,
                shown_path(path, root),
                _format(connector, path),
                stat.st_size,
                stat.st_mtime_ns,
            )
        )
    return found


def read(file: SourceFile, connector: FilesConnector, rejected: Rejected) -> Iterator[pa.Table]:
    """Stream one file as Arrow tables with a `_hw_record` position column."""
    readers = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}
    offset = 0
    try:
        for batch in readers[file.format](file, connector, rejected):
            positions = pa.array(range(offset + 1, offset + batch.num_rows + 1), pa.int64())
            offset += batch.num_rows
            yield pa.Table.from_batches([batch]).append_column(RECORD, positions)
    except (OSError, pa.ArrowInvalid) as err:
        raise SourceError(
            f"cannot read this {file.format} file: {str(err).splitlines()[0]}",
            where=Location(file.shown),
            hint="fix or remove the file, then run again; nothing of this batch was landed",
        ) from err


def batch_id(files: list[SourceFile]) -> str:
    """A deterministic id for landing exactly these files (same files → same id on a rerun)."""
    digest = hashlib.sha256("\n".join(sorted(f.key for f in files)).encode())
    return digest.hexdigest()[:16]


def _read_csv(
    file: SourceFile, connector: FilesConnector, rejected: Rejected
) -> Iterator[pa.RecordBatch]:
    names = _csv_header(file, connector)

    def on_invalid(row: pacsv.InvalidRow) -> str:
        where = f"{file.shown}:{row.number}" if row.number is not None else file.shown
        rejected.add(
            where, f"expected {row.expected_columns} fields, found {row.actual_columns}", row.text
        )
        return "skip"

    reader = pacsv.open_csv(
        file.path,
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


def _csv_header(file: SourceFile, connector: FilesConnector) -> list[str]:
    with file.path.open(newline="", encoding="utf-8", errors="replace") as handle:
        first = next(csv.reader(handle, delimiter=connector.delimiter), None)
    if not first:
        return []
    if connector.header:
        return [name.strip() for name in first]
    return [f"column{i}" for i in range(len(first))]


def _read_jsonl(
    file: SourceFile, connector: FilesConnector, rejected: Rejected
) -> Iterator[pa.RecordBatch]:
    # one column of whole lines: the delimiter is a control character valid JSON never holds raw
    def on_invalid(row: pacsv.InvalidRow) -> str:
        where = f"{file.shown}:{row.number}" if row.number is not None else file.shown
        rejected.add(where, "malformed JSON", row.text)
        return "skip"

    reader = pacsv.open_csv(
        file.path,
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
    file: SourceFile, connector: FilesConnector, rejected: Rejected
) -> Iterator[pa.RecordBatch]:
    yield from pq.ParquetFile(file.path).iter_batches(batch_size=128_000)


def _format(connector: FilesConnector, path: Path) -> str:
    if connector.format:
        return connector.format
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise SourceError(
            f"cannot tell the format of {path.name}",
            hint="set `format: csv | jsonl | parquet` on the connector",
        )
    return fmt
