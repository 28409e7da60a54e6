"""The janitor: which model versions no environment and no retained release reads, and
dropping them.

A version's table (or view) in the warehouse is kept while an environment points at it or a
retained release (`change.releases.retained`) names it or reads a frozen copy of it; anything
else in the `hw_<zone>` schemas — versions replaced long ago, frozen copies of expired
releases, tables of an apply that published nothing — is unreferenced. Dropping one forgets
its version in the catalog too, so a later build makes it again if it is ever needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlglot import exp

from headwater.change.releases import retained
from headwater.change.versions import copy_name
from headwater.engine import ObjectKind
from headwater.orchestrate.environments import recover
from headwater.orchestrate.stores import Stores
from headwater.project import Project

QUARANTINE = "__quarantine"


@dataclass(frozen=True)
class Unreferenced:
    table: str  # schema.name in the warehouse
    kind: ObjectKind
    rows: int | None  # None for a view


def unreferenced(project: Project, stores: Stores, *, now: datetime) -> list[Unreferenced]:
    """The versions (and their quarantines) nothing needs any more, oldest names first."""
    catalog = stores.catalog
    recover(stores, now=now)  # a release a crash left pending: its pointers count
    keep: set[str] = set()
    for env in catalog.environments():
        keep.update(catalog.pointers(env).values())
    kept = retained(catalog.release_heads(), project.settings.releases, now=now)
    copies = catalog.frozen_copies()
    for physical, key in catalog.released_data(kept):
        keep.add(physical)
        if key is not None:  # its copy, recorded or not (a run killed before recording it)
            keep.add(
                copies[(physical, key)][0]
                if (physical, key) in copies
                else copy_name(physical, key)
            )
    found = {
        name: kind
        for name, kind in stores.engine.objects().items()
        if name.startswith("hw_") and name.removesuffix(QUARANTINE) not in keep
    }
    rows = stores.engine.row_counts([n for n, k in found.items() if k is ObjectKind.TABLE])
    return [Unreferenced(name, kind, rows.get(name)) for name, kind in sorted(found.items())]


def unreferenced_products(project: Project, stores: Stores, *, now: datetime) -> list[str]:
    """The product tables (lake) holding no data an environment serves or a retained
    release served: those of versions gone from every environment and kept release."""
    catalog = stores.catalog
    keys = {s.data_key for env in catalog.environments() for s in catalog.shown(env).values()}
    kept = retained(catalog.release_heads(), project.settings.releases, now=now)
    keys |= {k for _, k in catalog.released_data(kept)}
    held = catalog.product_tables()
    return sorted(t for t, data in held.items() if not data & keys)


def drop_products(stores: Stores, tables: list[str]) -> None:
    """Drop product tables from the lake, then forget their products."""
    for table in tables:
        stores.lake.drop(table)
    stores.catalog.forget_products(tables)


def drop(stores: Stores, found: list[Unreferenced]) -> None:
    """Drop `found` in one warehouse transaction, then forget them in the catalog."""
    if not found:
        return
    with stores.engine.transaction():
        for item in found:
            kind = "VIEW" if item.kind is ObjectKind.VIEW else "TABLE"
            target = exp.to_table(item.table, quoted=True)
            stores.engine.execute(exp.Drop(tables=[target], kind=kind, exists=True))
    stores.catalog.forget_tables([f.table for f in found])
