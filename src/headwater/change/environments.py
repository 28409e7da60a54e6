"""Environments: a name (`prod`, `dev`) whose views point at model versions.

Releasing is the one operation that changes what readers see. Every version a build wrote
is already in the warehouse under its physical name; `Environment.release` swaps the
environment's views to them in ONE warehouse transaction, then records the pointers (and the
versions' done intervals) in ONE catalog transaction. A crash between the two only means the
versions are recorded (idempotently) again by the next run: readers never see a mix of old and
new versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlglot import exp

from headwater.change.versions import PROD, view_schema
from headwater.engine import Engine, verbatim
from headwater.zones.catalog import Catalog, ModelVersion, NewRelease

Intervals = Sequence[tuple[datetime, datetime]] | None
# which release each environment's views show, written in the transaction that flips them
MARKER = "headwater.releases"


def marker_table(dialect: str) -> list[str]:
    """Make the marker table if it is missing."""
    schema = exp.Create(this=exp.to_identifier("headwater"), kind="SCHEMA", exists=True)
    columns = [
        exp.ColumnDef(this=exp.to_identifier("env"), kind=exp.DataType.build("varchar")),
        exp.ColumnDef(this=exp.to_identifier("release"), kind=exp.DataType.build("bigint")),
    ]
    table = exp.Create(
        this=exp.Schema(this=exp.to_table(MARKER), expressions=columns), kind="TABLE", exists=True
    )
    return [schema.sql(dialect=dialect), table.sql(dialect=dialect)]


def shown_release(engine: Engine, env: str) -> int | None:
    """The release the warehouse's views of `env` show, by its marker (None: none yet)."""
    if MARKER not in engine.objects():
        return None
    query = (
        exp.select("release")
        .from_(exp.to_table(MARKER))
        .where(exp.column("env").eq(exp.Literal.string(env)))
    )
    found = engine.rows(query)
    return int(found[0][0]) if found else None


def marker(env: str, release_id: int, dialect: str) -> list[str]:
    """Set `env`'s marker to `release_id`."""
    where = exp.column("env").eq(exp.Literal.string(env))
    delete = exp.delete(exp.to_table(MARKER), where=where)
    insert = exp.insert(
        exp.values([(exp.Literal.string(env), exp.Literal.number(release_id))]),
        exp.to_table(MARKER),
    )
    return [delete.sql(dialect=dialect), insert.sql(dialect=dialect)]


class Environment:
    """The views of `name` in the warehouse and its pointers in the catalog."""

    def __init__(self, engine: Engine, catalog: Catalog, name: str = PROD):
        self.engine, self.catalog, self.name = engine, catalog, name

    def pointers(self) -> dict[str, str]:
        """Model → the physical version the environment shows now."""
        return self.catalog.pointers(self.name)

    def release(
        self,
        built: Sequence[tuple[ModelVersion, Intervals]],
        views: Sequence[str],
        *,
        run_id: str,
        now: datetime,
        release: NewRelease | None = None,
    ) -> int | None:
        """Point the environment at every version `built` at once: the warehouse's `views`
        (`view_sql`) in one transaction, sent as one text (the engine parses it once, and a
        statement's round trip costs about what the view does), and the catalog's pointers
        in one.

        Given `release`, the catalog goes first, recording the pointers as a pending release;
        the views flip with the release's marker; then the release is done (its id is
        returned). Without one (a data refresh of the same versions), the views go first."""
        if release is None:
            self.flip(views)
            self.catalog.publish_all(built, env=self.name, run_id=run_id, now=now)
            return None
        release_id = self.catalog.publish_all(
            built, env=self.name, run_id=run_id, now=now, release=release
        )
        assert release_id is not None
        self.flip(views, release_id)
        self.catalog.finish_release(release_id)
        return release_id

    def flip(self, statements: Sequence[str], release_id: int | None = None) -> None:
        """Run `statements` (views made or dropped) in one warehouse transaction, with the
        marker that the environment now shows `release_id`."""
        if release_id is not None:
            self.engine.execute(verbatim(";\n".join(marker_table(self.engine.dialect))))
            statements = [*statements, *marker(self.name, release_id, self.engine.dialect)]
        if statements:
            with self.engine.transaction():
                self.engine.execute(verbatim(";\n".join(statements)))

    def shown_release(self) -> int | None:
        """The release the warehouse's views of the environment show (its marker)."""
        return shown_release(self.engine, self.name)

    def withdraw(self, models: Sequence[str]) -> None:
        """Drop the views of `models` (and their quarantines) and their pointers; their
        versions' tables stay, as every version's do."""
        if not models:
            return
        with self.engine.transaction():
            for name in models:
                zone, short = name.split(".")
                for view in (short, f"{short}__quarantine"):
                    target = exp.table_(view, view_schema(zone, self.name), quoted=True)
                    self.engine.execute(exp.Drop(tables=[target], kind="VIEW", exists=True))
        self.catalog.unpublish(models, env=self.name)
