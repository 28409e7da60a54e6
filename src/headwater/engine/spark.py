"""The Spark adapter (issue #21): a Spark session whose Iceberg catalogs are the project's own.

pyiceberg's SQL catalog and Iceberg's Java `JdbcCatalog` keep tables in the same two tables
(`iceberg_tables`, `iceberg_namespace_properties`) under a catalog name, so a session given
the project's catalog database over JDBC sees, in its catalog `headwater` (pyiceberg's name),
every table the Python side landed — and the Iceberg tables it writes there are the lake's.
A second catalog of the same database, `hw_warehouse`, is the warehouse (DuckDB's file on the
embedded default), and the session's default: raw views over snapshots of the lake's tables,
model versions as Iceberg tables in the lake's `_warehouse/` folder, and the environments'
views. The jars come from Maven Central into a cache (`engine.maven`).

What works: a session (`local[*]` by default, a `master:` URL, or Spark Connect `remote:`),
one Spark context a process and a session of its own for each project (`_session`);
statements as sqlglot ASTs rendered in Spark's dialect (engine/spark_sql.py rewrites what
sqlglot gets wrong), with named parameters, scripts split into statements; temporary tables
kept by local checkpoints; results as Arrow; rows written counted from Iceberg's snapshot
summaries; Python models on DataFrames; every model kind and rule type, equal to DuckDB's
(the conformance suite: the `engine` fixture of tests/conftest.py); a table written whole
measured as it is written (engine/spark_measure.py: its audit and profile read no rows);
`headwater sql`, its statements refused by kind before they run (Spark has no sandbox).
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa
from sqlglot import exp

from headwater.engine.base import (
    FILE_INDEX,
    FILE_ROW,
    S3_SCHEMES,
    Capabilities,
    ColumnStats,
    Engine,
    ObjectKind,
    Params,
    Statement,
    StoredObject,
)
from headwater.engine.maven import Artifact, resolve
from headwater.engine.spark_sql import spark_nodes
from headwater.errors import EngineError, SpecError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from headwater.engine.spark_measure import Written

DIALECT = "spark"
CATALOG = "headwater"  # pyiceberg's catalog name (zones/lake.py): the rows both sides share
# the warehouse (DuckDB's file on the embedded default): raw views, model versions and the
# views of environments, as Iceberg tables and views of a second catalog of the same
# database, in the lake's `_warehouse/` folder; the session's default catalog, so a model's
# `raw.orders` is the raw view and `headwater.raw.orders` the lake's table under it
WAREHOUSE = "hw_warehouse"
ICEBERG = Artifact("org.apache.iceberg", "iceberg-spark-runtime-4.1_2.13", "1.12.0")
# Iceberg's S3FileIO with the AWS SDK it needs, shaded: for a lake on s3:// (62 MB, fetched once)
AWS = Artifact("org.apache.iceberg", "iceberg-aws-bundle", "1.12.0")
S3_IO = "org.apache.iceberg.aws.s3.S3FileIO"
DRIVERS = {
    "sqlite": Artifact("org.xerial", "sqlite-jdbc", "3.50.3.0"),
    "postgresql": Artifact("org.postgresql", "postgresql", "42.7.8"),
}
VIEWS = 4  # views an environment's flip replaces at once (`_batches`)
# a local session's settings: on one machine a few shuffle partitions beat Spark's 200, no
# web UI (a port nobody asked for), everything on the loopback interface, times in UTC
LOCAL = {
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "false",
    "spark.ui.showConsoleProgress": "false",  # the run's own progress is headwater's
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
    pool: Mapping[str, str] = field(default_factory=dict)  # the catalog's own settings


def jdbc_catalog(url: str) -> JdbcCatalog:
    """The JDBC form of the catalog's SQLAlchemy `url` (sqlite:///… or postgresql://…).

    Raises:
        SpecError: a database Iceberg's Java catalog cannot reach.

    Example:
        >>> jdbc_catalog("postgresql://hw@db:5432/catalog").url
        'jdbc:postgresql://db:5432/catalog'
    """
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme == "sqlite":
        # sqlite:///relative.db, sqlite:////absolute.db (SQLAlchemy's forms)
        database = unquote(parts.path[1:] if not parts.netloc else parts.netloc + parts.path)
        if not database or database == ":memory:":
            raise SpecError("an in-memory catalog cannot be shared with Spark")
        # both sides write the file: a transaction takes the write lock when it begins (never
        # a read turned write, which SQLite refuses once another connection wrote: BUSY_
        # SNAPSHOT), and waits for it as long as the Python side's connections do
        options = "busy_timeout=30000&transaction_mode=IMMEDIATE&journal_mode=WAL"
        # and one connection per catalog: two of Spark's own would contend for the lock
        return JdbcCatalog(
            f"jdbc:sqlite:{Path(database).resolve()}?{options}",
            {},
            DRIVERS["sqlite"],
            {"clients": "1"},
        )
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


def session_conf(
    catalog_url: str,
    warehouse: str,
    options: SparkOptions,
    io: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The settings of a session whose Iceberg catalog is the project's (`catalog_url`, the
    lake at `warehouse`, its object store reached with the FileIO properties `io`), jars
    resolved into the local cache."""
    jdbc = jdbc_catalog(catalog_url)
    s3 = warehouse.split("://", 1)[0].lower() in S3_SCHEMES
    # Spark's own session catalog keeps nothing of ours, but makes its folder where the
    # process runs: in the lake's instead (a local one: Spark has no s3:// file system)
    session = f"{warehouse.rstrip('/')}/_warehouse/_session"
    if not warehouse.startswith("file://"):
        session = (Path(tempfile.gettempdir()) / "headwater-spark-session").as_uri()
    conf = {
        **LOCAL,
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        "spark.sql.defaultCatalog": WAREHOUSE,
        "spark.sql.warehouse.dir": session,
    }
    files = {**({"io-impl": S3_IO} if s3 else {}), **(io or {})}
    for name, folder in ((CATALOG, warehouse), (WAREHOUSE, f"{warehouse.rstrip('/')}/_warehouse")):
        prefix = f"spark.sql.catalog.{name}"
        conf |= {
            prefix: "org.apache.iceberg.spark.SparkCatalog",
            f"{prefix}.catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
            f"{prefix}.uri": jdbc.url,
            f"{prefix}.warehouse": folder,
            # the catalog tables with their `iceberg_type` (pyiceberg makes them so): views
            f"{prefix}.jdbc.schema-version": "V1",
            # pyiceberg made them; the Java side's own check of them leaves a statement open
            # on SQLite, whose stale snapshot then refuses every later commit (BUSY_SNAPSHOT)
            f"{prefix}.jdbc.init-catalog-tables": "false",
            **{f"{prefix}.{k}": v for k, v in jdbc.properties.items()},
            **{f"{prefix}.{k}": v for k, v in jdbc.pool.items()},
            **{f"{prefix}.{k}": v for k, v in files.items()},
        }
    if options.remote is None:  # a Connect server brings its own jars and logs
        log4j = resources.files("headwater.engine").joinpath("spark_log4j2.properties")
        conf["spark.driver.extraJavaOptions"] = f"-Dlog4j.configurationFile={log4j}"
        # S3FileIO's jar whatever the lake: a JVM's driver keeps the classpath it started
        # with, so a later session over a lake on S3 would not find it
        jars = [ICEBERG, AWS, *DRIVERS.values()]
        conf["spark.jars"] = ",".join(str(p) for p in resolve(jars))
    return conf | dict(options.conf)


class SparkEngine:
    """An `Engine` on a Spark session whose Iceberg catalog is the project's catalog."""

    dialect = DIALECT
    capabilities = Capabilities(
        arrow_tables=True, column_stats=True, comments=True, dataframes=True
    )

    def __init__(
        self,
        session: SparkSession,
        *,
        owner: bool = True,
        measured: dict[str, tuple[int, dict[str, ColumnStats]]] | None = None,
        profiles: bool = True,
        io: Mapping[str, str] | None = None,
        local: _Local | None = None,
    ):
        self.session = session
        self._local = local or _Local()  # DuckDB, which profiles the files Spark writes
        if not self._classic:  # Spark Connect: no JVM here to read a view's comment back
            self.capabilities = replace(SparkEngine.capabilities, comments=False)
        self._io = dict(io or {})  # how Iceberg reaches the lake's object store (`_filesystem`)
        self._owner = owner  # a cursor shares its engine's session: closing it stops nothing
        # whether a write measures what profiles use (distinct values, means, quantiles) or
        # only what rules do (NULLs, bounds): `_measure`
        self._profiles = profiles
        # the tables written whole by this engine and its cursors → the Iceberg snapshot they
        # wrote and their columns' statistics, measured as they were written (`_measure`)
        self._measured = {} if measured is None else measured
        # this cursor's temporary tables: their names → the session's views holding them
        # (the session's cursors share its views; each cursor's are its own, as DuckDB's are)
        self._scratch: dict[str, str] = {}

    @classmethod
    def open(
        cls,
        catalog_url: str,
        warehouse: str,
        options: SparkOptions | None = None,
        *,
        profiles: bool = True,
        io: Mapping[str, str] | None = None,
    ) -> SparkEngine:
        """A session on `options.master` (or `remote`) over the project's catalog and lake
        (`io`: how Iceberg reaches its object store, see `session_conf`).

        Raises:
            EngineError: pyspark is not installed, or the session did not start.
        """
        options = options or SparkOptions()
        conf = session_conf(catalog_url, warehouse, options, io)
        try:
            from pyspark.sql import SparkSession
        except ImportError as err:
            raise EngineError(
                "the Spark engine needs pyspark", hint="pip install 'headwater[spark]'"
            ) from err
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        try:
            session = _session(SparkSession, conf, options)
        except EngineError:
            raise
        except Exception as err:  # a JVM that did not start says so in many ways
            raise EngineError(
                f"the Spark session did not start: {err}",
                hint="is Java 17 installed (java -version)? is the master reachable?",
            ) from err
        if options.remote is None:
            session.sparkContext.setLogLevel("ERROR")
        # pyspark logs every failed query's whole Java stack; headwater reports the error
        logging.getLogger("SQLQueryContextLogger").disabled = True
        return cls(session, profiles=profiles, io=io)

    def render(self, statement: Statement, *, copy: bool = True) -> str:
        if isinstance(statement, str):
            return statement
        tree = statement.copy() if copy else statement
        if self._scratch:
            tree = tree.transform(self._scratch_names, copy=False)
        return tree.transform(spark_nodes, copy=False).sql(dialect=self.dialect)

    def _scratch_names(self, node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and not node.args.get("db") and node.name in self._scratch:
            node.set("this", exp.to_identifier(self._scratch[node.name]))
        return node

    def _frame(self, statement: Statement, params: Params) -> DataFrame:
        sql = self.render(statement)
        try:
            return self.session.sql(sql, args=dict(params) if params else None)
        except Exception as err:
            raise _error(err, sql) from err

    def execute(self, statement: Statement, params: Params = None) -> int | None:
        if isinstance(statement, exp.Create) and _temporary(statement):
            self._keep(statement, params)
            return None
        if isinstance(statement, exp.Create) and _whole(statement) and self._classic:
            return self._measure(statement, params)
        if isinstance(statement, exp.Drop) and statement.kind == "TABLE":
            dropped = [t for t in _dropped(statement) if t in self._scratch]
            for name in dropped:
                self.session.catalog.dropTempView(self._scratch.pop(name))
            if dropped:
                return None
        # Spark runs one statement a call: a script (an environment's views flipped at once)
        # is run statement by statement, views replaced side by side (see `_batches`)
        for batch in _batches(_split(self.render(statement))):
            if len(batch) == 1:
                self._run(batch[0], params)
                continue
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(VIEWS, len(batch))) as pool:
                for done in [pool.submit(self._run, one, params) for one in batch]:
                    done.result()  # the first error, once every statement has run
        return self._written(statement)

    def _run(self, sql: str, params: Params) -> None:
        try:
            # DDL and DML run when asked for their (empty) result
            self.session.sql(sql, args=dict(params) if params else None).collect()
        except Exception as err:
            raise _error(err, sql) from err

    def _keep(self, statement: exp.Create, params: Params) -> None:
        """A temporary table: its query's rows computed now and kept by the session (a local
        checkpoint: a view would compute them again when read, after what they come from
        changed), as a view of this cursor's own. Its rows are not counted (a job more)."""
        name = statement.this.name
        if name in self._scratch and not statement.args.get("replace"):
            raise EngineError(f"the temporary table {name} exists")
        sql = self.render(statement.expression)
        try:
            frame = self.session.sql(sql, args=dict(params) if params else None)
            self._name(name, frame.localCheckpoint(eager=True))
        except Exception as err:
            raise _error(err, sql) from err

    def _measure(self, statement: exp.Create, params: Params) -> int:
        """A CREATE [OR REPLACE] TABLE AS, its table's statistics kept for `column_stats`
        with the snapshot the write committed: rows, NULLs and bounds from the metrics of the
        data files it wrote; with profiles, distinct values, means, quantiles and top values
        measured in those files by DuckDB in this process, when they are few enough (see
        engine/spark_measure.py)."""
        from headwater.engine.spark_measure import LOCAL_BYTES, from_files

        sql = self.render(statement)
        try:
            self.session.sql(sql, args=dict(params) if params else None).collect()
        except Exception as err:
            raise _error(err, sql) from err
        target: exp.Table = statement.this
        table = self._table(target)
        snapshot = None if table is None else table.currentSnapshot()
        if table is None or snapshot is None:
            return self._written(statement) or 0
        written = from_files(self.session._jvm, table, snapshot)
        stats = written.stats
        if self._profiles and written.files and written.bytes <= LOCAL_BYTES:
            stats = self._profiled(written)
        self._measured[_key(target)] = (snapshot.snapshotId(), stats)
        return written.rows

    def _profiled(self, written: Written) -> dict[str, ColumnStats]:
        """The statistics of what was `written`, with what profiles use besides measured in
        the data files it committed (spark_measure.profile_files); without, when the files
        cannot be read here (the profile then scans for it)."""
        import duckdb

        from headwater.engine.spark_measure import profile_files

        files = [location for location, _ in written.files]
        try:
            filesystem = self._filesystem(files[0])
            with self._local.cursor() as connection:
                located = [_within(f) for f in files]
                measured = profile_files(
                    located, written.kinds, written.rows, connection, filesystem
                )
        except (OSError, ValueError, pa.ArrowException, duckdb.Error):
            return written.stats
        out = dict(written.stats)
        for name, more in measured.items():
            if name in out:
                out[name] = replace(
                    out[name],
                    distinct=more.distinct,
                    mean=more.mean,
                    quantiles=more.quantiles,
                    top=more.top,
                )
            elif more.nonnull is not None:  # a column Iceberg keeps no metrics of
                nulls = written.rows - more.nonnull
                out[name] = ColumnStats(may_be_null=nulls > 0, nulls=nulls, distinct=more.distinct)
        return out

    def _filesystem(self, location: str) -> Any:
        """An Arrow file system that reads the lake's files at `location` (a URI)."""
        import pyarrow.fs as pafs

        scheme = urlsplit(location).scheme.lower()
        if scheme in ("", "file"):
            return pafs.LocalFileSystem()
        if scheme not in S3_SCHEMES:
            raise ValueError(f"no Arrow file system for {location}")
        io = self._io
        return pafs.S3FileSystem(
            access_key=io.get("s3.access-key-id"),
            secret_key=io.get("s3.secret-access-key"),
            session_token=io.get("s3.session-token"),
            region=io.get("client.region") or io.get("s3.region"),
            endpoint_override=io.get("s3.endpoint"),
            force_virtual_addressing=io.get("s3.force-virtual-addressing") == "true",
        )

    def _name(self, name: str, frame: DataFrame) -> None:
        """`frame` readable as `name` by this cursor: a session view of a name of its own."""
        view = self._scratch.get(name) or f"{name}_{id(self):x}_{len(self._scratch)}"
        frame.createOrReplaceTempView(view)
        self._scratch[name] = view

    def _written(self, statement: Statement) -> int | None:
        """The rows a CREATE TABLE AS or an INSERT just wrote: the `added-records` of the
        target's newest Iceberg snapshot (Spark answers DDL and DML with no count); None for
        any other statement."""
        target = None
        if isinstance(statement, exp.Create) and statement.kind == "TABLE":
            target = statement.this if statement.expression is not None else None
        elif isinstance(statement, exp.Insert):
            target = statement.this
        if isinstance(target, exp.Schema):
            target = target.this
        if not isinstance(target, exp.Table):
            return None
        added = self._added(target)
        if added is not None:
            return added
        # Iceberg's metadata table of the target: `<namespace>.<table>.snapshots`
        snapshots = exp.to_table(f"{self.render(target)}.snapshots", dialect=DIALECT)
        newest = (
            exp.select(
                exp.Bracket(
                    this=exp.column("summary"), expressions=[exp.Literal.string("added-records")]
                ).as_("n")
            )
            .from_(snapshots)
            .order_by(exp.column("committed_at").desc())
            .limit(1)
        )
        try:
            found = self.rows(newest)
        except EngineError:
            return None  # not an Iceberg table (a temporary view's rows are not kept)
        return int(found[0][0]) if found and found[0][0] is not None else None

    def _added(self, target: exp.Table) -> int | None:
        """`added-records` of `target`'s current snapshot, from the table its catalog just
        committed (through the JVM: no Spark job, where the `.snapshots` query is one, 0.1 to
        0.5 s a model); None when it cannot be read so (Spark Connect, an unqualified name, a
        view)."""
        snapshot = self._snapshot(target)
        try:
            value = None if snapshot is None else snapshot.summary().get("added-records")
        except Exception:  # py4j's errors: the query of `_written` answers instead
            return None
        return None if value is None else int(value)

    @property
    def _classic(self) -> bool:
        """Whether the session runs in this process's JVM (not Spark Connect)."""
        return getattr(self.session, "_jvm", None) is not None

    def _snapshot(self, target: exp.Table) -> Any:
        """The Iceberg table `target`'s current snapshot (a Java object): see `_table`."""
        table = self._table(target)
        return None if table is None else table.currentSnapshot()

    def _table(self, target: exp.Table) -> Any:
        """The Iceberg table `target` (a Java object), from its catalog, through the JVM: no
        Spark job; None when it cannot be read so (Spark Connect, an unqualified name, a
        view)."""
        if not target.db:
            return None
        plugin = self._warehouse(target.catalog or WAREHOUSE)
        if plugin is None:
            return None
        try:
            return plugin.loadTable(self._identifier(target.db, target.name)).table()
        except Exception:  # py4j's errors: not an Iceberg table of a catalog
            return None

    def _warehouse(self, catalog: str = WAREHOUSE) -> Any:
        """The session's catalog `catalog` (a Java object: Spark's catalog plugin), or None
        on Spark Connect (no JVM in this process)."""
        if not self._classic:
            return None
        session: Any = self.session
        return session._jsparkSession.sessionState().catalogManager().catalog(catalog)

    def _identifier(self, namespace: str, name: str) -> Any:
        """Spark's identifier of `namespace`.`name` (a Java object)."""
        session: Any = self.session
        names = session.sparkContext._gateway.new_array(session._jvm.java.lang.String, 1)
        names[0] = namespace
        return session._jvm.org.apache.spark.sql.connector.catalog.Identifier.of(names, name)

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
        """Each statement's kind as sqlglot parses it (SELECT, INSERT, CREATE, …; SELECT for
        SHOW and DESCRIBE; COMMAND for what sqlglot keeps as text); FILES for a statement
        reading files by path (parquet.`/some/path`) or calling Java (reflect, java_method):
        Spark has no sandbox that would refuse them."""
        import sqlglot

        kinds = []
        quiet = logging.getLogger("sqlglot")  # "falling back to a Command": said by the kind
        level, quiet.level = quiet.level, logging.ERROR
        try:
            statements = sqlglot.parse(sql, dialect=DIALECT)
        finally:
            quiet.setLevel(level)
        for parsed in statements:
            if parsed is None:
                continue
            kind = parsed.key.upper() if parsed.key else "UNKNOWN"
            shown = isinstance(parsed, exp.Command) and str(parsed.this).upper() == "SHOW"
            if shown or isinstance(parsed, exp.Describe):
                kind = "SELECT"  # reads returning rows, as DuckDB's parser calls them too
            elif _reaches_files(parsed):
                kind = "FILES"
            kinds.append(kind)
        return kinds

    def columns(self, relation: str | exp.Expr, params: Params = None) -> dict[str, str]:
        if isinstance(relation, str) and " " not in relation.strip():
            relation = exp.select(exp.Star()).from_(exp.to_table(relation, dialect=DIALECT))
        frame = self._frame(relation, params)
        return {f.name: f.dataType.simpleString().upper() for f in frame.schema.fields}

    def objects(self) -> dict[str, ObjectKind]:
        found: dict[str, ObjectKind] = {}
        for (namespace,) in self.rows(f"SHOW NAMESPACES IN {WAREHOUSE}"):
            found |= self._listed(namespace)
        return found

    def stored(self, name: str) -> StoredObject | None:
        namespace, _, short = name.rpartition(".")
        if not namespace:
            return None
        plugin = self._warehouse()
        if plugin is not None:  # the catalog asked through the JVM: no SQL, milliseconds
            identifier = self._identifier(namespace, short)
            try:
                if plugin.viewExists(identifier):
                    return StoredObject(ObjectKind.VIEW, _comment(plugin.loadView(identifier)))
                if plugin.tableExists(identifier):
                    return StoredObject(ObjectKind.TABLE, _comment(plugin.loadTable(identifier)))
            except Exception as err:  # py4j's: the catalog's database did not answer
                raise _error(err, f"-- the catalog asked for {name}") from err
            return None
        try:  # its namespace only: a refresh of the raw views asks for each of them
            kind = self._listed(namespace).get(name)
        except EngineError:
            return None  # no such namespace yet
        return None if kind is None else StoredObject(kind)  # Spark Connect: no comment

    def _listed(self, namespace: str) -> dict[str, ObjectKind]:
        """The tables and views of one namespace of the warehouse (an Iceberg catalog lists
        its views apart from its tables)."""
        found: dict[str, ObjectKind] = {}
        for kind, listing, column in (
            (ObjectKind.TABLE, "TABLES", "tableName"),
            (ObjectKind.VIEW, "VIEWS", "viewName"),
        ):
            shown = f"SHOW {listing} IN {WAREHOUSE}.`{namespace}`"
            try:
                rows = self.session.sql(shown).collect()
            except Exception as err:
                raise _error(err, shown) from err
            for row in rows:
                if not row["isTemporary"]:
                    found[f"{namespace}.{row[column]}"] = kind
        return found

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
        """What the write of `table` measured (`_measure`), while the table is still at the
        snapshot that write committed; nothing of a table written otherwise (Spark keeps no
        statistics it tells without reading rows): callers scan for it."""
        target = exp.to_table(table, dialect=DIALECT)
        measured = self._measured.get(_key(target))
        if measured is None:
            return {}
        snapshot = self._snapshot(target)
        if snapshot is None or snapshot.snapshotId() != measured[0]:
            return {}
        return {c: measured[1][c] for c in columns if c in measured[1]}

    def quantiles(
        self, column: exp.Expr, fractions: Sequence[float], *, moment: bool = False
    ) -> exp.Expr:
        listed = exp.Array(expressions=[exp.Literal.number(q) for q in fractions])
        # a moment as microseconds since the epoch (Spark's percentile takes numbers); a DATE
        # cast to a timestamp first (unix_micros takes no date)
        value = exp.func("unix_micros", exp.cast(column, "timestamp")) if moment else column
        return exp.Anonymous(this="percentile", expressions=[value, listed])

    def top_values(self, column: exp.Expr, k: int) -> exp.Expr | None:
        # Spark's approx_top_k: (item, count) pairs, the most frequent first, NULL counted
        # as a value: one more, and NULL left out
        counted = exp.Anonymous(
            this="approx_top_k", expressions=[column, exp.Literal.number(k + 1)]
        )
        pair = exp.to_identifier("pair")
        kept = exp.Anonymous(
            this="filter",
            expressions=[
                counted,
                exp.Lambda(
                    this=exp.Dot(this=exp.column(pair), expression=exp.to_identifier("item"))
                    .is_(exp.null())
                    .not_(),
                    expressions=[pair],
                ),
            ],
        )
        first = exp.Anonymous(
            this="slice", expressions=[kept, exp.Literal.number(1), exp.Literal.number(k)]
        )
        return exp.Dot(this=first, expression=exp.to_identifier("item"))

    def scan(self, files: Sequence[str], *, positions: bool = False) -> exp.Expr:
        """The lake table's snapshot the files make up (`zones.lake.LakeFiles`), read through
        Iceberg: its schema's evolution applied, its positions from `_file` and `_pos`."""
        table, snapshot = getattr(files, "table", None), getattr(files, "snapshot", None)
        if table is None or snapshot is None:
            raise _later("reading Parquet files that are no snapshot of a lake table")
        source = exp.to_table(f"{CATALOG}.{table}", dialect=DIALECT)
        source.set(
            "version",
            exp.Version(this="VERSION", kind="AS OF", expression=exp.Literal.number(snapshot)),
        )
        columns: list[exp.Expr] = [exp.Star()]
        if positions:
            names = exp.Array(expressions=[exp.Literal.string(Path(f).name) for f in files])
            name = exp.RegexpExtract(
                this=exp.column("_file"), expression=exp.Literal.string("[^/]+$")
            )
            columns += [
                exp.func("array_position", names, name).as_(FILE_INDEX),
                exp.column("_pos").as_(FILE_ROW),
            ]
        return exp.select(*columns).from_(source).subquery("_hw_lake")

    def export(self, query: exp.Query, path: str, schema: pa.Schema) -> int:
        """Through the driver: the result as Arrow, cast to `schema` (its Iceberg field ids
        in the fields' metadata), written as one Parquet file. A data product is bounded by
        the driver's memory here, where DuckDB streams it."""
        import pyarrow.parquet as pq

        ordered = exp.select(*[exp.column(f.name, quoted=True) for f in schema]).from_(
            query.subquery("_hw_export")
        )
        table = self.read(ordered)
        table = pa.Table.from_arrays(
            [
                column.cast(field.type) if column.type != field.type else column
                for column, field in zip(table.columns, schema, strict=True)
            ],
            schema=schema,
        )
        pq.write_table(table, path)
        return int(table.num_rows)

    def content_hash(self, alias: str, columns: Sequence[str] = ()) -> exp.Expr:
        # the row of `alias` as one JSON text: its columns in a struct (Spark's to_json takes
        # no table alias, as DuckDB's does), named when given (`alias.*` of an outer row does
        # not expand in a correlated subquery); the same text either way
        fields: list[exp.Expr] = [
            exp.PropertyEQ(
                this=exp.to_identifier(c, quoted=True), expression=exp.column(c, alias, quoted=True)
            )
            for c in columns
        ] or [exp.Column(this=exp.Star(), table=exp.to_identifier(alias))]
        return exp.func("md5", exp.func("to_json", exp.Struct(expressions=fields)))

    def missing_column(self, error: EngineError) -> str | None:
        return None

    def register(self, name: str, data: Any) -> None:
        """Arrow data (sent to the session: a small table), or a DataFrame of the session,
        readable as `name` by this cursor."""
        if isinstance(data, pa.RecordBatchReader):
            data = data.read_all()
        self._name(name, self.session.createDataFrame(data) if isinstance(data, pa.Table) else data)

    def unregister(self, name: str) -> None:
        if name in self._scratch:
            self.session.catalog.dropTempView(self._scratch.pop(name))

    def frame(self, table: str) -> DataFrame:
        return self._frame(exp.select(exp.Star()).from_(exp.to_table(table)), None)

    def transaction(self) -> AbstractContextManager[None]:
        return _no_transaction()

    def cursor(self) -> Engine:
        # a session serves every thread; what a write measured is known to every cursor
        return SparkEngine(
            self.session,
            owner=False,
            measured=self._measured,
            profiles=self._profiles,
            io=self._io,
            local=self._local,
        )

    def interrupt(self) -> None:
        self.session.interruptAll()

    def compact(self) -> tuple[int, int]:
        return (0, 0)  # Iceberg's files are compacted by its own procedures, not a file copy

    def close(self) -> None:
        global _open
        if self._owner:  # the context stays up for the process's next project (see _session)
            self._local.close()
            with _lock:
                _open -= 1
            self._owner = False


class _Local:
    """The DuckDB database (in memory) that profiles the data files Spark's writes commit:
    opened when first used, shared by an engine and its cursors, a cursor of it a call."""

    def __init__(self) -> None:
        self._connection: Any = None
        self._lock = threading.Lock()

    def cursor(self) -> Any:
        with self._lock:
            if self._connection is None:
                import duckdb

                self._connection = duckdb.connect()
            return self._connection.cursor()

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


# one Spark context per process (Spark's rule), started by the first project that opens an
# engine; each project's engine is a session of its own on it (`newSession`), with its own
# catalogs, so two projects in one process (a test suite, the scheduler) never see each
# other's tables, and the second one does not wait for a JVM to start
_lock = threading.Lock()
_open = 0  # engines open on the context
# the context's settings a session cannot change, but the folder of Spark's own session
# catalog, which holds nothing of ours: the first project's is as good as any
_UNFIXED = {"spark.sql.warehouse.dir"}
_PROJECT = ("spark.sql.catalog.", "spark.sql.defaultCatalog")  # the settings naming a project


def _comment(stored: Any) -> str | None:
    """The comment of a table or view of a catalog (a Java object), None without one."""
    found = stored.properties().get("comment")
    return None if found is None else str(found)


def _within(location: str) -> str:
    """A file's URI as a path of its Arrow file system: file:/a/b → /a/b, s3://b/k → b/k."""
    parts = urlsplit(location)
    if parts.scheme.lower() in ("", "file"):
        return unquote(parts.path)
    return f"{parts.netloc}{parts.path}"


def _session(spark: type[SparkSession], conf: Mapping[str, str], options: SparkOptions) -> Any:
    """A new session for one project: on this process's Spark context when its fixed
    settings (master, jars, extensions, …) are `conf`'s; otherwise on a new context, once no
    engine is open on the old one.

    Raises:
        EngineError: another project's engine is open on a context of other fixed settings.
    """
    global _open
    from pyspark import SparkContext

    if options.remote is not None:  # a Connect server's sessions are its own to keep apart
        builder = spark.builder.remote(options.remote)
        for key, value in conf.items():
            builder = builder.config(key, value)
        session = builder.create()
        with _lock:
            _open += 1
        return session
    with _lock:
        context = SparkContext._active_spark_context
        if context is not None:
            fixed = {
                k: v for k, v in conf.items() if k not in _UNFIXED and not _per_session(context, k)
            }
            running = context.getConf()
            # Spark adds its own options to the JVM's (`--add-opens=…`): ours must be among them
            differ = sorted(
                k for k, v in fixed.items() if not set(v.split()) <= set(running.get(k, "").split())
            )
            if context.master != options.master:
                differ.append("master")
            if differ and _open:
                raise EngineError(
                    "another project's Spark session is open in this process, on a Spark "
                    f"context of other settings ({', '.join(differ)})",
                    hint="close the other project's stores first, or give both projects the "
                    "same master and Spark settings",
                )
            if differ:
                spark.builder.getOrCreate().stop()
                context = None
        if context is None:
            builder = spark.builder.appName("headwater").master(options.master)
            for key, value in conf.items():
                # the project's catalogs are its session's alone: the context's own session
                # (anyone's getOrCreate()) keeps Spark's, not the first project's
                if not key.startswith(_PROJECT):
                    builder = builder.config(key, value)
            base = builder.getOrCreate()
            atexit.register(_stop)
        else:
            base = spark.builder.getOrCreate()
        session = base.newSession()
        for key, value in conf.items():
            if _per_session(base.sparkContext, key):
                session.conf.set(key, value)
        _open += 1
        return session


def _per_session(context: Any, key: str) -> bool:
    """Whether a session of its own may hold setting `key` (a SQL setting that is not one of
    Spark's static ones; the catalogs are such), rather than only the context (master, jars,
    extensions, …); `_UNFIXED` keys are neither: kept as the context has them."""
    if key in _UNFIXED or not key.startswith("spark.sql."):
        return False
    return not context._jvm.org.apache.spark.sql.internal.SQLConf.isStaticConfigKey(key)


def _stop() -> None:
    """At the process's exit: the Spark context, if it is still up."""
    from pyspark import SparkContext

    if SparkContext._active_spark_context is not None:
        SparkContext._active_spark_context.stop()


def _temporary(statement: exp.Create) -> bool:
    properties = statement.args.get("properties")
    return (
        statement.kind == "TABLE"
        and statement.expression is not None
        and properties is not None
        and any(isinstance(p, exp.TemporaryProperty) for p in properties.expressions)
    )


def _whole(statement: exp.Create) -> bool:
    """A CREATE [OR REPLACE] TABLE name AS query, with nothing besides (`_measure`)."""
    return (
        statement.kind == "TABLE"
        and isinstance(statement.this, exp.Table)
        and statement.expression is not None  # a query, or its text (`verbatim`)
        and not statement.args.get("properties")
        and not statement.args.get("exists")
    )


# Spark's sources a query may read by path (parquet.`/x`), and its functions calling Java
PATH_SOURCES = frozenset({"parquet", "csv", "json", "orc", "text", "binaryfile", "avro", "delta"})
JAVA_CALLS = frozenset({"reflect", "java_method", "try_reflect"})


def _reaches_files(statement: exp.Expr) -> bool:
    """Whether `statement` reads files by path or calls Java (see `statement_kinds`)."""
    for table in statement.find_all(exp.Table):
        if table.db.lower() in PATH_SOURCES or "/" in table.name or ":" in table.name:
            return True
    return any(
        (f.name if isinstance(f, exp.Anonymous) else f.sql_name()).lower() in JAVA_CALLS
        for f in statement.find_all(exp.Func)
    )


def _key(table: exp.Table) -> str:
    """A table's name, as the catalog knows it: `catalog.namespace.name`, lowercase."""
    return ".".join([table.catalog or WAREHOUSE, table.db, table.name]).lower()


def _dropped(statement: exp.Drop) -> list[str]:
    """The unqualified names a DROP TABLE names."""
    tables = statement.args.get("tables") or [statement.this]
    return [t.name for t in tables if isinstance(t, exp.Table) and not t.args.get("db")]


def _batches(statements: list[str]) -> list[list[str]]:
    """`statements` in the order to run them: each run of views replaced one after another
    (`CREATE OR REPLACE VIEW`, each of another view) a batch to run side by side, every other
    statement a batch of its own. A view replaced is a commit of the catalog, 30 ms of which
    Spark's analysis and the view's metadata file overlap with the others' (measured: 33
    views 0.9-1.1 s one by one, 0.54 s four at a time)."""
    batches: list[list[str]] = []
    names: set[str] = set()
    for sql in statements:
        replaced = _REPLACED.match(sql)
        name = replaced.group(1) if replaced else None
        if name is not None and names and name not in names:
            batches[-1].append(sql)
            names.add(name)
        else:
            batches.append([sql])
            names = {name} if name else set()
    return batches


_REPLACED = re.compile(r"CREATE\s+OR\s+REPLACE\s+VIEW\s+(\S+)\s", re.IGNORECASE)


def _split(sql: str) -> list[str]:
    """The statements of `sql`, split at the semicolons between them (not those inside a
    string or a comment), as written."""
    from sqlglot import TokenType
    from sqlglot.dialects.spark import Spark

    out, start = [], 0
    for token in Spark().tokenize(sql):
        if token.token_type is TokenType.SEMICOLON:
            out.append(sql[start : token.start])
            start = token.end + 1
    out.append(sql[start:])
    return [one.strip() for one in out if one.strip()]


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
    """An EngineError of Spark's failure: its first line — the innermost Java cause's when
    py4j only says which call failed — with the statement in the hint."""
    text = str(getattr(err, "desc", None) or err).strip()
    cause = getattr(err, "java_exception", None)
    try:
        while cause is not None and cause.getCause() is not None:
            cause = cause.getCause()
        if cause is not None:
            text = str(cause.toString())
    except Exception:  # a JVM gone: what py4j said is all there is
        pass
    lines = text.splitlines()
    return EngineError(
        f"Spark: {lines[0] if lines else type(err).__name__}", hint=f"statement: {sql[:2000]}"
    )
