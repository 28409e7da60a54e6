"""The catalog database: runs, tasks, check results, model versions and environment pointers,
held batches and column lineage — one part per concern, behind one database.

SQLAlchemy Core on SQLite (WAL) by default; any SQLAlchemy URL (PostgreSQL) works the same.
The Iceberg catalog tables of the lake live in the same database (see `zones.lake`). Opening
a catalog migrates it to the newest schema (`migrations.py`).

    schema.py      the tables             migrations.py  versioned schema changes
    base.py        the database           records.py     what goes in and comes out
    runs.py        runs and tasks         checks.py      rule results and history
    versions.py    versions, intervals, environments
    releases.py    releases, frozen copies of released data, the catalog's own facts
    holds.py       batches held from readers              lineage.py     column lineage
    lease.py       one run of a project at a time         alerts.py      incidents, events
    schedules.py   what the scheduler fired and saw       backfills.py   backfill progress
    products.py    published data products, API keys, the audit log of the data API
    erasures.py    what `headwater forget` removed; the catalog's text scrubbed of a subject
    profiles.py    profiles of landed batches and built versions (their metric history)
"""

from __future__ import annotations

from headwater.zones.catalog.alerts import AlertsStore
from headwater.zones.catalog.backfills import BackfillsStore
from headwater.zones.catalog.base import catalog_url, utcnow
from headwater.zones.catalog.checks import ChecksStore
from headwater.zones.catalog.erasures import ErasuresStore
from headwater.zones.catalog.holds import HoldsStore
from headwater.zones.catalog.lease import LeaseStore
from headwater.zones.catalog.lineage import LineageStore
from headwater.zones.catalog.products import ProductsStore
from headwater.zones.catalog.profiles import ProfilesStore, StoredProfile
from headwater.zones.catalog.records import CheckRecord, LineageRecord, ModelVersion, TaskRecord
from headwater.zones.catalog.releases import NewRelease, Pointer, Release
from headwater.zones.catalog.runs import RunsStore
from headwater.zones.catalog.schedules import SchedulesStore
from headwater.zones.catalog.versions import VersionsStore


class Catalog(
    RunsStore,
    ChecksStore,
    VersionsStore,
    HoldsStore,
    LineageStore,
    LeaseStore,
    AlertsStore,
    SchedulesStore,
    BackfillsStore,
    ProductsStore,
    ErasuresStore,
    ProfilesStore,
):
    """State headwater keeps between runs. Every write is its own short transaction."""


__all__ = [
    "Catalog",
    "CheckRecord",
    "LineageRecord",
    "ModelVersion",
    "NewRelease",
    "Pointer",
    "Release",
    "StoredProfile",
    "TaskRecord",
    "catalog_url",
    "utcnow",
]
