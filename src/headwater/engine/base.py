"""The Engine protocol: everything the stages ask of a SQL engine, method by method.

Callers build sqlglot ASTs of portable nodes; the engine renders them in its own dialect
(`dialect`) and runs them. What only one engine can say — its catalog functions, how it reads
Parquet files, how it names a missing column in an error — lives in its adapter, behind one of
these methods. A new engine adds an adapter that passes tests/engine (the conformance suite);
it never edits a stage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar

import pyarrow as pa
from sqlglot import exp

from headwater.errors import EngineError

Statement = exp.Expr | str
_T = TypeVar("_T")
_R = TypeVar("_R")
Params = Mapping[str, Any] | None


def verbatim(text: str) -> exp.Expr:
    """SQL text already rendered in the engine's dialect from ASTs (a model's compiled text,
    bound; a release's views), as a node of a statement's AST: sent as is."""
    return exp.Var(this=text)


# the fractions a profile keeps the values of (quality/profile.py), and an engine measuring a
# write (`ColumnStats.quantiles`) estimates; the deciles among them are the edges of an
# equi-depth histogram (each bin holds a tenth of the non-NULL values)
QUANTILES = (0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 0.95)
TOP = 5  # the most frequent values a profile keeps of a text or boolean column
# about how many rows a profile's quantiles and top values are estimated from (see
# quality/profile.py, which draws them)
SAMPLE = 100_000
S3_SCHEMES = ("s3", "s3a", "s3n")  # the URI schemes of a lake on an S3-compatible store

FILE_INDEX = "_hw_file_index"  # `scan(…, positions=True)`: 1-based index of a row's file
FILE_ROW = "_hw_file_row"  # ... and the row's 0-based position within that file


class ObjectKind(StrEnum):
    TABLE = "TABLE"
    VIEW = "VIEW"


@dataclass(frozen=True)
class StoredObject:
    """A table or view the engine holds, and the comment set on it (None: no comment)."""

    kind: ObjectKind
    comment: str | None = None


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do, so a stage asks instead of assuming. Every flag here is read by
    a stage; a flag comes with the first stage that needs to ask (Spark's DDL outside
    transactions, with its engine).

    `arrow_tables`: `register` makes an Arrow table readable by name (Python models, tests).
    `comments`: `COMMENT ON` is kept and `stored` returns it.
    `column_stats`: `column_stats` reads the statistics the engine keeps of a table's
    columns (a model's audit then answers null and range rules without a scan).
    `dataframes`: `frame` gives a table as the engine's own DataFrame (Spark's: a Python
    model's inputs, which stay on the cluster), and `register` takes one back.
    """

    arrow_tables: bool = False
    comments: bool = False
    column_stats: bool = False
    dataframes: bool = False


@dataclass(frozen=True)
class ColumnStats:
    """What an engine's own statistics say of a table's column, without reading its rows:
    whether it may hold a NULL, and bounds its values lie within (None: not kept, or not
    comparable, as DuckDB's prefixes of text). Right after a write that only inserted rows
    the bounds are the exact minimum and maximum; a delete or an update may leave them wider,
    never narrower, and `may_be_null` true after the last NULL is gone."""

    may_be_null: bool
    lower: Any = None
    upper: Any = None
    distinct: int | None = None  # an estimate of its distinct values (None: not kept)
    # what an engine that measures its writes as they happen (Spark) also knows: the exact
    # count of NULLs, the mean of a number's values (a boolean's share of true), and estimates
    # of its values at QUANTILES (numbers; a moment as microseconds since the epoch) and of
    # its TOP most frequent values (text, booleans), the most frequent first
    nulls: int | None = None
    mean: float | None = None
    quantiles: tuple[Any, ...] | None = None
    top: tuple[Any, ...] | None = None


class Engine(Protocol):
    """What stages ask of an engine. DuckDB is the reference; an in-memory DuckDB the double.

    Statements are sqlglot ASTs, rendered in `dialect` by the engine, or text already in that
    dialect (user SQL a person typed: `headwater sql`); parameters are bound by name
    (`exp.Placeholder(this="start")`), never formatted in. Every failure is an `EngineError`
    whose hint shows the statement.
    """

    dialect: str
    capabilities: Capabilities

    def render(self, statement: Statement, *, copy: bool = True) -> str:
        """`statement` as text of this engine's dialect (text is returned as it is);
        `copy=False` for a tree built for this one use (copying is most of the cost)."""
        ...

    def execute(self, statement: Statement, params: Params = None) -> int | None:
        """Run one statement; the rows a CREATE TABLE AS / INSERT / DELETE wrote when the
        engine reports them, else None (the caller then counts, if it needs to)."""
        ...

    def read(self, statement: Statement, params: Params = None) -> pa.Table:
        """Everything a query returns, as Arrow."""
        ...

    def rows(self, statement: Statement, params: Params = None) -> list[tuple[Any, ...]]:
        """Everything a query returns, as Python tuples (small results: counts, names)."""
        ...

    def head(self, statement: Statement, rows: int) -> pa.Table:
        """The first `rows` rows the (last) statement returns; no columns when it returns
        nothing (`DROP VIEW …`)."""
        ...

    def stream(self, statement: Statement, *, batch_rows: int = 100_000) -> pa.RecordBatchReader:
        """A query's result in record batches of bounded size."""
        ...

    def statement_kinds(self, sql: str) -> list[str]:
        """What the engine's own parser says each statement of `sql` is (`SELECT`, `COPY`,
        …; `UNKNOWN` when it cannot name it): the read-only guard of `headwater sql`."""
        ...

    def columns(self, relation: str | exp.Expr, params: Params = None) -> dict[str, str]:
        """The columns of a table, view or query (its AST or rendered text, with the values of
        its parameters) and their types, in order (type text of the engine's dialect)."""
        ...

    def objects(self) -> dict[str, ObjectKind]:
        """Every table and view a user made, as `schema.name` → kind."""
        ...

    def stored(self, name: str) -> StoredObject | None:
        """Whether `schema.name` is a table or a view now, with its comment; None if neither."""
        ...

    def row_counts(self, tables: Sequence[str]) -> dict[str, int]:
        """`COUNT(*)` of each table, in one round trip."""
        ...

    def column_stats(self, table: str, columns: Sequence[str]) -> dict[str, ColumnStats]:
        """The engine's statistics of `columns` of `table`, in one round trip, without
        reading rows (needs `column_stats`); a column it keeps none of is left out."""
        ...

    def quantiles(
        self, column: exp.Expr, fractions: Sequence[float], *, moment: bool = False
    ) -> exp.Expr:
        """An aggregate of the values of `column` at `fractions`, as a list: exact over the
        rows it is given (callers give it a sample of about `quality.profile.SAMPLE` rows). A
        `moment` column's quantiles may come back as microseconds since the epoch."""
        ...

    def top_values(self, column: exp.Expr, k: int) -> exp.Expr | None:
        """An aggregate of the `k` most frequent values of `column` (estimated), as a list;
        None when the engine has none (profiles then keep no top values)."""
        ...

    def scan(self, files: Sequence[str], *, positions: bool = False) -> exp.Expr:
        """A FROM source over the lake's Parquet `files` of one table (columns united by
        name). `positions`: also `FILE_INDEX` (the file's 1-based place in `files`) and
        `FILE_ROW` (the row's place in its file), to order rows as they landed."""
        ...

    def export(self, query: exp.Query, path: str, schema: pa.Schema) -> int:
        """Write `query`'s result as ONE Parquet file at `path` (a local path) with the
        columns of `schema` and the Iceberg field ids in its fields' metadata; its rows."""
        ...

    def content_hash(self, alias: str, columns: Sequence[str] = ()) -> exp.Expr:
        """A deterministic text hash of the whole row of `alias` (a table alias in scope):
        the tie-break that makes merging versions independent of their arrival order.
        `columns`, when given, are that row's columns, all of them, in order (an engine may
        need them named: Spark cannot expand the outer row of a correlated subquery)."""
        ...

    def missing_column(self, error: EngineError) -> str | None:
        """The column an error says does not exist, so the error can point at its line."""
        ...

    def register(self, name: str, data: pa.Table | pa.RecordBatchReader) -> None:
        """Make Arrow data readable as the table `name` (needs `arrow_tables`), or one of
        the engine's DataFrames (needs `dataframes`)."""
        ...

    def frame(self, table: str) -> Any:
        """The table `table` as the engine's own DataFrame (needs `dataframes`)."""
        ...

    def unregister(self, name: str) -> None: ...

    def transaction(self) -> AbstractContextManager[None]:
        """Statements inside commit together, or roll back together on an exception."""
        ...

    def cursor(self) -> Engine:
        """A connection of its own to the same database, for one worker thread."""
        ...

    def interrupt(self) -> None:
        """Stop the statement this cursor runs now (called from another thread): it fails
        with an `EngineError`, and its transaction rolls back."""
        ...

    def compact(self) -> tuple[int, int]:
        """Rewrite the database's storage so nothing deleted from it stays readable in free
        space (the right to erasure), keeping everything it holds; its size before and after.
        Cursors taken before are closed. An engine whose storage another system owns raises
        `EngineError` saying what to run there instead."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class FileCheck:
    """What a first pass over a JSON-lines file found: its records, how many lines are not a
    JSON object, how many repeat a key, and the keys outside the ones asked about."""

    records: int
    not_objects: int
    repeated_keys: int
    unknown: tuple[str, ...]


class FileLoader(Protocol):
    """An engine that reads local JSON-lines files and writes Parquet data files itself (the
    direct lane of ingestion), on `count` worker threads with a connection each.

    `lines()` and `records()` are FROM-able queries over the file at `:path`: its non-blank
    lines as `_hw_line` numbered `_hw_position` (after `:skip`, at most `:limit`), and its
    records read with `:columns` (name → type). Failures are `EngineError`s.
    """

    count: int

    def map(self, work: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]: ...

    def run(self, work: Callable[[], _R]) -> _R: ...

    def close(self) -> None: ...

    def lines(self) -> exp.Select: ...

    def records(self) -> exp.Select: ...

    def check(self, path: str, known: list[str]) -> FileCheck: ...

    def column_types(self, schema: pa.Schema) -> dict[str, str]:
        """The engine's spelling of each column type of an Arrow schema."""
        ...

    def types_of(self, columns: dict[str, exp.DataType]) -> dict[str, str]:
        """The engine's spelling of declared types (`TEXT` → `VARCHAR`)."""
        ...

    def copy(self, query: exp.Select, schema: pa.Schema) -> exp.Copy:
        """The statement writing what `query` returns as one Parquet data file of the lake
        table whose (Iceberg, field-id carrying) Arrow schema is `schema`."""
        ...

    def write(self, copy: exp.Copy, path: str, params: dict[str, Any]) -> int:
        """Run `copy` into `path` (on the calling worker); the rows written."""
        ...

    def read_back(self, path: str, columns: list[exp.Expr]) -> pa.Table:
        """`columns` of the data file at `path` (on the calling worker)."""
        ...
