"""The DuckDB engine: the embedded default and the engine double for tests.

One connection per process; each worker thread takes its own `cursor()` (a DuckDB
connection sharing the same database), so independent models build in parallel.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from headwater.engine.base import (
    FILE_INDEX,
    FILE_ROW,
    Capabilities,
    ColumnStats,
    ObjectKind,
    Params,
    Statement,
    StoredObject,
)
from headwater.errors import EngineError, StoreBusy, TransientEngineError

DIALECT = "duckdb"
_FILE = "_hw_file"  # read_parquet's filename column, while `scan` numbers the files
_ROW = "file_row_number"  # read_parquet's own name for a row's position in its file

# the column types whose minimum and maximum DuckDB keeps whole (of text it keeps a prefix)
_BOUNDED = re.compile(
    r"(U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)|FLOAT|DOUBLE|DECIMAL\(\d+,\d+\)|DATE"
    r"|TIMESTAMP( WITH TIME ZONE)?|TIME)"
)
_MISSING_COLUMN = re.compile(
    r'Referenced column "(?P<a>[^"]+)" not found|does not have a column named "(?P<b>[^"]+)"'
)


def _few(distinct: int, rows: Any) -> bool:
    """Whether DuckDB's `approx_unique` of a column of `rows` rows can be kept. DuckDB counts
    the distinct values of a sample of the rows (a tenth of texts, 30% of numbers) and
    extrapolates (Good-Turing): when the values are few, each of them is in the sample and the
    count is about right (5,021 and 5,665 for 5,000 among 1M rows: its HyperLogLog is coarser
    than `approx_count_distinct`'s, within 2%); when they are many, the extrapolation is
    off (801,052 for 300,000 texts, 357,467 for 300,000 integers, 863 for 2,000 e-mail
    addresses among 2,000 rows: tests/engine/test_duckdb_stats.py), and a profile counts them
    with a HyperLogLog instead."""
    return isinstance(rows, int) and distinct * FEW <= rows


FEW = 100  # DuckDB's distinct count is kept when the rows are at least 100 times as many


LOCK_WAIT = 10.0  # seconds to wait for another process to let go of the warehouse file


def _connect(
    path: str, *, read_only: bool, config: dict[str, Any], wait: float
) -> duckdb.DuckDBPyConnection:
    """Open the database file, waiting up to `wait` seconds while another process holds it
    (a reader polling it, a run writing it): a lock held briefly is not a failure.

    Raises:
        StoreBusy: another process still holds it after `wait` seconds.
        EngineError: the file cannot be opened at all.
    """
    deadline = time.monotonic() + wait
    pause = 0.02
    while True:
        try:
            return duckdb.connect(path, read_only=read_only, config=config)
        except duckdb.Error as err:
            if "lock" not in str(err).lower():
                raise EngineError(
                    f"cannot open the warehouse {path}: {_message(err)}",
                    hint="point `warehouse:` at a DuckDB file headwater can write",
                ) from err
            if time.monotonic() + pause > deadline:
                raise StoreBusy(
                    f"cannot open the warehouse {path}: another process holds it "
                    f"({_message(err)}), still after {wait:g}s",
                    hint="wait for that process (a run, `headwater sql`, a notebook) to finish "
                    "or close the file, then run this again",
                ) from err
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


# how a database file was opened: read-only, config, lock wait, sandbox, filesystems
_Reopen = tuple[
    bool, dict[str, Any], float, Sequence[str | Path] | None, Mapping[str, Mapping[str, Any]]
]


class DuckDBEngine:
    """An `Engine` on a DuckDB database file (or `:memory:`).

    `read_only` opens the file without write access (any number of readers, no writer).
    `files_under` sandboxes the connection: no file outside those directories (or object
    store prefixes, s3://bucket/lake) can be read or written, no extension loaded, and no
    setting changed afterwards; None leaves every file the process can reach open to SQL.
    `filesystems`: fsspec filesystems by protocol and options ({"s3": {"key": …}}) through
    which SQL reads such paths (DuckDB's own S3 extension cannot be counted on).
    """

    dialect = DIALECT
    capabilities = Capabilities(arrow_tables=True, comments=True, column_stats=True)

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        threads: int | None = None,
        read_only: bool = False,
        files_under: Sequence[str | Path] | None = None,
        lock_wait: float = LOCK_WAIT,
        memory_limit: str | None = None,
        spill_to: str | Path | None = None,
        filesystems: Mapping[str, Mapping[str, Any]] | None = None,
        _conn: duckdb.DuckDBPyConnection | None = None,
    ):
        # how to open the file again (`compact`); None for a cursor, which shares a connection
        self._reopen: _Reopen | None = None
        if _conn is None:
            if str(path) != ":memory:" and not read_only:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            config: dict[str, Any] = {}
            if threads:
                config["threads"] = threads
            if files_under is not None:
                config |= dict.fromkeys(
                    ("autoinstall_known_extensions", "autoload_known_extensions"), False
                )
            if memory_limit is not None:  # bounded: spill joins and sorts to disk instead
                config |= {
                    "memory_limit": memory_limit,
                    "preserve_insertion_order": False,
                    # a streamed Arrow input is estimated at ~1 row: without this an ASOF
                    # join over it becomes a nested loop over every pair
                    "asof_loop_join_threshold": 0,
                }
            if spill_to is not None:
                config["temp_directory"] = str(spill_to)
            self._reopen = (read_only, config, lock_wait, files_under, filesystems or {})
            _conn = _open(str(path), *self._reopen)
        self.path = str(path)
        self._conn = _conn

    def render(self, statement: Statement, *, copy: bool = True) -> str:
        if isinstance(statement, str):
            return statement
        return statement.sql(dialect=self.dialect, copy=copy)

    def execute(self, statement: Statement, params: Params = None) -> int | None:
        result = self._run(statement, params)
        # DuckDB answers CREATE TABLE AS / INSERT / DELETE / UPDATE with one `Count` row
        if result.description and result.description[0][0] == "Count":
            found = result.fetchone()
            return int(found[0]) if found else None
        return None

    def read(self, statement: Statement, params: Params = None) -> pa.Table:
        relation = self._query(statement, params)
        # DuckDB plans lazily: errors of execution surface while fetching, so wrap that too
        with _engine_errors(statement):
            return relation.to_arrow_table()

    def stream(self, statement: Statement, *, batch_rows: int = 100_000) -> pa.RecordBatchReader:
        relation = self._query(statement, None)
        with _engine_errors(statement):
            return relation.to_arrow_reader(batch_rows)

    def head(self, statement: Statement, rows: int) -> pa.Table:
        """The first `rows` rows of what the (last) statement returns; a table without
        columns for a statement that returns nothing (`DROP VIEW …`)."""
        relation: duckdb.DuckDBPyRelation | None = self._query(statement, None)
        if relation is None:
            return pa.table({})
        with _engine_errors(statement):
            return relation.limit(rows).to_arrow_table()

    def rows(self, statement: Statement, params: Params = None) -> list[tuple[Any, ...]]:
        result = self._run(statement, params)
        with _engine_errors(statement):  # execution errors may surface while fetching
            return result.fetchall()

    def statement_kinds(self, sql: str) -> list[str]:
        """What DuckDB's own parser says each statement of `sql` is: `SELECT`, `COPY`, …
        (`UNKNOWN` for a kind this client library cannot name)."""
        try:
            statements = self._conn.extract_statements(sql)
        except duckdb.Error as err:
            raise _error(err, sql) from err
        kinds = []
        for statement in statements:
            try:
                kinds.append(statement.type.name)
            except ValueError:  # e.g. UPDATE EXTENSIONS, newer than the enum
                kinds.append("UNKNOWN")
        return kinds

    def columns(self, relation: str | exp.Expr, params: Params = None) -> dict[str, str]:
        source = (
            exp.to_table(relation)
            if isinstance(relation, str)
            else exp.Subquery(this=relation, alias=exp.TableAlias(this=exp.to_identifier("_q")))
        )
        described = exp.Describe(this=exp.select(exp.Star()).from_(source))
        return {str(name): str(kind) for name, kind, *_ in self.rows(described, params)}

    def objects(self) -> dict[str, ObjectKind]:
        query = (
            "SELECT schema_name, view_name, 'VIEW' FROM duckdb_views() WHERE NOT internal "
            "UNION ALL SELECT schema_name, table_name, 'TABLE' FROM duckdb_tables() "
            "WHERE NOT internal"
        )
        return {f"{schema}.{name}": ObjectKind(kind) for schema, name, kind in self.rows(query)}

    def stored(self, name: str) -> StoredObject | None:
        schema, _, short = name.rpartition(".")
        query = (
            "SELECT 'TABLE', comment FROM duckdb_tables() WHERE schema_name = $s AND "
            "table_name = $t UNION ALL SELECT 'VIEW', comment FROM duckdb_views() "
            "WHERE schema_name = $s AND view_name = $t"
        )
        found = self.rows(query, {"s": schema or "main", "t": short})
        return StoredObject(ObjectKind(found[0][0]), found[0][1]) if found else None

    def row_counts(self, tables: Sequence[str]) -> dict[str, int]:
        if not tables:
            return {}
        counts = [
            exp.select(exp.Literal.number(i).as_("i"), exp.Count(this=exp.Star()).as_("n")).from_(
                exp.to_table(t)
            )
            for i, t in enumerate(tables)
        ]
        union: exp.Query = counts[0]
        for count in counts[1:]:  # built in place: exp.union copies the tree it grows
            union = exp.Union(this=union, expression=count, distinct=False)
        return {tables[int(i)]: int(n) for i, n in self.rows(union)}

    def quantiles(
        self, column: exp.Expr, fractions: Sequence[float], *, moment: bool = False
    ) -> exp.Expr:
        # exact, over the rows given (a sample): DuckDB's reservoir_quantile is biased on a
        # sorted column (measured: its p5 of 0..2M at rank 2.5%), and no cheaper on 100k rows
        listed = exp.Array(expressions=[exp.Literal.number(q) for q in fractions])
        return exp.Anonymous(this="quantile_disc", expressions=[column, listed])

    def top_values(self, column: exp.Expr, k: int) -> exp.Expr | None:
        # sqlglot's ApproxTopK warns that DuckDB's return type differs: DuckDB's own name
        return exp.Anonymous(this="approx_top_k", expressions=[column, exp.Literal.number(k)])

    def column_stats(self, table: str, columns: Sequence[str]) -> dict[str, ColumnStats]:
        types = self.columns(table)
        known = [c for c in columns if c in types]
        if not known:
            return {}
        schema, _, name = table.rpartition(".")
        # `stats()` is answered from the table's statistics when the query is planned; the
        # table's row count from the catalog
        rows = (
            exp.select(exp.column("estimated_size"))
            .from_(exp.func("duckdb_tables"))
            .where(
                exp.and_(
                    exp.column("schema_name").eq(exp.Literal.string(schema or "main")),
                    exp.column("table_name").eq(exp.Literal.string(name)),
                )
            )
            .limit(1)
        )
        query = (
            exp.select(
                *[exp.func("stats", exp.column(c, quoted=True)) for c in known],
                rows.subquery(),
            )
            .from_(exp.table_(name, schema or None, quoted=True))
            .limit(1)
        )
        found = self.rows(query)
        if not found:
            return {}  # no rows: the row count says everything
        *columns, total = found[0]
        out = {}
        for column, stats in zip(known, columns, strict=True):
            if not isinstance(stats, dict) or not isinstance(stats.get("has_null"), bool):
                continue
            bounded = _BOUNDED.fullmatch(types[column]) is not None
            low, high = (stats.get(k) if bounded else None for k in ("min", "max"))
            unique = stats.get("approx_unique")
            distinct = unique if isinstance(unique, int) and _few(unique, total) else None
            out[column] = ColumnStats(stats["has_null"], low, high, distinct)
        return out

    def scan(self, files: Sequence[str], *, positions: bool = False) -> exp.Expr:
        options = [exp.EQ(this=exp.column("union_by_name"), expression=exp.true())]
        listed = exp.Array(expressions=[exp.Literal.string(f) for f in files])
        if not positions:
            return exp.func("read_parquet", listed, *options)
        options += [
            exp.EQ(this=exp.column("filename"), expression=exp.Literal.string(_FILE)),
            exp.EQ(this=exp.column(_ROW), expression=exp.true()),
        ]
        numbered = exp.select(
            exp.Star(except_=[exp.column(_FILE), exp.column(_ROW)]),
            exp.func("list_position", listed.copy(), exp.column(_FILE)).as_(FILE_INDEX),
            exp.column(_ROW).as_(FILE_ROW),
        ).from_(exp.func("read_parquet", listed, *options))
        return numbered.subquery("_hw_scan")

    def export(self, query: exp.Query, path: str, schema: pa.Schema) -> int:
        from headwater.engine.duckdb_files import copy_options

        ordered = exp.select(*[exp.column(f.name, quoted=True) for f in schema]).from_(
            query.subquery("_hw_export")
        )
        copy = exp.Copy(
            this=ordered.subquery(),
            kind=False,
            files=[exp.Literal.string(path)],
            params=copy_options(schema),
        )
        return self.execute(copy) or 0

    def content_hash(self, alias: str, columns: Sequence[str] = ()) -> exp.Expr:
        return exp.func("md5", exp.cast(exp.func("to_json", exp.column(alias)), "varchar"))

    def missing_column(self, error: EngineError) -> str | None:
        match = _MISSING_COLUMN.search(error.message)
        return (match["a"] or match["b"]) if match else None

    def register(self, name: str, data: pa.Table | pa.RecordBatchReader) -> None:
        self._conn.register(name, data)

    def unregister(self, name: str) -> None:
        self._conn.unregister(name)

    def frame(self, table: str) -> Any:
        return self._conn.table(table)  # unused: Python models get Arrow (no `dataframes`)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._conn.begin()
        try:
            yield
        except BaseException:
            self._conn.rollback()
            raise
        try:
            self._conn.commit()
        except duckdb.Error as err:  # a write conflict is found at commit, too
            with suppress(duckdb.Error):  # leave the cursor usable, whatever DuckDB kept
                self._conn.rollback()
            raise _error(err, "COMMIT") from err

    def compact(self) -> tuple[int, int]:
        """Rewrite the database file with only what it holds now, and reopen it.

        DuckDB keeps a deleted row's bytes in blocks it marks free (neither CHECKPOINT nor
        VACUUM clears them): every schema, table, view and comment is copied into a new file
        beside it (`COPY FROM DATABASE`), which replaces the old one in one rename. The old
        file is checkpointed and closed first, so no write-ahead log of it can be replayed
        onto the new one; a crash leaves the old file or the new one (and at most a stray
        `.compact` file, which the next compaction removes). Cursors taken before are
        closed with the old connection.

        Returns:
            The file's size before and after, in bytes.

        Raises:
            EngineError: the database is in memory or read-only, or the copy failed (the
                old file is left as it was).
        """
        if self._reopen is None or self._reopen[0] or self.path == ":memory:":
            raise EngineError(
                "only a database file open for writing can be compacted",
                hint="open the warehouse for writing (not read-only, not in memory)",
            )
        old, new = Path(self.path), Path(self.path + ".compact")
        self.execute("CHECKPOINT")  # what the log holds counts as the file's
        before = old.stat().st_size
        self._copy_into(new)
        self._conn.close()
        wal = Path(self.path + ".wal")
        if wal.exists() and wal.stat().st_size:  # never swap a file under its own log
            self._conn = _open(self.path, *self._reopen)
            new.unlink(missing_ok=True)
            raise EngineError(
                f"{self.path} kept a write-ahead log after its checkpoint: not compacted",
                hint="another process may hold the file; try again once it is closed",
            )
        new.replace(old)
        self._conn = _open(self.path, *self._reopen)
        return before, old.stat().st_size

    def _copy_into(self, new: Path) -> None:
        """Copy the whole database into the new file `new`, then checkpoint this one."""
        for stray in (new, Path(f"{new}.wal")):
            stray.unlink(missing_ok=True)
        source = exp.to_identifier(self._conn.execute("SELECT current_database()").fetchall()[0][0])
        target = exp.to_identifier("hw_compact")
        attach = exp.Attach(this=exp.alias_(exp.Literal.string(str(new)), target.copy()))
        # sqlglot has no node for COPY FROM DATABASE: the two names are rendered identifiers
        copy = f"COPY FROM DATABASE {source.sql(DIALECT)} TO {target.sql(DIALECT)}"
        self.execute(attach)
        try:
            self.execute(copy)
        finally:
            self.execute(exp.Detach(this=target.copy()))
        self.execute("CHECKPOINT")

    def cursor(self) -> DuckDBEngine:
        return DuckDBEngine(self.path, _conn=self._conn.cursor())

    def interrupt(self) -> None:
        self._conn.interrupt()

    def close(self) -> None:
        self._conn.close()

    def _query(
        self, statement: Statement, params: Mapping[str, Any] | None
    ) -> duckdb.DuckDBPyRelation:
        sql = statement if isinstance(statement, str) else statement.sql(dialect=self.dialect)
        try:
            return self._conn.sql(sql, params=dict(params) if params else None)
        except duckdb.Error as err:
            raise _error(err, sql) from err

    def _run(
        self, statement: Statement, params: Mapping[str, Any] | None
    ) -> duckdb.DuckDBPyConnection:
        sql = statement if isinstance(statement, str) else statement.sql(dialect=self.dialect)
        try:
            return self._conn.execute(sql, dict(params) if params else None)
        except duckdb.Error as err:
            raise _error(err, sql) from err


def _open(
    path: str,
    read_only: bool,
    config: dict[str, Any],
    lock_wait: float,
    files_under: Sequence[str | Path] | None,
    filesystems: Mapping[str, Mapping[str, Any]],
) -> duckdb.DuckDBPyConnection:
    """A connection to the database at `path`, set up as every one of ours is."""
    conn = _connect(path, read_only=read_only, config=config, wait=lock_wait)
    for protocol, options in filesystems.items():
        _mount(conn, protocol, options)
    # never DuckDB's progress bar on our stdout (the CLI draws its own)
    conn.execute("SET enable_progress_bar = false")
    # timestamps leave as UTC whatever the machine's zone (Iceberg accepts only UTC);
    # GLOBAL so that every cursor of this database inherits it
    conn.execute("SET GLOBAL TimeZone = 'UTC'")
    if files_under is not None:
        _sandbox(conn, files_under)
    return conn


def _mount(conn: duckdb.DuckDBPyConnection, protocol: str, options: Mapping[str, Any]) -> None:
    """Let SQL read `protocol://` paths through fsspec's filesystem of it."""
    try:
        import fsspec
    except ImportError as err:  # s3fs and gcsfs come with the `s3`/`gcs` extras
        raise EngineError(
            f"reading {protocol}:// needs fsspec", hint="pip install 'headwater[s3]'"
        ) from err
    try:
        # a fresh listing every time: a cached one would miss files written since
        filesystem = fsspec.filesystem(protocol, skip_instance_cache=True, **options)
    except (ImportError, ValueError) as err:
        raise EngineError(
            f"cannot read {protocol}:// paths: {err}",
            hint="install s3fs for s3:// (pip install 'headwater[s3]'), gcsfs for gs://",
        ) from err
    conn.register_filesystem(filesystem)


def _sandbox(conn: duckdb.DuckDBPyConnection, directories: Sequence[str | Path]) -> None:
    """Turn file access off except under `directories`, then lock the configuration so the
    SQL that follows cannot turn it back on (`SET enable_external_access = true` fails)."""
    # the trailing separator keeps `/lake` from also allowing `/lake2`
    allowed = [
        (str(d) if "://" in str(d) else str(Path(d).resolve())).rstrip("/") + "/"
        for d in directories
    ]
    # DuckDB accepts allowed_directories only once the database is started: SET, not config
    conn.execute("SET allowed_directories = $dirs", {"dirs": allowed})
    conn.execute("SET enable_external_access = false")
    conn.execute("SET lock_configuration = true")


@contextmanager
def _engine_errors(statement: Statement) -> Iterator[None]:
    try:
        yield
    except duckdb.Error as err:
        sql = statement if isinstance(statement, str) else statement.sql(dialect=DIALECT)
        raise _error(err, sql) from err


def _error(err: duckdb.Error, sql: str) -> EngineError:
    """DuckDB's error as ours: a write conflict between two transactions (another worker
    touched the same rows) is transient, as trying again after the other commits succeeds."""
    transient = isinstance(err, duckdb.TransactionException) and "conflict" in str(err).lower()
    kind = TransientEngineError if transient else EngineError
    return kind(_message(err), hint=f"while running: {_short(sql)}")


def _message(err: duckdb.Error) -> str:
    """DuckDB's first line, plus its suggestion when it has one ("Candidate bindings: …")."""
    lines = str(err).splitlines()
    hint = next((line for line in lines if line.startswith("Candidate bindings:")), None)
    return f"{lines[0]} ({hint.strip()})" if hint else lines[0]


def _short(sql: str, limit: int = 200) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
