"""The right to erasure, as the catalog keeps it: what each `headwater forget` removed and
when the snapshots that still hold it expire; the catalog's own text scrubbed of a subject.

An erasure names its subject by the key and a SHA-256 of each value, never the value. Some of
the catalog's free text may quote a value of the data (a rule's failing samples, an error, a
run's summary, an alert, an audit detail, a profile's bounds and most frequent values):
`scrub` rewrites it through the caller's redaction, and `compact` rewrites the database
file, so the pages that held the old text are gone
(deleting a row only marks its page free: its bytes stay until the page is reused).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from headwater.zones.catalog.base import CatalogBase
from headwater.zones.catalog.schema import (
    alert_events,
    alerts,
    audit_log,
    check_results,
    erasures,
    held_batches,
    products,
    profiles,
    releases,
    runs,
    tasks,
)

# the free text that may quote a value of the data, table by table; what the catalog keeps
# of the project itself (model SQL, names, fingerprints, times) quotes none and stays as it is
QUOTING: list[tuple[sa.Table, tuple[str, ...]]] = [
    # a drift rule's explanation (the first line of its sql) and bins may name a category
    (check_results, ("samples", "sql")),
    (profiles, ("columns",)),  # a column's bounds, quantiles and most frequent values
    (runs, ("summary",)),
    (tasks, ("error",)),
    (held_batches, ("reason", "decision_note")),
    (alerts, ("message",)),
    (alert_events, ("payload", "last_error")),
    (releases, ("note",)),
    (audit_log, ("detail",)),
]


@dataclass(frozen=True)
class LakeFiles:
    """What expiring an erasure removes of one lake table: the data `files` that held the
    rows and the erasure's `overwrites` (commits whose manifests still list them as deleted),
    with every older snapshot that holds them."""

    files: tuple[str, ...]
    overwrites: tuple[int, ...]


@dataclass(frozen=True)
class Erasure:
    """One `headwater forget`."""

    id: int
    subject_key: str
    value_sha256: tuple[str, ...]
    reason: str | None
    requested_by: str | None
    requested_at: datetime
    expire_after: datetime
    done_at: datetime | None = None
    tables: dict[str, int] = field(default_factory=dict)  # table → rows removed
    lake: dict[str, LakeFiles] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


class ErasuresStore(CatalogBase):
    """Erasures, the product data states they rewrite, and scrubbing the catalog's text."""

    def start_erasure(
        self,
        *,
        subject_key: str,
        hashes: Sequence[str],
        reason: str | None,
        by: str | None,
        now: datetime,
        expire_after: datetime,
    ) -> int:
        """Record an erasure before anything is removed (a crash leaves it, with no tables);
        returns its id."""
        values = {
            "subject_key": subject_key,
            "value_sha256": ",".join(hashes),
            "reason": self._text(reason),
            "requested_by": by,
            "requested_at": now,
            "expire_after": expire_after,
        }
        with self._tx() as conn:
            found = conn.execute(erasures.insert().values(**values)).inserted_primary_key
        assert found is not None
        return int(found[0])

    def finish_erasure(
        self, erasure_id: int, *, tables: dict[str, int], lake: dict[str, LakeFiles]
    ) -> None:
        """Record what the erasure removed, and what its expiry is to remove."""
        stored = {
            t: {"files": list(f.files), "overwrites": list(f.overwrites)} for t, f in lake.items()
        }
        values = {
            "tables": json.dumps(tables, sort_keys=True),
            "rows": sum(tables.values()),
            "lake": json.dumps(stored, sort_keys=True),
        }
        with self._tx() as conn:
            conn.execute(erasures.update().where(erasures.c.id == erasure_id).values(**values))

    def erasures(self, *, hashes: Collection[str] = ()) -> list[Erasure]:
        """Every erasure, newest first (`hashes`: those of any of these values' SHA-256)."""
        query = sa.select(erasures).order_by(erasures.c.id.desc())
        with self.engine.connect() as conn:
            found = [_erasure(r) for r in conn.execute(query)]
        if hashes:
            found = [e for e in found if set(e.value_sha256) & set(hashes)]
        return found

    def due_erasures(self, now: datetime) -> list[Erasure]:
        """The erasures whose grace period is over and whose snapshots have not expired."""
        return [
            e for e in self.erasures() if e.done_at is None and e.expire_after <= now and e.lake
        ]

    def erasure_done(self, erasure_id: int, *, now: datetime) -> None:
        """Its snapshots expired and the stores were compacted."""
        with self._tx() as conn:
            conn.execute(erasures.update().where(erasures.c.id == erasure_id).values(done_at=now))

    def product_states(self, product: str) -> dict[int, tuple[str, str]]:
        """The data states a product table holds: snapshot id → (model, data key)."""
        query = sa.select(products.c.snapshot_id, products.c.name, products.c.data_key).where(
            products.c.product == product
        )
        with self.engine.connect() as conn:
            return {int(s): (n, k) for s, n, k in conn.execute(query)}

    def move_product_state(self, product: str, old: int, new: int, removed: int) -> None:
        """A data state's rows less an erased subject's now live in snapshot `new` of the
        product table: serving (and releases, by data key) read that one from now on."""
        with self._tx() as conn:
            conn.execute(
                products.update()
                .where(products.c.product == product, products.c.snapshot_id == old)
                .values(
                    snapshot_id=new,
                    rows=sa.case(
                        (products.c.rows.is_(None), None), else_=products.c.rows - removed
                    ),
                )
            )

    def scrub(self, redact: Callable[[str], str]) -> dict[str, int]:
        """Rewrite each text of `QUOTING` that `redact` changes; rows changed per table.

        A text is replaced wherever it is equal (redaction depends on the text alone), in one
        transaction; SQLite zeroes what it deletes from then on (`secure_delete`), and
        `compact` leaves no free page with the old text."""
        changed: dict[str, int] = {}
        with self._tx() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA secure_delete = ON")
            for table, columns in QUOTING:
                for name in columns:
                    column = table.c[name]
                    texts = conn.execute(sa.select(column).where(column.is_not(None)).distinct())
                    for (old,) in list(texts):
                        new = redact(old)
                        if new == old:
                            continue
                        update = table.update().where(column == old).values({name: new})
                        done = conn.execute(update).rowcount
                        changed[table.name] = changed.get(table.name, 0) + done
        return changed

    def compact(self) -> str | None:
        """Rewrite the database file so no free page keeps deleted text: SQLite's VACUUM, with
        its write-ahead log checkpointed and truncated before and after (the log holds pages
        as they were written). None when done; else why not (another database: its own
        `VACUUM FULL` and retention of its write-ahead log decide)."""
        if self.engine.dialect.name != "sqlite":
            return (
                f"the catalog is on {self.engine.dialect.name}, not SQLite: the pages that held "
                "the scrubbed text are freed by its own VACUUM FULL, not rewritten here"
            )
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.exec_driver_sql("VACUUM")
            busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
        if busy is not None and busy[0]:
            return (
                "another connection kept reading the catalog: its write-ahead log was not truncated"
            )
        return None


def _erasure(row: Any) -> Erasure:
    lake = json.loads(row.lake) if row.lake else {}
    return Erasure(
        id=int(row.id),
        subject_key=row.subject_key,
        value_sha256=tuple(h for h in row.value_sha256.split(",") if h),
        reason=row.reason,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        expire_after=row.expire_after,
        done_at=row.done_at,
        tables=json.loads(row.tables) if row.tables else {},
        lake={
            t: LakeFiles(tuple(f["files"]), tuple(int(c) for c in f["overwrites"]))
            for t, f in lake.items()
        },
    )
