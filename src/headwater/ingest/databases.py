"""SQL database connectors: PostgreSQL through ADBC, anything else through SQLAlchemy.

PostgreSQL is read with the ADBC driver, which streams the server's binary COPY output into
Arrow record batches: no row objects in Python. Any other SQLAlchemy URL is the slower
fallback (rows are fetched in chunks and turned into Arrow). An incremental extraction reads
rows whose cursor column is at least `since`; rows read again are recognised in `land`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pyarrow as pa
from sqlglot import exp

from headwater.contracts.connectors import PostgresConnector, SqlConnector
from headwater.contracts.secrets import Secrets
from headwater.errors import SourceError, TransientSourceError
from headwater.ingest.source import Checkpoint, Part, Rejected, cursor_text, with_positions


class DatabaseReader:
    """One extraction of a table or query, full or from the incremental `since`."""

    def __init__(
        self, connector: PostgresConnector | SqlConnector, *, state: Checkpoint, secrets: Secrets
    ) -> None:
        self.connector = connector
        self.rejected = Rejected()
        self.warnings: list[str] = []
        self.already_landed = 0
        self.direct = None
        self._state = state
        self.origin = connector.table or "query"
        self.key = f"{connector.kind}|{self.origin}|since={cursor_text(state.since)}"
        self._since = state.since
        self._secrets = secrets
        self.rows = 0

    def parts(self) -> Iterator[Part]:
        url = self._secrets.expand(self.connector.url, where="connector.url")
        read = _postgres if isinstance(self.connector, PostgresConnector) else _sqlalchemy
        dialect = "postgres" if isinstance(self.connector, PostgresConnector) else None
        query = self._query(dialect)
        try:
            for batch in read(url, query, self.connector.batch_rows):
                yield Part(with_positions(_plain(batch), self.rows), "arrow", self.origin)
                self.rows += batch.num_rows
        except SourceError:
            raise
        except Exception as err:  # the drivers' errors have no common base
            message = self._secrets.scrub(str(err).strip().splitlines()[0] if str(err) else "")
            kind = TransientSourceError if _transient(err) else SourceError
            raise kind(
                f"cannot read {self.origin} from {self._secrets.scrub(url)}: "
                f"{type(err).__name__}: {message}",
                hint="nothing of this batch was landed; check connector.url and the table",
            ) from None

    def checkpoint(self) -> Checkpoint:
        return self._state  # where it stands is the cursor, which landing sets from the data

    def describe(self) -> str:
        since = f" since {cursor_text(self._since)}" if self._since is not None else ""
        return f"{self.rows:,} rows of {self.origin}{since}"

    def _query(self, dialect: str | None) -> str:
        """SELECT * FROM the table (or the query), from `since` on: a literal, so the
        PostgreSQL driver can stream it with COPY (bound parameters cannot be)."""
        c = self.connector
        if c.table is not None:
            source: exp.Expr = exp.to_table(c.table, dialect=dialect)
        else:
            source = exp.maybe_parse(c.query or "", dialect=dialect).subquery("_hw_q")
        query = exp.select(exp.Star()).from_(source)
        if c.incremental is not None and self._since is not None:
            query = query.where(
                exp.GTE(
                    this=exp.column(c.incremental.column, quoted=True),
                    expression=_literal(self._since),
                )
            )
        return query.sql(dialect=dialect)


def _postgres(url: str, query: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
    import adbc_driver_postgresql.dbapi as adbc

    uri = "postgresql://" + url.split("://", 1)[1] if "://" in url else url
    with adbc.connect(uri) as conn, conn.cursor() as cursor:
        cursor.execute(query)
        yield from cursor.fetch_record_batch()


def _sqlalchemy(url: str, query: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(sa.text(query))
            names = list(result.keys())
            for chunk in result.partitions(batch_rows):
                columns: list[Any] = (
                    list(zip(*chunk, strict=True)) if chunk else [[] for _ in names]
                )
                yield pa.RecordBatch.from_arrays([pa.array(list(c)) for c in columns], names=names)
    finally:
        engine.dispose()


def _plain(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Extension columns (PostgreSQL numeric, json) as their storage type (text)."""
    if not any(isinstance(f.type, pa.ExtensionType) for f in batch.schema):
        return batch
    arrays = [a.storage if isinstance(a.type, pa.ExtensionType) else a for a in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _literal(value: Any) -> exp.Expr:
    if isinstance(value, datetime):
        return exp.cast(exp.Literal.string(value.isoformat()), "timestamptz")
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def _transient(err: Exception) -> bool:
    text = f"{type(err).__name__} {err}".lower()
    return any(w in text for w in ("connection", "timeout", "could not connect", "operational"))
