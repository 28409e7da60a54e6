"""The scheduler: cron schedules, data-arrival triggers and SLA checks, in one loop.

Each tick, at the clock's `now`:
1. **Schedules** — every job whose cron time has come runs: the project's `schedule:` a
   whole run (ingest and build), a contract's its landing, a model's its build (and what it
   reads that is stale). After downtime, `catch_up: latest` runs a job once for its newest
   missed time, `all` once per missed time, oldest first, each run at that time's clock.
2. **Data arrival** — raw tables that changed since the last tick (a follow worker, another
   process, a scheduled landing) have what reads them built.
3. **SLAs** — freshness deadlines and run durations are checked, incidents opened and
   resolved, alert events sent (`orchestrate.sla`): late data alerts even when nothing ran.

A run the project's lease refuses (another run is under way) is tried again next tick; the
job is not marked as fired. The scheduler's memory (when each job fired, what raw versions it
saw) is in the catalog, so a restart resumes it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from headwater.contracts.orchestration import Schedule, zone
from headwater.errors import HeadwaterError
from headwater.observe import EventSink, discard
from headwater.orchestrate.build import raw_sources
from headwater.orchestrate.report import RunReport
from headwater.orchestrate.running import run
from headwater.orchestrate.sla import Alerting, Checked, check, landed_at
from headwater.orchestrate.stores import LakeStores, Stores
from headwater.project import Project
from headwater.zones.catalog.lease import Busy

ARRIVAL = "#arrival"  # the scheduler's memory of raw versions seen
MOST_MISSED = 1000  # catch_up: all runs at most this many missed times at once


@dataclass(frozen=True)
class Job:
    """Something on a schedule: `project`, a raw table (its landing) or a model (its build)."""

    name: str
    schedule: Schedule
    stages: tuple[str, ...]
    select: tuple[str, ...] | None = None  # models to build (None: all)
    tables: tuple[str, ...] | None = None  # the contracts it lands (None: all)


def jobs(project: Project) -> list[Job]:
    """Every scheduled job of the project."""
    out = []
    if project.settings.schedule is not None:
        out.append(Job("project", project.settings.schedule, ("ingest", "build")))
    for table, contract in sorted(project.raw_tables.items()):
        if contract.schedule is not None:
            out.append(Job(table, contract.schedule, ("ingest",), tables=(table,)))
    for name, model in sorted(project.models.items()):
        if model.config.schedule is not None:
            out.append(Job(name, model.config.schedule, ("build",), select=(f"+{name}",)))
    return out


def fire_times(schedule: Schedule, after: datetime, until: datetime) -> Iterator[datetime]:
    """The cron times in (`after`, `until`], oldest first, in UTC.

    The cron is read in the schedule's time zone, DST-safe. A job at set hours is read on the
    wall clock: a local time a clock change repeats (02:30 on the last Sunday of October in
    Berlin) fires once, at its first occurrence, and one it skips (02:30 on the last Sunday of
    March) fires once, an hour later by the wall clock — a daily job runs once every day. A job
    every hour (hour field `*`) keeps its rhythm in elapsed time through the change.
    """
    from croniter import croniter

    tz = zone(schedule.timezone)
    hourly = schedule.cron.split()[1] == "*"
    start = after.astimezone(tz)
    times = croniter(schedule.cron, start if hourly else start.replace(tzinfo=None))
    last = after
    while True:
        found: datetime = times.get_next(datetime)
        wall = found if hourly else found.replace(tzinfo=tz, fold=0)
        moment = wall.astimezone(UTC)
        if moment > until:
            return
        if moment > last:
            last = moment
            yield moment


@dataclass
class Tick:
    """What one tick did."""

    now: datetime
    runs: list[tuple[str, RunReport]] = field(default_factory=list)  # (why, report)
    waiting: list[str] = field(default_factory=list)  # jobs that could not run, and why
    checked: Checked | None = None


class Scheduler:
    """Ticks over a project. `stores` (the catalog and the lake) stay open; the warehouse is
    opened for each run only (`open_stores`), so `headwater sql` can read it in between."""

    def __init__(
        self,
        project: Project,
        stores: LakeStores,
        *,
        clock: Callable[[], datetime],
        open_stores: Callable[[], Stores] | None = None,
        sink: EventSink = discard,
        on_tick: Callable[[Tick], None] | None = None,
    ):
        self.project, self.stores, self.clock, self.sink = project, stores, clock, sink
        self.open_stores = open_stores or (lambda: Stores.open(project))
        self.on_tick = on_tick
        self.jobs = jobs(project)
        self.alerting = Alerting.of(project, stores.secrets)
        self._downstream = _downstream_of_raw(project)

    def tick(self) -> Tick:
        now = self.clock()
        tick = Tick(now)
        for job in self.jobs:
            self._fire(job, now, tick)
        self._arrivals(now, tick)
        tick.checked = check(
            self.project, self.stores.catalog, self.stores.lake, now=now, alerting=self.alerting
        )
        if self.on_tick is not None:
            self.on_tick(tick)
        return tick

    def serve(self, stop: threading.Event, *, every: float = 30.0) -> None:
        """Tick until `stop` is set, every `every` seconds (sooner when a job is due); a run
        under way when `stop` is set finishes first."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception as err:  # a store hiccup (catalog busy, lake unreachable): a
                # long-running scheduler says so and tries again, it does not die
                failed = Tick(self.clock(), waiting=[f"tick failed: {type(err).__name__}: {err}"])
                if self.on_tick is not None:
                    self.on_tick(failed)
            stop.wait(min(every, self._until_next()))

    def _until_next(self) -> float:
        now = self.clock()
        soonest = [
            next(fire_times(j.schedule, now, now + timedelta(days=366)), None) for j in self.jobs
        ]
        waits = [(t - now).total_seconds() for t in soonest if t is not None]
        return max(0.5, min(waits, default=3600.0))

    def _fire(self, job: Job, now: datetime, tick: Tick) -> None:
        catalog = self.stores.catalog
        fired = catalog.fired_at(job.name)
        if fired is None:  # first sight of this job: its first time is the next one
            catalog.mark_fired(job.name, now)
            return
        due = list(fire_times(job.schedule, fired, now))
        if not due:
            return
        if job.schedule.catch_up == "latest":
            due = due[-1:]
        elif len(due) > MOST_MISSED:
            tick.waiting.append(
                f"{job.name}: {len(due):,} missed times; running the newest {MOST_MISSED:,}"
            )
            due = due[-MOST_MISSED:]
        for moment in due:
            at = now if job.schedule.catch_up == "latest" else moment
            report = self._run(job.name, f"schedule {job.schedule.cron}", tick, at=at, job=job)
            if report is None:
                return  # refused: tried again next tick, from the same time
            catalog.mark_fired(job.name, moment)

    def _arrivals(self, now: datetime, tick: Tick) -> None:
        catalog, lake = self.stores.catalog, self.stores.lake
        versions = {t: lake.version(t) for t in self.project.raw_tables}
        seen = catalog.seen_versions(ARRIVAL)
        if seen is None:  # first tick ever: everything there is counts as seen
            catalog.see_versions(ARRIVAL, versions)
            return
        arrived = sorted(t for t, v in versions.items() if v is not None and seen.get(t) != v)
        models = self._stale(arrived)
        if models:
            job = Job(ARRIVAL, Schedule(cron="* * * * *"), ("build",), select=tuple(models))
            why = f"new data in {', '.join(arrived)}"
            report = self._run(ARRIVAL, why, tick, at=now, job=job)
            if report is None or not report.ok:
                return  # not seen yet: what failed is built again on the next tick
        if arrived:
            catalog.see_versions(ARRIVAL, {**seen, **{t: versions[t] for t in arrived}})

    def _stale(self, arrived: list[str]) -> list[str]:
        """The models reading `arrived` tables that no run has built since their newest
        landing (a run of another process may have built them already)."""
        built = self.stores.catalog.last_success("build")
        out: set[str] = set()
        for table in arrived:
            landed = landed_at(self.stores.lake, table)
            for model in self._downstream.get(table, ()):
                last = built.get(model)
                if landed is None or last is None or last < landed:
                    out.add(model)
        return sorted(out)

    def _run(self, name: str, why: str, tick: Tick, *, at: datetime, job: Job) -> RunReport | None:
        try:
            stores = self.open_stores()
        except HeadwaterError as err:  # the warehouse is busy (another process writes it)
            tick.waiting.append(f"{name}: {err.render()}")
            return None
        try:
            report = run(
                self.project,
                stores,
                now=at,
                sink=self.sink,
                stages=job.stages,
                command=f"scheduler {name}",
                select=list(job.select) if job.select else None,
                tables=job.tables,
            )
        except Busy as busy:
            tick.waiting.append(f"{name}: {busy.message}")
            return None
        except HeadwaterError as err:  # a store failed: say so, try again next tick
            tick.waiting.append(f"{name}: {err.render()}")
            return None
        finally:
            stores.close()
        tick.runs.append((f"{name}: {why}", report))
        if "build" in job.stages and job.select is None and report.ok:  # built from all there is
            lake = self.stores.lake
            self.stores.catalog.see_versions(
                ARRIVAL, {t: lake.version(t) for t in self.project.raw_tables}
            )
        return report


def _downstream_of_raw(project: Project) -> dict[str, set[str]]:
    """Raw table → the models that read it, directly or through other models."""
    out: dict[str, set[str]] = {}
    for model, tables in raw_sources(project).items():
        for table in tables:
            out.setdefault(table, set()).add(model)
    return out
