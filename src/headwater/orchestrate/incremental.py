"""Which intervals an `incremental_by_time` model must write this run, and why.

Every raw batch records the event-time range it touched (its snapshot summary). A model version
remembers the last raw snapshot it has seen of each raw table upstream of it (directly or
through other models). The intervals to write are: those never done, those a new batch touched
(late data included — that is what makes incremental equal a full rebuild), and the lookback.
A `load: snapshot` batch also touches the times of the copy it replaces; a `load: merge` batch
may supersede a version anywhere, so every interval done is written again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from headwater.errors import Location, ModelError
from headwater.models import Model
from headwater.models.intervals import (
    Range,
    count,
    covering,
    intersect,
    merge,
    parse_lookback,
    subtract,
    utc,
)
from headwater.zones.lake import Snapshot


@dataclass(frozen=True)
class IntervalPlan:
    """The work of one incremental model in one run."""

    work: list[Range]  # merged ranges to (re)write
    done_after: list[Range]  # what the version will have done once `work` is written
    restated: int  # intervals in `work` that were done before
    late_rows: int  # late rows in the new upstream batches
    seen: dict[str, int] = field(default_factory=dict)  # raw table -> newest snapshot id
    done: list[Range] = field(default_factory=list)  # what the version had done before


def plan(
    model: Model,
    *,
    done: Sequence[Range],
    seen: Mapping[str, int],
    snapshots: Mapping[str, Sequence[Snapshot]],
) -> IntervalPlan:
    """Plan the intervals of `model` given what it has done and the raw snapshots upstream.

    Args:
        done: ranges the model version has written before (empty on a first or full build).
        seen: raw table → last snapshot id the version has processed.
        snapshots: raw table → its snapshots, oldest first (each with its event range).
    """
    unit = model.config.interval
    every: list[Range] = []
    new: list[Range] = []
    late = 0
    unknown_change = False
    for table, snaps in snapshots.items():
        ids = [s.snapshot_id for s in snaps]
        first_new = ids.index(seen[table]) + 1 if seen.get(table) in ids else 0
        for i, snap in enumerate(snaps):
            spans = _event_ranges(snap)
            every.extend(spans)
            load = snap.properties.get("load", "append")
            if i >= first_new and (snap.properties.get("rows") or load != "append"):
                late += int(snap.properties.get("late") or 0)
                # a merge may supersede a key's version in any interval; a snapshot replaces
                # the copy before it, whose times change too
                unknown_change = unknown_change or not spans or load == "merge"
                new.extend(spans)
                if load == "snapshot" and i > 0:
                    before = _event_ranges(snaps[i - 1])
                    unknown_change = unknown_change or not before
                    new.extend(before)
    newest = {t: s[-1].snapshot_id for t, s in snapshots.items() if s}
    if not every and model.config.start is None:
        if not any(s.properties.get("rows") for snaps in snapshots.values() for s in snaps):
            return IntervalPlan([], list(done), 0, 0, newest, list(done))
        raise ModelError(
            "incremental_by_time cannot tell which times its upstream data covers",
            where=Location(model.path),
            hint="declare a `watermark:` on the upstream contracts, or set `start:` here",
        )
    lo = utc(model.config.start) if model.config.start else min(r[0] for r in every)
    hi = max((r[1] for r in every), default=lo)
    full = covering(lo, hi, unit)
    missing = subtract([full], done)
    touched = (
        list(done) if unknown_change else intersect([covering(a, b, unit) for a, b in new], done)
    )
    lookback: list[Range] = []
    if (new or missing or unknown_change) and model.config.lookback:
        span = parse_lookback(model.config.lookback, unit)
        lookback = intersect([(full[1] - span, full[1])], done)
    again = merge([*touched, *lookback])
    work = merge([*missing, *again])
    return IntervalPlan(work, merge([*done, *work]), count(again, unit), late, newest, list(done))


def _event_ranges(snap: Snapshot) -> list[Range]:
    """The event times a batch touched: its hour ranges, else its [min, max] (older batches)."""
    ranges = snap.properties.get("event_ranges")
    if ranges:
        return [(utc(lo), utc(hi)) for lo, hi in ranges]
    lo, hi = snap.properties.get("event_min"), snap.properties.get("event_max")
    return [(utc(lo), utc(hi) + timedelta(microseconds=1))] if lo and hi else []
