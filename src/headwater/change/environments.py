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
        statement's round trip costs about what the view does), then the catalog's pointers
        in one — which, given `release`, records them as a new release (its id)."""
        if views:
            with self.engine.transaction():
                self.engine.execute(verbatim(";\n".join(views)))
        return self.catalog.publish_all(
            built, env=self.name, run_id=run_id, now=now, release=release
        )

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
