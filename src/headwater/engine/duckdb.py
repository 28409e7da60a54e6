"""The DuckDB engine: the embedded default and the engine double for tests.

One connection per process; each worker thread takes its own `cursor()` (a DuckDB
connection sharing the same database), so independent models build in parallel.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from headwater.engine.base import Statement
from headwater.errors import EngineError


class DuckDBEngine:
    """An `Engine` on a DuckDB database file (or `:memory:`).

    `read_only` opens the file without write access (any number of readers, no writer).
    `files_under` sandboxes the connection: no file outside those directories can be read or
    written, no extension loaded, and no setting changed afterwards; None leaves every file
    the process can reach open to SQL.
    """

    dialect = "duckdb"

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        threads: int | None = None,
        read_only: bool = False,
        files_under: Sequence[str | Path] | None = None,
        _conn: duckdb.DuckDBPyConnection | None = None,
    ):
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
            try:
                _conn = duckdb.connect(str(path), read_only=read_only, config=config)
            except duckdb.Error as err:
                locked = "lock" in str(err).lower()
                raise EngineError(
                    f"cannot open the warehouse {path}: {_message(err)}",
                    hint="another headwater process may be writing it"
                    if locked
                    else "point `warehouse:` at a DuckDB file headwater can write",
                ) from err
            # timestamps leave as UTC whatever the machine's zone (Iceberg accepts only UTC);
            # GLOBAL so that every cursor of this database inherits it
            _conn.execute("SET GLOBAL TimeZone = 'UTC'")
            if files_under is not None:
                _sandbox(_conn, files_under)
        self.path = str(path)
        self._conn = _conn

    def execute(self, statement: Statement, params: Mapping[str, Any] | None = None) -> None:
        self._run(statement, params)

    def read(self, statement: Statement, params: Mapping[str, Any] | None = None) -> pa.Table:
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

    def rows(
        self, statement: Statement, params: Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        return self._run(statement, params).fetchall()

    def statement_kinds(self, sql: str) -> list[str]:
        """What DuckDB's own parser says each statement of `sql` is: `SELECT`, `COPY`, …
        (`UNKNOWN` for a kind this client library cannot name)."""
        try:
            statements = self._conn.extract_statements(sql)
        except duckdb.Error as err:
            raise EngineError(_message(err), hint=f"while running: {_short(sql)}") from err
        kinds = []
        for statement in statements:
            try:
                kinds.append(statement.type.name)
            except ValueError:  # e.g. UPDATE EXTENSIONS, newer than the enum
                kinds.append("UNKNOWN")
        return kinds

    def register(self, name: str, data: pa.Table | pa.RecordBatchReader) -> None:
        self._conn.register(name, data)

    def unregister(self, name: str) -> None:
        self._conn.unregister(name)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._conn.begin()
        try:
            yield
        except BaseException:
            self._conn.rollback()
            raise
        self._conn.commit()

    def cursor(self) -> DuckDBEngine:
        return DuckDBEngine(self.path, _conn=self._conn.cursor())

    def close(self) -> None:
        self._conn.close()

    def _query(
        self, statement: Statement, params: Mapping[str, Any] | None
    ) -> duckdb.DuckDBPyRelation:
        sql = statement if isinstance(statement, str) else statement.sql(dialect=self.dialect)
        try:
            return self._conn.sql(sql, params=dict(params) if params else None)
        except duckdb.Error as err:
            raise EngineError(_message(err), hint=f"while running: {_short(sql)}") from err

    def _run(
        self, statement: Statement, params: Mapping[str, Any] | None
    ) -> duckdb.DuckDBPyConnection:
        sql = statement if isinstance(statement, str) else statement.sql(dialect=self.dialect)
        try:
            return self._conn.execute(sql, dict(params) if params else None)
        except duckdb.Error as err:
            raise EngineError(_message(err), hint=f"while running: {_short(sql)}") from err


def _sandbox(conn: duckdb.DuckDBPyConnection, directories: Sequence[str | Path]) -> None:
    """Turn file access off except under `directories`, then lock the configuration so the
    SQL that follows cannot turn it back on (`SET enable_external_access = true` fails)."""
    # the trailing separator keeps `/lake` from also allowing `/lake2`
    allowed = [str(Path(d).resolve()).rstrip("/") + "/" for d in directories]
    # DuckDB accepts allowed_directories only once the database is started: SET, not config
    conn.execute("SET allowed_directories = $dirs", {"dirs": allowed})
    conn.execute("SET enable_external_access = false")
    conn.execute("SET lock_configuration = true")


@contextmanager
def _engine_errors(statement: Statement) -> Iterator[None]:
    try:
        yield
    except duckdb.Error as err:
        sql = statement if isinstance(statement, str) else statement.sql(dialect="duckdb")
        raise EngineError(_message(err), hint=f"while running: {_short(sql)}") from err


def _message(err: duckdb.Error) -> str:
    """DuckDB's first line, plus its suggestion when it has one ("Candidate bindings: …")."""
    lines = str(err).splitlines()
    hint = next((line for line in lines if line.startswith("Candidate bindings:")), None)
    return f"{lines[0]} ({hint.strip()})" if hint else lines[0]


def _short(sql: str, limit: int = 200) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
