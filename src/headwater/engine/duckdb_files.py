"""DuckDB reading local JSON-lines files and writing Parquet data files itself: the engine
side of ingestion's direct lane (`ingest/direct.py` decides which files may take it).

Each worker thread keeps one single-threaded connection, so a file's records are numbered in
file order, files run side by side, and a connection (about 40 ms) is made once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from headwater.engine.base import FileCheck
from headwater.engine.duckdb import DIALECT, _message
from headwater.errors import EngineError

_T = TypeVar("_T")
_R = TypeVar("_R")
COMPRESSION_LEVEL = 1  # the zstd level of the careful lane's data files (pyarrow's default)
# every line as text, split as Arrow's CSV reader splits the careful lane's lines (empty lines
# are NULL; strict mode fails on a line Arrow would reject); json_keys fails on non-JSON
_LINES_SQL = (
    "read_csv($path, columns := {'_hw_line': 'VARCHAR'}, delim := '\x01', quote := '', "
    "escape := '', header := false, auto_detect := false)"
)
# a file's lines numbered as records (blank lines are NULL rows, and not records), from the
# record after `skip`, at most `limit` of them (NULL: all); the skipped ones are read, not
# parsed. (`parallel := false` would hold the whole file in memory.)
_CHUNK = cast(
    exp.Select,
    sqlglot.parse_one(
        "SELECT * FROM (SELECT _hw_line, row_number() OVER () AS _hw_position "
        f"FROM {_LINES_SQL} WHERE _hw_line IS NOT NULL) WHERE _hw_position > $skip LIMIT $limit",
        read=DIALECT,
    ),
)
# the first pass of a file: each distinct list of keys of its lines (in their order), whether
# those lines are JSON objects, and how many lines have it; folded in Python. Grouping the
# lines costs half what testing each line's keys in SQL costs (list functions are slow), and a
# file has a few key lists; one with more than KEY_LISTS is checked line by line instead
KEY_LISTS = 1000
_KEY_LISTS = sqlglot.parse_one(
    "SELECT json_keys(_hw_line), "
    "starts_with(_hw_line, '{') OR starts_with(ltrim(_hw_line, ' \t\r'), '{'), count(_hw_line) "
    f"FROM {_LINES_SQL} WHERE _hw_line IS NOT NULL GROUP BY ALL LIMIT $limit",
    read=DIALECT,
).sql(dialect=DIALECT)
_CHECK = sqlglot.parse_one(
    "SELECT count(_hw_line), "
    "count(*) FILTER (WHERE CASE WHEN starts_with(_hw_line, '{') THEN false "
    "ELSE NOT starts_with(ltrim(_hw_line, ' \t\r'), '{') END), "
    "count(*) FILTER (WHERE NOT list_has_all($known, json_keys(_hw_line))), "
    "count(*) FILTER (WHERE len(json_keys(_hw_line)) <> len(list_distinct(json_keys(_hw_line)))) "
    f"FROM {_LINES_SQL}",
    read=DIALECT,
).sql(dialect=DIALECT)
_UNKNOWN = sqlglot.parse_one(
    "SELECT DISTINCT unnest(list_filter(json_keys(_hw_line), k -> NOT list_contains($known, k))) "
    f"AS k FROM {_LINES_SQL} ORDER BY k",
    read=DIALECT,
).sql(dialect=DIALECT)
_RECORDS = cast(
    exp.Select,
    sqlglot.parse_one(
        "SELECT * FROM read_json($path, format := 'newline_delimited', columns := $columns)",
        read=DIALECT,
    ),
)


class DuckDBFiles:
    """A `FileLoader` on DuckDB: `count` worker threads, one connection each."""

    def __init__(self, count: int):
        self.count = max(count, 1)
        self._pool = ThreadPoolExecutor(self.count, "hw-direct")
        self._local = threading.local()
        self._all: list[duckdb.DuckDBPyConnection] = []
        self._opening = threading.Lock()
        # every worker opens its connection now, while the caller prepares the first query
        # (each waits for the others, so that no worker opens two)
        started = threading.Barrier(self.count)
        for _ in range(self.count):
            self._pool.submit(self._open_then_wait, started)

    def _open_then_wait(self, started: threading.Barrier) -> None:
        self._connection()
        with contextlib.suppress(threading.BrokenBarrierError):
            started.wait(timeout=5)

    def map(self, work: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
        return list(self._pool.map(work, items))

    def run(self, work: Callable[[], _R]) -> _R:
        return self._pool.submit(work).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for conn in self._all:
            conn.close()

    def lines(self) -> exp.Select:
        return _CHUNK.copy()

    def records(self) -> exp.Select:
        return _RECORDS.copy()

    def check(self, path: str, known: list[str]) -> FileCheck:
        with _errors():
            conn = self._connection()
            lists = conn.execute(_KEY_LISTS, {"path": path, "limit": KEY_LISTS + 1}).fetchall()
            if len(lists) <= KEY_LISTS:
                return _folded(lists, known)
            params = {"path": path, "known": known}
            counts = conn.execute(_CHECK, params).fetchone() or (0, 0, 0, 0)
            records, others, unknown, twice = counts
            keys = [k for (k,) in conn.execute(_UNKNOWN, params).fetchall()] if unknown else []
        return FileCheck(records, others, twice, tuple(keys))

    def column_types(self, schema: pa.Schema) -> dict[str, str]:
        with _errors():
            return _column_types(self._connection().from_arrow(schema.empty_table()))

    def types_of(self, columns: dict[str, exp.DataType]) -> dict[str, str]:
        query = exp.select(
            *[exp.cast(exp.null(), t).as_(n, quoted=True) for n, t in columns.items()]
        ).limit(0)
        with _errors():
            return _column_types(self._connection().sql(query.sql(dialect=DIALECT)))

    def copy(self, query: exp.Select, schema: pa.Schema) -> exp.Copy:
        return exp.Copy(this=query.subquery(), kind=False, params=copy_options(schema))

    def write(self, copy: exp.Copy, path: str, params: dict[str, Any]) -> int:
        statement = copy.copy()
        statement.set("files", [exp.Literal.string(path)])
        used = {p.name for p in statement.find_all(exp.Placeholder)}
        with _errors():
            row = (
                self._connection()
                .execute(
                    statement.sql(dialect=DIALECT), {k: v for k, v in params.items() if k in used}
                )
                .fetchone()
            )
        return int(row[0]) if row else 0

    def read_back(self, path: str, columns: list[exp.Expr]) -> pa.Table:
        query = exp.select(*columns).from_(exp.func("read_parquet", exp.Placeholder(this="path")))
        with _errors():
            return (
                self._connection().sql(query.sql(DIALECT), params={"path": path}).to_arrow_table()
            )

    def _connection(self) -> duckdb.DuckDBPyConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = duckdb.connect(config={"threads": 1})
            conn.execute("SET TimeZone = 'UTC'")
            with self._opening:
                self._all.append(conn)
        return conn


class _errors:
    """DuckDB's errors as `EngineError`s, its first line the message."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: Any
    ) -> None:
        if isinstance(err, duckdb.Error):
            raise EngineError(_message(err)) from err


def _folded(lists: list[tuple[list[str], bool, int]], known: list[str]) -> FileCheck:
    """`check`'s answer from the distinct key lists of a file's lines."""
    records = others = twice = 0
    unknown: set[str] = set()
    for keys, is_object, lines in lists:
        records += lines
        others += 0 if is_object else lines
        twice += lines if len(set(keys)) < len(keys) else 0
        unknown.update(keys)
    return FileCheck(records, others, twice, tuple(sorted(unknown.difference(known))))


def _column_types(relation: duckdb.DuckDBPyRelation) -> dict[str, str]:
    return {name: str(kind) for name, kind in zip(relation.columns, relation.types, strict=True)}


def copy_options(table: pa.Schema) -> list[exp.CopyParameter]:
    """Parquet as the careful lane writes it (zstd), with the table's Iceberg field ids."""
    ids = exp.Struct(expressions=[_field_id(f) for f in table])
    options: list[tuple[str, exp.Expr]] = [
        ("FORMAT", exp.var("parquet")),
        ("COMPRESSION", exp.var("zstd")),
        ("COMPRESSION_LEVEL", exp.Literal.number(COMPRESSION_LEVEL)),
        ("FIELD_IDS", ids),
    ]
    return [exp.CopyParameter(this=exp.var(k), expression=v) for k, v in options]


def _field_id(field: pa.Field) -> exp.PropertyEQ:
    """`name: id`, or `name: {__duckdb_field_id: id, child: ...}` for nested types."""
    value: exp.Expr = exp.Literal.number(int((field.metadata or {})[b"PARQUET:field_id"]))
    kind = field.type
    children: list[pa.Field] = []
    if pa.types.is_struct(kind):
        children = [kind.field(i) for i in range(kind.num_fields)]
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        children = [kind.value_field]
    elif pa.types.is_map(kind):
        children = [kind.key_field, kind.item_field]
    if children:
        own = exp.PropertyEQ(this=exp.Literal.string("__duckdb_field_id"), expression=value)
        value = exp.Struct(expressions=[own, *[_field_id(c) for c in children]])
    return exp.PropertyEQ(this=exp.Literal.string(field.name), expression=value)
