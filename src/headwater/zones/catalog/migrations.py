"""Versioned schema migrations of the catalog: an ordered list, applied once each, in order.

`hw_schema` holds one row per migration applied (version, name, when). Opening a catalog
applies the migrations it lacks, in one transaction, so the stages to come add their tables
and columns as new migrations and existing projects upgrade in place. A catalog made before
migrations existed (its `hw_*` tables there, no `hw_schema`) is a version-0 catalog: the
first migration makes exactly the tables it would have made, skipping those present.

A minimal table, not Alembic: Alembic's import alone costs more than a `headwater status`
should, migrations here are a handful of DDL statements, and they run from Python on the one
database the catalog already holds (SQLite or PostgreSQL) with no separate tool to run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from headwater.errors import StoreError
from headwater.zones.catalog.schema import (
    CHANGE_TABLES,
    ERASURE_TABLES,
    OBSERVE_TABLES,
    ORCHESTRATION_TABLES,
    SCHEMA_TABLES,
    SERVING_TABLES,
    alert_events,
    alerts,
    held_batches,
    metadata,
    model_versions,
    runs,
    schema_versions,
    tasks,
)

MIGRATION_LOCK = 0x6877_6D69_6772  # PostgreSQL advisory lock key: "hwmigr"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[sa.Connection], None]


def _tables_of_the_first_release(conn: sa.Connection) -> None:
    """Runs, tasks, check results, model versions, intervals, held batches, environment
    pointers and column lineage, as headwater made them before migrations existed; a table
    an earlier build made with fewer columns gets the missing ones (all of them optional)."""
    inspector = sa.inspect(conn)
    present = set(inspector.get_table_names())
    metadata.create_all(conn, tables=[t for t in SCHEMA_TABLES if t.name not in present])
    for table in (t for t in SCHEMA_TABLES if t.name in present):
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in (c for c in table.columns if c.name not in have):
            add_column(conn, table, column)


def add_column(conn: sa.Connection, table: sa.Table, column: sa.Column[Any]) -> None:
    """`ALTER TABLE … ADD COLUMN`, for a column rows already there can do without.

    Raises:
        StoreError: the column is required (rows already there would have no value for it).
    """
    if not column.nullable and column.server_default is None:
        raise StoreError(
            f"the catalog's table {table.name} lacks the required column {column.name}, and "
            "rows already there would have no value for it",
            hint="this catalog was not made by a released headwater; move it aside and "
            "run again to start a new one (the lake and warehouse are kept)",
        )
    column_ddl = str(sa.schema.CreateColumn(column).compile(dialect=conn.dialect))
    add = sa.DDL(  # type: ignore[no-untyped-call]  # SQLAlchemy leaves DDL() unannotated
        "ALTER TABLE %(fullname)s ADD COLUMN %(column)s", {"column": column_ddl}
    )
    conn.execute(add.against(table))


def _orchestration(conn: sa.Connection) -> None:
    """Leases, alerts, the scheduler's state and backfills; attempts per task and an
    operator's decision on a held batch."""
    metadata.create_all(conn, tables=ORCHESTRATION_TABLES)
    inspector = sa.inspect(conn)
    for table, names in (
        (tasks, ["attempts"]),
        (held_batches, ["discarded_at", "decided_by", "decision_note"]),
    ):
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for name in names:
            if name not in have:
                add_column(conn, table, table.c[name])


def _what_versions_were_built_from(conn: sa.Connection) -> None:
    """A version's normalized query and docs hash, so a plan can classify what changed."""
    have = {c["name"] for c in sa.inspect(conn).get_columns(model_versions.name)}
    for name in ("sql", "meta"):
        if name not in have:
            add_column(conn, model_versions, model_versions.c[name])


def _change_management(conn: sa.Connection) -> None:
    """Releases with their pointers, frozen copies of released data, the catalog's facts;
    the environment each run built."""
    metadata.create_all(conn, tables=CHANGE_TABLES)
    if "env" not in {c["name"] for c in sa.inspect(conn).get_columns(runs.name)}:
        add_column(conn, runs, runs.c.env)


def _serving(conn: sa.Connection) -> None:
    """Published data products, API keys and the audit log of the data API."""
    metadata.create_all(conn, tables=SERVING_TABLES)


def _erasures(conn: sa.Connection) -> None:
    """What each `headwater forget` removed, and when its snapshots expire."""
    metadata.create_all(conn, tables=ERASURE_TABLES)


def _observability(conn: sa.Connection) -> None:
    """Profiles of batches and versions; what tasks read, wrote and waited; what alert
    routing reads, and events held back by quiet hours or a rate limit."""
    metadata.create_all(conn, tables=OBSERVE_TABLES)
    inspector = sa.inspect(conn)
    for table, names in (
        (tasks, ["rows_in", "bytes", "queued_s"]),
        (alerts, ["owner", "tags"]),
        (alert_events, ["not_before"]),
    ):
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for name in names:
            if name not in have:
                add_column(conn, table, table.c[name])


MIGRATIONS: list[Migration] = [
    Migration(1, "the tables of the first release", _tables_of_the_first_release),
    Migration(2, "orchestration: leases, alerts, schedules, backfills", _orchestration),
    Migration(3, "what each version was built from", _what_versions_were_built_from),
    Migration(4, "change management: releases, frozen copies", _change_management),
    Migration(5, "serving: data products, API keys, audit log", _serving),
    Migration(6, "the right to erasure: what forget removed", _erasures),
    Migration(7, "observability: profiles, task metrics, alert routing", _observability),
]


def migrate(engine: sa.Engine, migrations: list[Migration] | None = None) -> int:
    """Bring the catalog at `engine` to the newest schema; returns its version.

    Raises:
        StoreError: the catalog was made by a newer headwater (a version this one lacks).
    """
    migrations = MIGRATIONS if migrations is None else migrations
    newest = migrations[-1].version if migrations else 0
    current = _version(engine)
    if current > newest:
        raise StoreError(
            f"the catalog is at schema version {current}, made by a newer headwater; this one "
            f"knows versions up to {newest}",
            hint="upgrade headwater (pip install -U headwater) to use this project",
        )
    if current == newest:
        return current
    try:
        _apply(engine, migrations)
    except sa.exc.IntegrityError:
        # another process recorded the same migration first (both saw the old version):
        # its transaction is the one that counts, and ours rolled back
        if _version(engine) < newest:
            raise
    return newest


def _apply(engine: sa.Engine, migrations: list[Migration]) -> None:
    """Apply the migrations the catalog lacks, in order, in one transaction: all of them or,
    on any failure, none (their DDL included)."""
    with engine.connect() as conn:
        restore = _sqlite_explicit(conn) if conn.dialect.name == "sqlite" else None
        try:
            if conn.dialect.name == "postgresql":
                # one migrator at a time; the next sees what the first committed
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK)))
            schema_versions.create(conn, checkfirst=True)
            done = _applied(conn)
            for migration in migrations:
                if migration.version <= done:
                    continue
                migration.apply(conn)
                conn.execute(
                    schema_versions.insert().values(
                        version=migration.version,
                        name=migration.name,
                        applied_at=datetime.now(UTC),
                    )
                )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            if restore is not None:
                restore()


def _sqlite_explicit(conn: sa.Connection) -> Callable[[], None]:
    """Make SQLite's DDL transactional on `conn` (the driver commits before DDL by itself)
    and take the write lock at once, so a second process migrating waits for the first;
    returns how to undo it."""
    raw: Any = conn.connection.dbapi_connection
    saved = raw.isolation_level
    raw.isolation_level = None  # the driver issues no BEGIN or COMMIT of its own
    conn.exec_driver_sql("BEGIN IMMEDIATE")

    def restore() -> None:
        raw.isolation_level = saved

    return restore


def _version(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(schema_versions.name):
            return 0
        return _applied(conn)


def _applied(conn: sa.Connection) -> int:
    found = conn.execute(sa.select(sa.func.max(schema_versions.c.version))).scalar()
    return int(found or 0)
