"""A source file's bytes made readable: decompressed, decoded, its header checked, its text valid.

Compression comes from the connector's `compression:`, else the file's extension, else its first
bytes (a gzip file named `.csv` still lands); an `encoding:` other than UTF-8 is transcoded as
Arrow reads. Text fields are read as bytes and cast to UTF-8 a batch at a time: the cast checks
every byte in C, and only a batch that fails it is split in DuckDB, so that a record holding an
invalid byte is quarantined on its own instead of failing its file.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlglot import exp

from headwater.contracts import FilesConnector
from headwater.engine import scratch
from headwater.errors import DataError, Location, SourceError
from headwater.ingest.conform import RESERVED
from headwater.ingest.source import LINE, RECORD, Rejected

# one range request each (fewer round trips to S3 / GCS); 16 MB put the 1 GB object test at
# its 500 MB bound on CI, 8 MB measured 402 MB peak here
REMOTE_BUFFER_BYTES = 8 << 20
HEAD_BYTES = 1 << 20  # read to find a CSV header line
_SUFFIXES = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2"}
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"BZh", "bz2"))
_INPUT = "_hw_bytes"


def compression(path: str, connector: FilesConnector, head: bytes) -> str | None:
    """The codec a file is compressed with (None: not compressed)."""
    if connector.compression != "auto":
        return None if connector.compression == "none" else connector.compression
    by_name = _SUFFIXES.get(Path(path).suffix.lower())
    if by_name:
        return by_name
    return next((codec for magic, codec in _MAGIC if head.startswith(magic)), None)


def text_format(path: str) -> str:
    """A file's name less its compression suffix (`orders.csv.gz` → `orders.csv`)."""
    suffix = Path(path).suffix.lower()
    return path[: -len(suffix)] if suffix in _SUFFIXES else path


@contextmanager
def opened(
    path: str, connector: FilesConnector, fs: Any, *, fmt: str, buffer: int = REMOTE_BUFFER_BYTES
) -> Iterator[tuple[Any, str | None]]:
    """The file as Arrow reads it, and its codec: its local path when it is not compressed
    (Arrow's own, faster, file reader), else a stream of its decompressed bytes (read from
    object storage `buffer` bytes at a time)."""
    if fs is None:
        with open(path, "rb") as raw:
            codec = None if fmt == "parquet" else compression(path, connector, raw.read(4))
        if codec is None:
            yield path, None
            return
        with pa.CompressedInputStream(pa.OSFile(path), codec) as stream:
            yield stream, codec
        return
    # one range request per buffer, and no other copy of it: memory stays flat however
    # large the object is
    raw = fs.open(path, "rb", cache_type="none")
    with io.BufferedReader(raw, buffer_size=buffer) as handle:
        codec = None if fmt == "parquet" else compression(path, connector, handle.peek(4)[:4])
        if codec is None:
            yield handle, None
        else:
            with pa.CompressedInputStream(pa.PythonFile(handle, mode="r"), codec) as stream:
                yield stream, codec


def plain(path: str, connector: FilesConnector) -> bool:
    """Whether a local file is uncompressed UTF-8 (what DuckDB's own readers can take)."""
    if codecs.lookup(connector.encoding).name != "utf-8":
        return False
    with open(path, "rb") as raw:
        return compression(path, connector, raw.read(4)) is None


def header(
    path: str, connector: FilesConnector, fs: Any, *, shown: str, declared: Sequence[str]
) -> list[str]:
    """The column names of a CSV file (`column0`… without a header); [] for an empty file.
    A header that cannot name the file's columns is a SourceError at line 1."""
    with opened(path, connector, fs, fmt="csv", buffer=HEAD_BYTES) as (source, _):
        if isinstance(source, str):
            with open(source, "rb") as raw:
                head = raw.read(HEAD_BYTES)
        else:
            head = source.read(HEAD_BYTES)
    if not head:
        return []
    encoding = (
        "utf-8-sig" if codecs.lookup(connector.encoding).name == "utf-8" else connector.encoding
    )
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head)
    first = next(csv.reader(io.StringIO(text, newline=""), delimiter=connector.delimiter), [])
    if not connector.header:
        return [f"column{i}" for i in range(max(len(first), 1))]
    names = [name.strip() for name in first]
    check_header(names, shown=shown, declared=declared, delimiter=connector.delimiter)
    return names


def check_header(names: list[str], *, shown: str, declared: Sequence[str], delimiter: str) -> None:
    """A header must name each column once, with names that are not headwater's own, and at
    least one column the contract declares (else it is likely not a header at all)."""
    where = Location(shown, 1)
    fix = "fix the header; the file lands when it changes"
    if not names:
        raise DataError(
            "the first line is blank, where the header should be",
            where=where,
            hint="remove the blank line (or set `header: false` on the connector)",
        )
    for i, name in enumerate(names, 1):
        if not name:
            raise DataError(f"header column {i} has no name", where=where, hint=fix)
        if name.startswith(RESERVED):
            raise DataError(
                f"header column {name!r} uses a name headwater reserves for its metadata "
                f"({RESERVED}…)",
                where=where,
                hint="rename the column in the file; the file lands when it changes",
            )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataError(
            f"the header names {', '.join(map(repr, twice))} twice", where=where, hint=fix
        )
    if declared and not set(names) & set(declared):
        raise DataError(
            f"the header names none of the contract's columns (it reads {len(names)} "
            f"column(s) split by {delimiter!r}: {', '.join(names)[:80]!r})",
            where=where,
            hint="is the header missing, or the file split by another delimiter? fix the file "
            "or the connector's `delimiter:` / `header:`",
        )


def check_columns(names: list[str], *, shown: str) -> None:
    """A typed file (Parquet) may not bring a column named like headwater's metadata."""
    for name in names:
        if name.startswith(RESERVED):
            raise SourceError(
                f"column {name!r} uses a name headwater reserves for its metadata ({RESERVED}…)",
                where=Location(shown),
                hint="rename the column in the file; the file lands when it changes",
            )


def as_text(table: pa.Table, *, shown: str, rejected: Rejected) -> pa.Table:
    """`table` with its binary columns cast to text; a record holding bytes that are not
    UTF-8 goes to `rejected` (one DuckDB pass, only for a batch that has such a record)."""
    binary = [f.name for f in table.schema if pa.types.is_binary(f.type)]
    if not binary:
        return table
    target = pa.schema(
        [pa.field(f.name, pa.string()) if f.name in binary else f for f in table.schema]
    )
    try:
        return table.cast(target)
    except pa.ArrowInvalid:
        return _split_invalid(table, binary, shown=shown, rejected=rejected).cast(target)


def _split_invalid(
    table: pa.Table, binary: list[str], *, shown: str, rejected: Rejected
) -> pa.Table:
    """The records of `table` whose bytes are all UTF-8; the others go to `rejected`."""
    decoded = {
        name: exp.Anonymous(
            this="try", expressions=[exp.Anonymous(this="decode", expressions=[_col(name)])]
        )
        for name in binary
    }
    invalid = {
        name: exp.and_(_col(name).is_(exp.null()).not_(), value.copy().is_(exp.null()))
        for name, value in decoded.items()
    }
    which = exp.Anonymous(
        this="concat_ws",
        expressions=[
            exp.Literal.string(", "),
            *[exp.Case().when(cond, exp.Literal.string(name)) for name, cond in invalid.items()],
        ],
    )
    where = "the line" if binary == [LINE] else "column(s) "
    reason = exp.DPipe(
        this=exp.DPipe(
            this=exp.Literal.string(f"invalid UTF-8 in {where}"),
            expression=exp.Literal.string("") if binary == [LINE] else which,
        ),
        expression=exp.Literal.string(
            "; if the file is not UTF-8, set `encoding:` on the connector (e.g. latin-1)"
        ),
    )
    record = (
        exp.cast(_col(LINE), "varchar")
        if binary == [LINE]
        else exp.func(
            "to_json",
            exp.func(
                "struct_pack",
                *[
                    exp.PropertyEQ(
                        this=exp.to_identifier(n, quoted=True),
                        expression=exp.cast(_col(n), "varchar") if n in binary else _col(n),
                    )
                    for n in table.column_names
                    if n != RECORD
                ],
            ),
        )
    )
    source = exp.DPipe(
        this=exp.Literal.string(f"{shown} record "),
        expression=exp.cast(exp.column(RECORD), "varchar"),
    )
    bad = exp.or_(*invalid.values())
    columns = [
        (decoded[n] if n in decoded else _col(n)).as_(n, quoted=True) for n in table.column_names
    ]
    engine = scratch()
    engine.register(_INPUT, table)
    good = engine.read(exp.select(*columns).from_(_INPUT).where(exp.not_(bad)))
    failed = engine.read(
        exp.select(source.as_("_hw_source"), reason.as_("_hw_reason"), record.as_("_hw_record"))
        .from_(_INPUT)
        .where(bad.copy())
    )
    rejected.add_table(failed)
    return good


def _col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)
