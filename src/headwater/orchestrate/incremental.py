"""Which intervals an `incremental_by_time` model must write this run, and why.

Every raw batch records the event-time range it touched (its snapshot summary). A model version
remembers the last raw snapshot it has seen of each raw table upstream of it (directly or
through other models). The intervals to write are: those never done, those a new batch touched
(late data included — that is what makes incremental equal a full rebuild), and the lookback.
A `load: snapshot` batch also touches the times of the copy it replaces; a `load: merge` batch
may supersede a version anywhere, so every interval done is written again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from headwater.contracts import ModelKind
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
from headwater.project import Project
from headwater.zones.catalog import Catalog
from headwater.zones.lake import Lake, Snapshot


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
    now: datetime | None = None,
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
    # no batch says which times it holds (no watermark upstream): every interval from
    # `start:` up to now, lest the model stay empty
    hi = max((r[1] for r in every), default=max(lo, utc(now)) if now is not None else lo)
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


@dataclass(frozen=True)
class Preview:
    """What a build would write of an incremental_by_time model, as `headwater plan` shows it."""

    intervals: int  # to (re)write
    restated: int  # ... of which were written before
    first: datetime | None
    last: datetime | None  # the end of the last one
    unknown: str | None = None  # why it cannot tell (no watermark, no start)


def preview(
    project: Project, catalog: Catalog, lake: Lake, names: Iterable[str]
) -> dict[str, Preview]:
    """The intervals each incremental_by_time model among `names` would (re)write if built
    now: every one its upstream data covers for a new version, else those not done yet, those
    new batches touched, and the lookback."""
    from headwater.change.versions import fingerprints
    from headwater.orchestrate.build import raw_sources

    fps, sources = fingerprints(project), raw_sources(project)
    versions, done_all = catalog.model_versions(), catalog.all_intervals()
    snapshots: dict[str, list[Snapshot]] = {}
    out: dict[str, Preview] = {}
    for name in names:
        model = project.models[name]
        if model.config.kind is not ModelKind.INCREMENTAL_BY_TIME:
            continue
        known = versions.get((name, fps[name]))
        for table in sources[name]:
            if table not in snapshots:
                snapshots[table] = lake.snapshots(table)
        try:
            planned = plan(
                model,
                done=done_all.get((name, fps[name]), []) if known else [],
                seen=known.inputs if known else {},
                snapshots={t: snapshots[t] for t in sources[name]},
                now=datetime.now(UTC),
            )
        except ModelError as err:
            out[name] = Preview(0, 0, None, None, err.message)
            continue
        work = planned.work
        out[name] = Preview(
            count(work, model.config.interval),
            planned.restated,
            work[0][0] if work else None,
            work[-1][1] if work else None,
        )
    return out
