"""The commits of a lake table that Iceberg no longer keeps: the batch index of expired
snapshots, and the expiry that moves them there.

Every landed batch is one Iceberg snapshot whose summary carries its batch id, checkpoint and
event range (`zones.lake`). Iceberg copies every snapshot into each new metadata file, and
pyiceberg deep-copies that metadata a dozen times per commit, so a table committed to once a
second (a stream) would pay more for each commit the longer it runs (measured: 47 ms a commit
at 1 snapshot, 330 ms at 300). The lake therefore keeps a table's newest snapshots in Iceberg
and moves the older ones' summaries to `hw_snapshot_history`, a table of the catalog
database beside pyiceberg's own; readers get both, oldest first (`Lake.snapshots`).

Rows are written before Iceberg drops the snapshots, so a crash between the two leaves a row
that a live snapshot repeats (readers keep one), never a lost batch. No data file is removed:
raw tables are append-only, so the current snapshot still holds every file an expired one
added. What expiry leaves behind is metadata no snapshot names any more (the manifest lists of
expired snapshots, manifests merged into others), removed once no writer can need it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

KEEP = 100  # snapshots a table keeps in Iceberg after an expiry (a batch table's default)
STREAM_KEEP = 8  # a stream's: it commits every second or so
KEEP_PROPERTY = "hw.keep_snapshots"  # a table's own KEEP (set from its contract)
METADATA_GRACE_S = 300.0  # metadata files younger than this are never removed

_metadata = sa.MetaData()
HISTORY = sa.Table(
    "hw_snapshot_history",
    _metadata,
    sa.Column("table_name", sa.String(300), primary_key=True),
    sa.Column("snapshot_id", sa.BigInteger, primary_key=True),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("timestamp_ms", sa.BigInteger, nullable=False),
    sa.Column("properties", sa.Text, nullable=False),
    sa.Index("ix_hw_snapshot_history_order", "table_name", "sequence"),
)


@dataclass(frozen=True)
class Expired:
    """One expired snapshot as the index keeps it."""

    snapshot_id: int
    sequence: int
    timestamp_ms: int
    properties: dict[str, Any]


def create(engine: sa.Engine) -> None:
    """Make the index table if the database lacks it (as pyiceberg makes its own)."""
    _metadata.create_all(engine, checkfirst=True)


def expired(engine: sa.Engine, name: str) -> list[Expired]:
    """The expired snapshots of table `name`, oldest first (none when nothing ever expired)."""
    query = (
        sa.select(
            HISTORY.c.snapshot_id, HISTORY.c.sequence, HISTORY.c.timestamp_ms, HISTORY.c.properties
        )
        .where(HISTORY.c.table_name == name)
        .order_by(HISTORY.c.sequence)
    )
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    except sa.exc.DBAPIError:
        with engine.connect() as conn:
            if sa.inspect(conn).has_table(HISTORY.name):
                raise
        return []  # no table has expired anything in this database yet
    return [Expired(r[0], r[1], r[2], json.loads(r[3])) for r in rows]


def record(engine: sa.Engine, name: str, snapshots: Iterable[Expired]) -> None:
    """Keep `snapshots` of table `name` in the index (again: the same rows, once)."""
    rows = [
        {
            "table_name": name,
            "snapshot_id": s.snapshot_id,
            "sequence": s.sequence,
            "timestamp_ms": s.timestamp_ms,
            "properties": json.dumps(s.properties, sort_keys=True),
        }
        for s in snapshots
    ]
    if not rows:
        return
    create(engine)
    ids = [r["snapshot_id"] for r in rows]
    with engine.begin() as conn:
        conn.execute(
            sa.delete(HISTORY).where(HISTORY.c.table_name == name, HISTORY.c.snapshot_id.in_(ids))
        )
        conn.execute(sa.insert(HISTORY), rows)
