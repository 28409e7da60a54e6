"""What a run did: per-model outcomes, landed batches, rule results."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from headwater.observe import TaskStatus
from headwater.quality import CheckResult

if TYPE_CHECKING:
    from headwater.ingest import Landed


@dataclass
class ModelOutcome:
    """What happened to one model in a run."""

    name: str
    status: TaskStatus
    physical: str | None = None
    rows: int | None = None
    seconds: float = 0.0
    error: str | None = None
    data_key: str | None = None
    intervals: int = 0  # incremental models: intervals written this run
    restated: int = 0  # ... of which were done before and written again (late data, lookback)
    late_rows: int = 0  # late rows among the new upstream data
    written: list[tuple[datetime, datetime]] = field(default_factory=list)  # ranges written
    quarantined: int = 0  # rows routed to <model>__quarantine by on_fail: quarantine rules
    audited: bool = False  # up to date, but audited again: its rules or what they read changed
    retryable: bool = False  # it failed in a way another attempt may fix
    attempts: int = 1
    started_at: datetime | None = None  # wall clock, when a worker built it (retries included)
    ended_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.status.ok


@dataclass
class RunReport:
    """Everything a run did, for the CLI summary and the catalog."""

    run_id: str
    landed: list[Landed] = field(default_factory=list)
    ingest_errors: dict[str, str] = field(default_factory=dict)
    models: dict[str, ModelOutcome] = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)
    zone_rows: dict[str, int] = field(default_factory=dict)
    held: dict[str, dict[str, str]] = field(default_factory=dict)  # table → batch → why
    removed: list[str] = field(default_factory=list)  # models gone from the project: unpublished
    notes: list[str] = field(default_factory=list)  # what the user should know about the run
    release: int | None = None  # the release the run wrote (it moved the environment's pointers)
    staged: str | None = None  # (apply) the green environment awaiting approval
    # wall seconds of the run's fixed steps (start, raw_views, prepare, publish, record,
    # zone_rows, end) and of its tasks (`tasks`, which holds prepare, publish and record)
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        """Add the wall time of the block to `timings[step]`."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[step] = self.timings.get(step, 0.0) + time.perf_counter() - started

    @property
    def ok(self) -> bool:
        return (
            not self.ingest_errors
            and all(m.ok for m in self.models.values())
            and not any(c.blocking for c in self.checks)
        )

    def summary(self) -> dict[str, Any]:
        return {
            "landed": {x.table: x.rows for x in self.landed},
            "quarantined": {
                **{x.table: x.quarantined for x in self.landed},
                **{m.name: m.quarantined for m in self.models.values() if m.quarantined},
            },
            "models": {m.name: m.status for m in self.models.values()},
            "checks_failed": [c.rule.name for c in self.checks if not c.passed],
            "ingest_errors": self.ingest_errors,
            "held": {t: sorted(b) for t, b in self.held.items() if b},
            "warnings": {x.table: x.warnings for x in self.landed if x.warnings},
            "notes": self.notes,
            **({"release": self.release} if self.release is not None else {}),
            **({"staged": self.staged} if self.staged is not None else {}),
        }


def now_after(now: datetime) -> datetime:
    """Wall-clock now, but never before the run's `now` (tests pass a fixed `now`)."""
    wall = datetime.now(now.tzinfo)
    return max(wall, now)
