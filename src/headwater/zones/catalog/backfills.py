"""Backfills: what was asked, and which of its intervals are done.

A backfill is a row of `hw_backfills` (a model version, a range of intervals, a status); each
unit of intervals it wrote is a row of `hw_backfill_intervals`, recorded in one catalog
transaction with the version's done intervals and row count, once the warehouse has
committed the unit. Asking for the same backfill again (same version, same range) continues
the unfinished one: what it recorded done is skipped.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

import sqlalchemy as sa

from headwater.zones.catalog.base import CatalogBase
from headwater.zones.catalog.records import ModelVersion
from headwater.zones.catalog.schema import (
    backfill_intervals,
    backfills,
    intervals,
    model_versions,
)

Range = tuple[datetime, datetime]


class BackfillStatus(StrEnum):
    RUNNING = "running"  # under way, or killed (SIGKILL) while it was
    INTERRUPTED = "interrupted"  # stopped by Ctrl-C between units
    FAILED = "failed"  # a unit failed, or the version's rules did at the end
    DONE = "done"


@dataclass(frozen=True)
class Backfill:
    """One backfill: its version, its range, and the units of intervals it has written."""

    backfill_id: str
    model: str
    fingerprint: str
    start: datetime
    end: datetime
    status: BackfillStatus
    requested_by: str | None
    started_at: datetime
    ended_at: datetime | None
    done: tuple[Range, ...] = ()

    @property
    def finished(self) -> bool:
        return self.status is BackfillStatus.DONE


class BackfillsStore(CatalogBase):
    """Backfills: what was asked, and which of its intervals are done."""

    # units of one backfill finish on several threads; merging a unit into the version's
    # done ranges reads them first, so those read-merge-writes take turns
    _merging: ClassVar[threading.Lock] = threading.Lock()

    def start_backfill(
        self,
        model: str,
        fingerprint: str,
        span: Range,
        *,
        requested_by: str | None,
        now: datetime,
        forget_done: bool = False,
    ) -> tuple[Backfill, bool]:
        """The unfinished backfill of this version and range, marked running again, or a new
        one; and whether it was resumed. `forget_done`: what it wrote is gone (the version's
        table was made again), so its units are to be written again."""
        same = [
            b
            for b in self.backfills(model, unfinished=True)
            if b.fingerprint == fingerprint and (b.start, b.end) == span
        ]
        if same:
            found = same[0]
            if forget_done:
                with self._tx() as conn:
                    conn.execute(
                        backfill_intervals.delete().where(
                            backfill_intervals.c.backfill_id == found.backfill_id
                        )
                    )
                found = replace(found, done=())
            self._set_status(found.backfill_id, BackfillStatus.RUNNING, ended_at=None)
            return replace(found, status=BackfillStatus.RUNNING), True
        backfill_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        row = {
            "backfill_id": backfill_id,
            "model": model,
            "fingerprint": fingerprint,
            "start": span[0],
            "end": span[1],
            "status": BackfillStatus.RUNNING.value,
            "requested_by": self._text(requested_by),
            "started_at": now,
            "ended_at": None,
        }
        with self._tx() as conn:
            conn.execute(backfills.insert().values(**row))
        return _backfill_of(row, []), False

    def backfills(self, model: str | None = None, *, unfinished: bool = False) -> list[Backfill]:
        """Backfills (of `model`), newest first, each with the units it has written."""
        query = backfills.select().order_by(backfills.c.started_at.desc())
        if model is not None:
            query = query.where(backfills.c.model == model)
        if unfinished:
            query = query.where(backfills.c.status != BackfillStatus.DONE.value)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
            ids = [r["backfill_id"] for r in rows]
            units: dict[str, list[Range]] = {}
            if ids:
                done = sa.select(
                    backfill_intervals.c.backfill_id,
                    backfill_intervals.c.start,
                    backfill_intervals.c.end,
                ).where(backfill_intervals.c.backfill_id.in_(ids))
                for backfill_id, lo, hi in conn.execute(done):
                    units.setdefault(backfill_id, []).append((lo, hi))
        return [_backfill_of(r, units.get(r["backfill_id"], [])) for r in rows]

    def record_backfilled(
        self, backfill_id: str, version: tuple[str, str], span: Range, *, rows: int | None
    ) -> None:
        """Record a unit the warehouse committed: done for the backfill, done for the version
        (merged into its ranges), and `rows` more (or fewer) rows in it; one transaction."""
        name, fp = version
        of_version = sa.and_(intervals.c.name == name, intervals.c.fingerprint == fp)
        with self._merging, self._tx() as conn:
            conn.execute(
                backfill_intervals.insert().values(
                    backfill_id=backfill_id, start=span[0], end=span[1]
                )
            )
            done = [
                (lo, hi)
                for lo, hi in conn.execute(
                    sa.select(intervals.c.start, intervals.c.end).where(of_version)
                )
            ]
            conn.execute(intervals.delete().where(of_version))
            conn.execute(
                intervals.insert(),
                [
                    {"name": name, "fingerprint": fp, "start": lo, "end": hi}
                    for lo, hi in _merged([*done, span])
                ],
            )
            if rows is not None:
                conn.execute(
                    model_versions.update()
                    .where(model_versions.c.name == name, model_versions.c.fingerprint == fp)
                    .values(rows=model_versions.c.rows + rows)
                )

    def end_backfill(self, backfill_id: str, status: BackfillStatus, *, now: datetime) -> None:
        self._set_status(backfill_id, status, ended_at=now)

    def begin_version(self, version: ModelVersion, *, run_id: str, now: datetime) -> None:
        """Record a version whose table was just made, empty: nothing done, not published."""
        key = sa.and_(
            model_versions.c.name == version.name,
            model_versions.c.fingerprint == version.fingerprint,
        )
        of_version = sa.and_(
            intervals.c.name == version.name, intervals.c.fingerprint == version.fingerprint
        )
        with self._tx() as conn:
            conn.execute(intervals.delete().where(of_version))
            conn.execute(model_versions.delete().where(key))
            conn.execute(
                model_versions.insert().values(
                    **{
                        **version.__dict__,
                        "inputs": json.dumps(version.inputs),
                        "built_at": now,
                        "run_id": run_id,
                    }
                )
            )

    def set_version_rows(self, name: str, fingerprint: str, rows: int) -> None:
        """The version's row count, counted (a backfill's last step)."""
        with self._tx() as conn:
            conn.execute(
                model_versions.update()
                .where(model_versions.c.name == name, model_versions.c.fingerprint == fingerprint)
                .values(rows=rows)
            )

    def _set_status(
        self, backfill_id: str, status: BackfillStatus, *, ended_at: datetime | None
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                backfills.update()
                .where(backfills.c.backfill_id == backfill_id)
                .values(status=status.value, ended_at=ended_at)
            )


def _backfill_of(row: dict[str, Any], units: list[Range]) -> Backfill:
    return Backfill(
        row["backfill_id"],
        row["model"],
        row["fingerprint"],
        row["start"],
        row["end"],
        BackfillStatus(row["status"]),
        row["requested_by"],
        row["started_at"],
        row["ended_at"],
        tuple(sorted(units)),
    )


def _merged(ranges: list[Range]) -> list[Range]:
    """Sorted ranges, touching and overlapping ones joined (as `models.intervals.merge`,
    which lives a band above the catalog)."""
    out: list[Range] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out
