"""The Spark adapter (issue #21): a Spark session whose Iceberg catalog is the project's own.

pyiceberg's SQL catalog and Iceberg's Java `JdbcCatalog` keep tables in the same two tables
(`iceberg_tables`, `iceberg_namespace_properties`) under one catalog name, so a session given
the project's catalog database over JDBC, under pyiceberg's catalog name, sees every table the
Python side landed — `raw.orders` is `raw.orders` to both — and the Iceberg tables it writes
are tables of the same lake. The jars come from Maven Central into a cache (`engine.maven`).

What works so far: a session (`local[*]` by default, a `master:` URL, or Spark Connect
`remote:`), queries and statements as sqlglot ASTs rendered in Spark's dialect with named
parameters, results as Arrow, and what a stage asks of a relation (its columns, the tables,
row counts). What does not yet: Python models, Parquet scans outside the catalog, statistics
— those methods raise an EngineError that says so; `engine: spark` in headwater.yml is
refused until every model kind passes the conformance suite on it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa
from sqlglot import exp

from headwater.engine.base import (
    Capabilities,
    ColumnStats,
    Engine,
    ObjectKind,
    Params,
    Statement,
    StoredObject,
)
from headwater.engine.maven import Artifact, resolve
from headwater.errors import EngineError, SpecError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DIALECT = "spark"
CATALOG = "headwater"  # pyiceberg's catalog name (zones/lake.py): the rows both sides share
ICEBERG = Artifact("org.apache.iceberg", "iceberg-spark-runtime-4.0_2.13", "1.10.1")
DRIVERS = {
    "sqlite": Artifact("org.xerial", "sqlite-jdbc", "3.50.3.0"),
    "postgresql": Artifact("org.postgresql", "postgresql", "42.7.8"),
}
# a local session's settings: on one machine a few shuffle partitions beat Spark's 200, no
# web UI (a port nobody asked for), everything on the loopback interface, times in UTC
LOCAL = {
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "false",
}


@dataclass(frozen=True)
class SparkOptions:
    """Where the session runs: `master` (default `local[*]`) or Spark Connect `remote`, and
    any further Spark settings (`conf`), which win over headwater's."""

    master: str = "local[*]"
    remote: str | None = None
    conf: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JdbcCatalog:
    """The project's catalog database as Iceberg's JdbcCatalog reaches it."""

    url: str
    properties: Mapping[str, str]
    driver: Artifact


def jdbc_catalog(url: str) -> JdbcCatalog:
    """The JDBC form of the catalog's SQLAlchemy `url` (sqlite:///… or postgresql://…).

    Raises:
        SpecError: a database Iceberg's Java catalog cannot reach.

    Example:
        >>> jdbc_catalog("sqlite:////srv/shop/.headwater/catalog.db").url
        'jdbc:sqlite:/srv/shop/.headwater/catalog.db'
    """
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme == "sqlite":
        # sqlite:///relative.db, sqlite:////absolute.db (SQLAlchemy's forms)
        database = unquote(parts.path[1:] if not parts.netloc else parts.netloc + parts.path)
        if not database or database == ":memory:":
            raise SpecError("an in-memory catalog cannot be shared with Spark")
        return JdbcCatalog(f"jdbc:sqlite:{Path(database).resolve()}", {}, DRIVERS["sqlite"])
    if scheme in ("postgresql", "postgres"):
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
        properties = {}
        if parts.username:
            properties["jdbc.user"] = unquote(parts.username)
        if parts.password:
            properties["jdbc.password"] = unquote(parts.password)
        query = f"?{parts.query}" if parts.query else ""
        return JdbcCatalog(
            f"jdbc:postgresql://{host}{port}{parts.path}{query}", properties, DRIVERS["postgresql"]
        )
    raise SpecError(
        f"a {scheme}:// catalog cannot be shared with Spark",
        hint="use a SQLite file or a PostgreSQL database for the catalog",
    )


def session_conf(catalog_url: str, warehouse: str, options: SparkOptions) -> dict[str, str]:
    """The settings of a session whose Iceberg catalog is the project's (`catalog_url`, the
    lake at `warehouse`), jars resolved into the local cache."""
    jdbc = jdbc_catalog(catalog_url)
    prefix = f"spark.sql.catalog.{CATALOG}"
    conf = {
        **LOCAL,
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
        f"{prefix}.uri": jdbc.url,
        f"{prefix}.warehouse": warehouse,
        "spark.sql.defaultCatalog": CATALOG,
        **{f"{prefix}.{k}": v for k, v in jdbc.properties.items()},
    }
    if options.remote is None:  # a Connect server brings its own jars
        conf["spark.jars"] = ",".join(str(p) for p in resolve([ICEBERG, jdbc.driver]))
    return conf | dict(options.conf)


class SparkEngine:
    """An `Engine` on a Spark session whose Iceberg catalog is the project's catalog."""

    dialect = DIALECT
    capabilities = Capabilities()

    def __init__(self, session: SparkSession):
        self.session = session

    @classmethod
    def open(
        cls, catalog_url: str, warehouse: str, options: SparkOptions | None = None
    ) -> SparkEngine:
        """A session on `options.master` (or `remote`) over the project's catalog and lake.

        Raises:
            EngineError: pyspark is not installed, or the session did not start.
        """
        options = options or SparkOptions()
        conf = session_conf(catalog_url, warehouse, options)
        try:
            from pyspark.sql import SparkSession
        except ImportError as err:
            raise EngineError(
                "the Spark engine needs pyspark", hint="pip install 'headwater[spark]'"
            ) from err
        builder = SparkSession.builder.appName("headwater")
        builder = (
            builder.remote(options.remote) if options.remote else builder.master(options.master)
        )
        for key, value in conf.items():
            builder = builder.config(key, value)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        try:
            session = builder.getOrCreate()
        except Exception as err:  # a JVM that did not start says so in many ways
            raise EngineError(
                f"the Spark session did not start: {err}",
                hint="is Java 17 installed (java -version)? is the master reachable?",
            ) from err
        if options.remote is None:
            session.sparkContext.setLogLevel("ERROR")
        return cls(session)

    def render(self, statement: Statement, *, copy: bool = True) -> str:
        if isinstance(statement, str):
            return statement
        return statement.sql(dialect=self.dialect, copy=copy)

    def _frame(self, statement: Statement, params: Params) -> DataFrame:
        sql = self.render(statement)
        try:
            return self.session.sql(sql, args=dict(params) if params else None)
        except Exception as err:
            raise _error(err, sql) from err

    def execute(self, statement: Statement, params: Params = None) -> int | None:
        frame = self._frame(statement, params)
        try:
            frame.collect()  # DDL and DML run when asked for their (empty) result
        except Exception as err:
            raise _error(err, self.render(statement)) from err
        return None

    def read(self, statement: Statement, params: Params = None) -> pa.Table:
        frame = self._frame(statement, params)
        try:
            return frame.toArrow()
        except Exception as err:
            raise _error(err, self.render(statement)) from err

    def rows(self, statement: Statement, params: Params = None) -> list[tuple[Any, ...]]:
        frame = self._frame(statement, params)
        try:
            return [tuple(row) for row in frame.collect()]
        except Exception as err:
            raise _error(err, self.render(statement)) from err

    def head(self, statement: Statement, rows: int) -> pa.Table:
        frame = self._frame(statement, None)
        if not frame.columns:
            frame.collect()
            return pa.table({})
        try:
            return frame.limit(rows).toArrow()
        except Exception as err:
            raise _error(err, self.render(statement)) from err

    def stream(self, statement: Statement, *, batch_rows: int = 100_000) -> pa.RecordBatchReader:
        table = self.read(statement)
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(batch_rows))

    def statement_kinds(self, sql: str) -> list[str]:
        import sqlglot

        kinds = []
        for parsed in sqlglot.parse(sql, dialect=DIALECT):
            if parsed is not None:
                kinds.append(parsed.key.upper() if parsed.key else "UNKNOWN")
        return kinds

    def columns(self, relation: str | exp.Expr, params: Params = None) -> dict[str, str]:
        if isinstance(relation, str) and " " not in relation.strip():
            relation = exp.select(exp.Star()).from_(exp.to_table(relation, dialect=DIALECT))
        frame = self._frame(relation, params)
        return {f.name: f.dataType.simpleString().upper() for f in frame.schema.fields}

    def objects(self) -> dict[str, ObjectKind]:
        found: dict[str, ObjectKind] = {}
        for (namespace,) in self.rows(f"SHOW NAMESPACES IN {CATALOG}"):
            for row in self.session.sql(f"SHOW TABLES IN {CATALOG}.`{namespace}`").collect():
                if not row["isTemporary"]:
                    found[f"{namespace}.{row['tableName']}"] = ObjectKind.TABLE
            for row in self.session.sql(f"SHOW VIEWS IN {CATALOG}.`{namespace}`").collect():
                if not row["isTemporary"]:
                    found[f"{namespace}.{row['viewName']}"] = ObjectKind.VIEW
        return found

    def stored(self, name: str) -> StoredObject | None:
        kind = self.objects().get(name)
        return None if kind is None else StoredObject(kind)

    def row_counts(self, tables: Sequence[str]) -> dict[str, int]:
        if not tables:
            return {}
        counts = [
            exp.select(
                exp.Literal.string(name).as_("t"), exp.Count(this=exp.Star()).as_("n")
            ).from_(exp.to_table(name, dialect=DIALECT))
            for name in tables
        ]
        query: exp.Query = counts[0]
        for more in counts[1:]:
            query = exp.union(query, more, distinct=False)
        return {t: int(n) for t, n in self.rows(query)}

    def column_stats(self, table: str, columns: Sequence[str]) -> dict[str, ColumnStats]:
        return {}  # capabilities.column_stats is False: callers scan instead

    def quantiles(
        self, column: exp.Expr, fractions: Sequence[float], *, moment: bool = False
    ) -> exp.Expr:
        listed = exp.Array(expressions=[exp.Literal.number(q) for q in fractions])
        value = exp.func("unix_micros", column) if moment else column
        return exp.Anonymous(this="percentile", expressions=[value, listed])

    def top_values(self, column: exp.Expr, k: int) -> exp.Expr:
        raise _later("top values of a column")

    def scan(self, files: Sequence[str], *, positions: bool = False) -> exp.Expr:
        raise _later("reading Parquet files outside the catalog")

    def export(self, query: exp.Query, path: str, schema: pa.Schema) -> int:
        raise _later("exporting a query to one Parquet file")

    def content_hash(self, alias: str) -> exp.Expr:
        raise _later("content hashes of rows")

    def missing_column(self, error: EngineError) -> str | None:
        return None

    def register(self, name: str, data: pa.Table | pa.RecordBatchReader) -> None:
        table = data if isinstance(data, pa.Table) else data.read_all()
        self.session.createDataFrame(table).createOrReplaceTempView(name)

    def unregister(self, name: str) -> None:
        self.session.catalog.dropTempView(name)

    def transaction(self) -> AbstractContextManager[None]:
        return _no_transaction()

    def cursor(self) -> Engine:
        return self  # a session serves every thread

    def interrupt(self) -> None:
        self.session.interruptAll()

    def compact(self) -> tuple[int, int]:
        return (0, 0)  # Iceberg's files are compacted by its own procedures, not a file copy

    def close(self) -> None:
        self.session.stop()


@contextmanager
def _no_transaction() -> Iterator[None]:
    """Spark has no multi-statement transactions: each Iceberg commit is atomic on its own."""
    yield


def _later(what: str) -> EngineError:
    return EngineError(
        f"the Spark engine cannot do this yet: {what}",
        hint="issue #21 is in progress; use `engine: duckdb` for now",
    )


def _error(err: Exception, sql: str) -> EngineError:
    """An EngineError of Spark's failure: its first line, the statement in the hint."""
    message = str(getattr(err, "desc", None) or err).strip().splitlines()
    return EngineError(
        f"Spark: {message[0] if message else type(err).__name__}", hint=f"statement: {sql[:2000]}"
    )
