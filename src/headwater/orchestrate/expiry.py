"""Expiring erasures once their grace period is over: what still holds a forgotten subject's
bytes after `forget` — the lake's older snapshots and the free blocks of the warehouse, the
catalog and the online store — removed.

Nothing here needs the subject's value (the catalog never kept it): an erasure records which
data files held its rows and which of its own commits still name them, so expiry removes
exactly the snapshots that hold those files (a data product's other data states, which
releases still serve, hold none), then rewrites each store's file whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from headwater.change import online
from headwater.errors import HeadwaterError
from headwater.orchestrate.lease import held
from headwater.orchestrate.running import audited
from headwater.orchestrate.stores import Stores
from headwater.project import Project
from headwater.zones.catalog.erasures import Erasure
from headwater.zones.catalog.products import Audited


def _quiet(_: str) -> None:
    return None


@dataclass
class Expiry:
    """What expiring erasures did: per lake table the snapshots expired, and the warehouse
    file's size before and after it was rewritten."""

    erasures: list[int] = field(default_factory=list)
    snapshots: dict[str, int] = field(default_factory=dict)
    warehouse: tuple[int, int] | None = None
    next_due: datetime | None = None  # when the next erasure still waiting is due
    notes: list[str] = field(default_factory=list)


def expire(
    project: Project, stores: Stores, *, now: datetime, progress: Callable[[str], None] = _quiet
) -> Expiry:
    """Expire every erasure whose grace period is over (at `now`): the snapshots that still
    hold its rows expire and their files are deleted; then the warehouse file, the online
    store and the catalog database are rewritten so no free block keeps a deleted row.

    Raises:
        Busy: another run holds the project (nothing was expired).
        Conflict: a lake table was committed to meanwhile (run it again).
    """
    catalog = stores.catalog
    out = Expiry()
    due = catalog.due_erasures(now)
    waiting = [e.expire_after for e in catalog.erasures() if e.done_at is None and e.lake]
    out.next_due = min((w for w in waiting if w > now), default=None)
    if not due:
        return out
    with held(catalog, "forget"):
        progress("expiring the snapshots that still hold erased rows")
        for erasure in due:
            for table, held_files in sorted(erasure.lake.items()):
                files, overwrites = list(held_files.files), list(held_files.overwrites)
                count = stores.lake.expire_erased(table, files, overwrites)
                out.snapshots[table] = out.snapshots.get(table, 0) + count
        progress("rewriting the warehouse, the online store and the catalog")
        out.warehouse = stores.engine.compact()
        out.notes += _compact_online(project)
        out.erasures = [e.id for e in due]
        for erasure in due:
            catalog.erasure_done(erasure.id, now=now)
        catalog.audit([_audited(erasure, now) for erasure in due])
        note = catalog.compact()  # last: the writes above leave pages free too
        if note:
            out.notes.append(note)
    return out


def _audited(erasure: Erasure, now: datetime) -> Audited:
    """The audit entry of an erasure's expiry."""
    return audited(
        "forget",
        erasure.subject_key,
        at=now,
        status=0,
        stage="expire",
        erasure=erasure.id,
        tables=sorted(erasure.lake),
    )


def _compact_online(project: Project) -> list[str]:
    """Rewrite the online feature store, when the project has one; why not, if it failed."""
    if not online.feature_views(project):
        return []
    try:
        store = online.OnlineStore.open(project)
        try:
            store.compact()
        finally:
            store.close()
    except HeadwaterError as err:
        return [f"the online store was not compacted: {err.message}"]
    return []
