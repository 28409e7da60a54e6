"""The direct lane: the engine reads whole local JSON-lines files and writes their data files
itself (`Engine`'s `FileLoader`; DuckDB on the embedded default).

The careful lane (`conform`) brings every line through Arrow and types it in one SQL pass that
can say why any record fails. Most files have no failing record, and for them DuckDB can read
and write the file itself at about the speed of its own `read_json` → Parquet. A file takes the
direct lane only when it lands exactly as the careful lane would land it, checked in two tiers:

1. exact: every line casts, in one parse, to a struct of exactly the declared keys (`CAST(line
   ::JSON AS STRUCT(...))` fails on a missing or other key, nested ones too, and on a value
   that does not cast; `TRY_CAST` would not: it NULLs what fails, as `json_transform` does);
2. otherwise, read_json: a check pass finds every line a JSON object whose keys the contract
   declares (under `evolve`, new keys become text columns as they would), then `read_json`
   with the contract's types casts every value, nested ones included, or fails; the file has
   as many records as the check counted.

In both, no record may miss a required value or fail a rule with `on_fail: quarantine`.
Otherwise what was written of the file is deleted and the file goes the careful lane, which
quarantines the bad records with their reasons. Records are numbered (`_hw_source`) in file
order, which takes one thread per file, so files are read one per core.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlglot import exp

from headwater.contracts import Contract, Evolution, OnFail
from headwater.contracts.predicates import failure_reason
from headwater.contracts.specs import parse_watermark, sql_type
from headwater.engine import file_loader
from headwater.errors import EngineError
from headwater.ingest.conform import RESERVED, metadata_columns
from headwater.ingest.files import SourceFile
from headwater.ingest.source import JSON, RECORD, FileSource
from headwater.ingest.streams import plain
from headwater.zones.datafiles import SelfWritten

# types DuckDB writes to Parquet as the raw table (made from Arrow by pyiceberg) holds them
_WRITABLE = {
    exp.DataType.Type.BIGINT,
    exp.DataType.Type.INT,
    exp.DataType.Type.DOUBLE,
    exp.DataType.Type.FLOAT,
    exp.DataType.Type.BOOLEAN,
    exp.DataType.Type.VARCHAR,
    exp.DataType.Type.TEXT,
    exp.DataType.Type.DATE,
    exp.DataType.Type.TIMESTAMP,
    exp.DataType.Type.TIMESTAMPNTZ,
    exp.DataType.Type.TIMESTAMPTZ,
    exp.DataType.Type.DECIMAL,
    exp.DataType.Type.STRUCT,
    exp.DataType.Type.ARRAY,
    exp.DataType.Type.LIST,
}
_LINE = "_hw_line"
_FIELDS = "_hw_fields"
CHUNK_BYTES = 64 << 20  # a file is split for the cores only into chunks at least this large
SAMPLE_BYTES = 32 << 10  # the head of a file looked at before the exact tier is tried on it (1 ms)
_NOT_EXACT = "a record is not exactly the declared keys and types"


@dataclass(frozen=True)
class Checked:
    """A file whose every line is a JSON object: how many, and the keys the contract lacks."""

    file: SourceFile
    records: int
    unknown: tuple[str, ...]


@dataclass(frozen=True)
class Written:
    """A file (or a run of its records) landed by the direct lane in the data file at
    `path` ("": the run was empty), and the columns landing counts (`_hw_late`, event time)."""

    file: SourceFile
    path: str
    counted: pa.Table
    tier: str  # "exact" or "read_json"


@dataclass(frozen=True)
class _Unit:
    """A file, or a chunk of it: its records after the first `skip`, at most `limit` (None:
    all); `expected` records, when they were counted before."""

    file: SourceFile
    skip: int = 0
    limit: int | None = None
    expected: int | None = None


def direct_files(contract: Contract, reader: FileSource, *, local_lake: bool) -> list[SourceFile]:
    """The new files the direct lane may take: local JSON-lines files, into a local lake,
    under a contract that knows its columns and declares only types the lane writes."""
    if not (local_lake and reader.local):
        return []
    if not contract.columns or not all(_writable(c.type) for c in contract.columns):
        return []
    plain_text = [f for f in reader.new if f.format == JSON]
    return [f for f in plain_text if plain(f.path, reader.connector)]


class DirectLane:
    """Land a list of JSON-lines files with DuckDB: one connection per file, as many at a time
    as there are cores. `exact()`, then `check()` and `part()` for the files it gave back."""

    def __init__(self, contract: Contract, files: list[SourceFile], *, params: dict[str, Any]):
        self.contract = contract
        self.files = files
        self.params = params  # batch_id, now, cutoff
        self.written: list[Written] = []
        self.declined: dict[str, str] = {}  # file → why the last tier gave it back
        self._workers = file_loader(os.cpu_count() or 1)

    def __enter__(self) -> DirectLane:
        return self

    def __exit__(self, *exc: object) -> None:
        self._workers.close()

    def left(self) -> list[SourceFile]:
        """The files no tier has landed (yet)."""
        done = {w.file for w in self.written}
        return [f for f in self.files if f not in done]

    def exact(self) -> SelfWritten:
        """Tier 1: the lake part writing every file whose records are exactly the declared
        keys, each line parsed once. A file whose first lines already show a missing or an
        other key is not tried: the attempt would fail, after reading a buffer of the file."""
        shape = _shape_of({c.name: sql_type(c.type) for c in self.contract.columns})
        tried = []
        for file in self.files:
            if _misfits(file.path, shape):
                self.declined[file.shown] = f"{_NOT_EXACT} (seen in its first lines)"
            else:
                tried.append(file)
        fields = exp.DataType(
            this=exp.DataType.Type.STRUCT,
            expressions=[
                exp.ColumnDef(this=exp.to_identifier(c.name, quoted=True), kind=sql_type(c.type))
                for c in self.contract.columns
            ],
            nested=True,
        )
        line = exp.column(_LINE)
        parsed = exp.Cast(this=exp.cast(line, exp.DataType.build("JSON")), to=fields)
        numbered = exp.select(parsed.as_(_FIELDS), exp.column(RECORD)).from_(
            self._workers.lines().subquery("_l")
        )
        typed = exp.column(_FIELDS)
        values = (
            exp.select(
                *[
                    exp.Dot(
                        this=typed.copy(), expression=exp.to_identifier(c.name, quoted=True)
                    ).as_(f"_v{i}")
                    for i, c in enumerate(self.contract.columns)
                ],
                exp.column(RECORD),
            )
            .from_(numbered.subquery("_n"))
            .where(_stop_if(typed.copy().is_(exp.null()), _NOT_EXACT))
        )
        units = _chunked(tried, self._workers.count)
        return self._part(units, values, extra=[], tier="exact")

    def check(self, files: list[SourceFile]) -> list[Checked]:
        """Tier 2, first pass: the files whose lines are all JSON objects with keys the
        evolution policy lets through."""
        declared = [c.name for c in self.contract.columns]
        refused = (Evolution.FREEZE, Evolution.DISCARD_ROW)
        out = []
        for item in self._workers.map(lambda f: self._check(f, declared), files):
            if item is None:
                continue
            if item.unknown and self.contract.evolution in refused:
                self.declined[item.file.shown] = f"unknown keys {list(item.unknown)}"
                continue
            out.append(item)
        return out

    def part(self, checked: list[Checked]) -> SelfWritten:
        """Tier 2: the lake part writing the `checked` files through `read_json`."""
        extra: list[str] = []
        if self.contract.evolution is Evolution.EVOLVE:
            extra = sorted({k for c in checked for k in c.unknown})
        values = exp.select(
            *[
                exp.column(c.name, quoted=True).as_(f"_v{i}")
                for i, c in enumerate(self.contract.columns)
            ],
            *[exp.column(k, quoted=True) for k in extra],
            _position(),
        ).from_(self._workers.records().subquery("_j"))
        units = [_Unit(c.file, expected=c.records) for c in checked]
        return self._part(units, values, extra=extra, tier="read_json")

    def _part(
        self, units: list[_Unit], values: exp.Select, *, extra: list[str], tier: str
    ) -> SelfWritten:
        """The lake part writing each unit through `values` (the typed `_v<i>`, the `extra`
        text columns and the position of each record), one data file each. A file lands
        only if all its units do."""
        columns = {c.name: c.type for c in self.contract.columns} | dict.fromkeys(extra, "VARCHAR")

        def write(table: pa.Schema, new_path: Callable[[], str]) -> list[str]:
            if not units:
                return []
            # on a worker: its connection is made once and used for the files too
            copy = self._workers.run(lambda: self._copy(values, columns, table))
            if copy is None:
                return []
            targets = [(u, new_path()) for u in units]

            def one(target: tuple[_Unit, str]) -> Written | None:
                unit, path = target
                params = {
                    **self.params,
                    "path": unit.file.path,
                    "columns": columns,
                    "skip": unit.skip,
                    "limit": unit.limit,
                }
                return self._write(unit, path, copy, params, tier)

            done = self._workers.map(one, targets)
            failed = {u.file for (u, _), w in zip(targets, done, strict=True) if w is None}
            kept = [w for w in done if w is not None and w.file not in failed]
            for w in done:
                if w is not None and w.file in failed:
                    Path(w.path).unlink(missing_ok=True)
            self.written += kept
            return [w.path for w in kept if w.path]

        return SelfWritten(pa.schema([pa.field(k, pa.string()) for k in extra]), write)

    def _check(self, file: SourceFile, declared: list[str]) -> Checked | None:
        try:
            found = self._workers.check(file.path, declared)
        except EngineError as err:  # not JSON: json_keys fails
            self.declined[file.shown] = _first_line(err)
            return None
        if found.not_objects:
            self.declined[file.shown] = f"{found.not_objects} line(s) not a JSON object"
            return None
        if found.repeated_keys or any(k.startswith(RESERVED) for k in found.unknown):
            self.declined[file.shown] = "a record with a duplicate or reserved (_hw_…) key"
            return None
        return Checked(file, found.records, found.unknown)

    def _copy(
        self, values: exp.Select, columns: dict[str, str], table: pa.Schema
    ) -> exp.Copy | None:
        """COPY of one file's records in the table's columns, failing on any record the
        careful lane would quarantine; None if one of the `columns` (name → type: declared,
        then extra keys) does not have its type in the table."""
        extra = list(columns)[len(self.contract.columns) :]
        have = self._workers.column_types(table)
        want = self._workers.types_of({n: sql_type(t) for n, t in columns.items()})
        mismatch = {n: (k, have.get(n)) for n, k in want.items() if have.get(n) != k}
        if mismatch:
            for file in self.files:
                self.declined[file.shown] = f"raw table types differ: {mismatch}"
            return None
        named = exp.select(
            *[
                exp.column(f"_v{i}").as_(c.name, quoted=True)
                for i, c in enumerate(self.contract.columns)
            ],
            *[exp.column(k, quoted=True) for k in extra],
            *metadata_columns(self.contract, per_row_origin=False),
        ).from_(values.subquery("_c"))
        selected = [
            exp.column(f.name, quoted=True)
            if f.name in named.named_selects
            else exp.cast(exp.null(), sql_type(have[f.name])).as_(f.name, quoted=True)
            for f in table
        ]
        select = exp.select(*selected).from_(named.subquery("_r")).where(self._guard())
        return self._workers.copy(select, table)

    def _guard(self) -> exp.Expr:
        """TRUE for a record the careful lane would land; an error for any other."""
        failing: list[exp.Expr] = [
            exp.column(c.name, quoted=True).is_(exp.null())
            for c in self.contract.columns
            if not c.nullable
        ]
        failing += [
            failure_reason(r).is_(exp.null()).not_()
            for r in self.contract.rules
            if r.action is OnFail.QUARANTINE
        ]
        return _stop_if(exp.or_(*failing), "a record to quarantine") if failing else exp.true()

    def _write(
        self, unit: _Unit, path: str, copy: exp.Copy, params: dict[str, Any], tier: str
    ) -> Written | None:
        file, expected = unit.file, unit.expected
        try:
            rows = self._workers.write(copy, path, {**params, "source": file.shown})
            if expected is not None and rows != expected:
                raise _Declined(f"{rows} records read, {expected} lines checked")
            if not rows:  # a run past the last record (chunks are estimated)
                Path(path).unlink(missing_ok=True)
                return Written(file, "", pa.table({"_hw_late": pa.array([], pa.bool_())}), tier)
            counted = self._counted(path, rows)
        except (EngineError, _Declined) as err:
            Path(path).unlink(missing_ok=True)
            self.declined[file.shown] = _first_line(err)
            return None
        return Written(file, path, counted, tier)

    def _counted(self, path: str, rows: int) -> pa.Table:
        """The columns landing counts (`_hw_late`, the event time), read back from the data
        file; without a watermark no row is late, and nothing needs reading."""
        column = parse_watermark(self.contract.watermark)[0] if self.contract.watermark else None
        if column is None or all(c.name != column for c in self.contract.columns):
            return pa.table({"_hw_late": pa.nulls(rows, pa.bool_()).fill_null(False)})
        names: list[exp.Expr] = [exp.column("_hw_late"), exp.column(column, quoted=True)]
        return self._workers.read_back(path, names)


class _Declined(Exception):
    """A file the direct lane gives back to the careful lane."""


def _position() -> exp.Alias:
    """Records numbered in file order (the query runs on one thread)."""
    return exp.Alias(this=exp.Window(this=exp.func("row_number")), alias=exp.to_identifier(RECORD))


# the keys a record has: None for a value, a dict of the keys of a struct, a list for a list
Shape = dict[str, "Shape"] | list["Shape"] | None


def _shape_of(fields: dict[str, exp.DataType]) -> dict[str, Shape]:
    return {name: _shape(kind) for name, kind in fields.items()}


def _shape(kind: exp.DataType) -> Shape:
    if kind.this is exp.DataType.Type.STRUCT:
        return _shape_of({d.name: d.args["kind"] for d in kind.expressions})
    if kind.this in (exp.DataType.Type.ARRAY, exp.DataType.Type.LIST) and kind.expressions:
        return [_shape(kind.expressions[0])]
    return None


def _misfits(path: str, shape: dict[str, Shape], head: int = SAMPLE_BYTES) -> bool:
    """Whether a record among the first `head` bytes of the file lacks a declared key or has
    another, at any depth: proof that the exact tier would give the file back. False when in
    doubt (a line that is not JSON is the exact tier's to refuse)."""
    try:
        with open(path, "rb") as handle:
            sample = handle.read(head)
    except OSError:  # unreadable: the lanes report it
        return False
    lines = sample.splitlines()[:-1] if len(sample) == head else sample.splitlines()
    for line in lines:
        try:
            record = json.loads(line.removeprefix(b"\xef\xbb\xbf") or b"null")
        except (ValueError, RecursionError):  # not JSON, or nested past Python's limit
            return False
        if record is not None and not _fits(record, shape):
            return True
    return False


def _fits(value: object, shape: Shape) -> bool:
    if value is None or shape is None:
        return True
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return True  # a value of another type: the exact cast decides
        return value.keys() == shape.keys() and all(_fits(value[k], s) for k, s in shape.items())
    if isinstance(value, list):
        return all(_fits(item, shape[0]) for item in value)
    return True


def _chunked(files: list[SourceFile], cores: int) -> list[_Unit]:
    """Each file as one unit, or, when there are fewer large files than cores, in runs of
    records of about CHUNK_BYTES or more, so that every core has one (a run reads the lines
    before it without parsing them, to number its records as the careful lane does)."""
    total = sum(f.size for f in files)
    size = max(CHUNK_BYTES, -(-total // max(cores, 1)))
    units: list[_Unit] = []
    for file in files:
        count = -(-file.size // size)
        units += (_chunks(file, count) if count > 1 else None) or [_Unit(file)]
    return units


def _chunks(file: SourceFile, count: int) -> list[_Unit] | None:
    """`count` runs of records that tile the file: the number of records is estimated from
    its first MB, and the last run reads to the end, so a wrong estimate only unbalances them."""
    with open(file.path, "rb") as handle:
        sample = handle.read(1 << 20)
    lines = sample.count(b"\n")
    if not lines:
        return None
    per = -(-file.size * lines // len(sample) // count)
    return [_Unit(file, skip=k * per, limit=None if k == count - 1 else per) for k in range(count)]


def _stop_if(condition: exp.Expr, why: str) -> exp.Expr:
    """TRUE, or an error that stops the query (the file then goes to the next tier)."""
    stop = exp.func("error", exp.Literal.string(f"direct lane: {why}"))
    return exp.Case().when(condition, stop).else_(exp.true())


def _writable(text: str) -> bool:
    return all(t.this in _WRITABLE for t in sql_type(text).find_all(exp.DataType))


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__
