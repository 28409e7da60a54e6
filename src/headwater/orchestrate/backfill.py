"""Backfills: write a range of intervals of one `incremental_by_time` model again, on several
threads, resumably, into the version the project's SQL names now.

What is written. The range is rounded out to whole intervals and cut to what the model's data
covers (from its `start:`, else the earliest event upstream, to the latest): a full refresh
holds no other interval. Every interval of it is written again — what was asked is what is
computed, as dbt's `--event-time-start/--event-time-end` — or, with `only_missing`, only
those the version has not done (as SQLMesh's `plan --start --end`). Units of `batch_size`
intervals (if the model sets it; else one interval) run on `parallel` threads, each a
delete + insert in one engine transaction, so writing one twice equals writing it once. Once
the warehouse commits a unit, one catalog transaction records it done for the backfill and
for the version (its done ranges and row count): a kill between the two only means the unit
is written again.

Resuming. The same backfill asked again (same model version, same range) continues the
unfinished one (killed, interrupted or failed), skipping the units it recorded. At the end the
version's rows are counted into the catalog, so the next run finds the version as recorded
(not "changed outside headwater"), the range done, and writes nothing for it unless new data
landed since (which it restates, as after any run).

Which version, and its rules.
- Published (prod points at it): written in place. Readers see a unit once it commits, so
  each is audited in its own transaction: an `error` rule failing rolls the unit back (it is
  reported failed, and written again by a resume). A rule comparing rows of different units
  (uniqueness across them, a row count) cannot see the units other threads have not
  committed: the whole table is audited once more at the end and a failure there reported;
  with `parallel` 1, every unit's audit sees all the others.
- Not published (never built, or its SQL changed since the published version): its table is
  made empty (or continued, when an earlier backfill or build left it) and filled without
  audits, since nobody reads it. Once it holds every interval its data covers and its rules
  pass on the whole table, it is published, as a build publishes (write-audit-publish); until
  then prod shows what it showed, and `headwater run` would complete and publish it.
The models it reads are read as published: one never built, or changed since it was
published, must be built first.
"""

from __future__ import annotations

import difflib
import queue
import threading
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from headwater.change.environments import Environment
from headwater.change.versions import PROD, physical_name, view_sql
from headwater.contracts import ModelKind, OnFail
from headwater.contracts.specs import IntervalUnit
from headwater.contracts.thresholds import parse_duration
from headwater.engine import Engine
from headwater.errors import HeadwaterError, Location, TimedOut, UsageError
from headwater.models import Model
from headwater.models.intervals import (
    Range,
    batches,
    count,
    covering,
    intersect,
    merge,
    subtract,
    utc,
)
from headwater.observe import Event, EventSink, RunStatus, TaskStatus, discard, stamped
from headwater.orchestrate.build import open_builder
from headwater.orchestrate.checks import record_checks
from headwater.orchestrate.deadline import deadline
from headwater.orchestrate.incremental import IntervalPlan
from headwater.orchestrate.lease import held
from headwater.orchestrate.materialize import route
from headwater.orchestrate.materialize.by_time import create_empty, replace_interval
from headwater.orchestrate.report import RunReport, now_after
from headwater.orchestrate.retry import Retrying
from headwater.orchestrate.stores import Stores
from headwater.project import Project
from headwater.quality import CheckResult
from headwater.zones.catalog import TaskRecord
from headwater.zones.catalog.backfills import BackfillStatus

STAGE = "backfill"  # the stage of its events and of its task in the run's record
PLANNED = "planned"  # the first event: detail `intervals` (in the range), `skipped` (done)


class VersionState(StrEnum):
    """The version a backfill writes, as it found it."""

    PUBLISHED = "published"  # prod points at it: written in place
    UNPUBLISHED = "unpublished"  # made by an earlier backfill or build: continued
    NEW = "new"  # never made: made empty, then filled


@dataclass(frozen=True)
class Request:
    """What to backfill: a model's intervals in `[start, end)`."""

    model: str
    start: datetime
    end: datetime
    parallel: int = 1
    only_missing: bool = False
    requested_by: str | None = None


@dataclass(frozen=True)
class Failure:
    """A unit of intervals that was not written, and why."""

    span: Range
    error: str


@dataclass
class BackfillReport:
    """What a backfill did, for the CLI and the run's record."""

    model: str
    span: Range  # the range asked, rounded out to whole intervals
    unit: IntervalUnit
    physical: str = ""
    version: VersionState = VersionState.PUBLISHED
    backfill_id: str = ""
    run_id: str = ""
    covered: list[Range] = field(default_factory=list)  # the part its data covers
    intervals: int = 0  # intervals in `covered`
    skipped: int = 0  # ... done by this backfill before it was resumed
    present: int = 0  # ... done by the version already (`only_missing`)
    written: int = 0  # ... written now
    failed: list[Failure] = field(default_factory=list)
    resumed: bool = False
    interrupted: bool = False
    published: bool = False  # a version not published before is now
    remaining: list[Range] = field(default_factory=list)  # what it lacks to be published
    rows: int | None = None
    checks: list[CheckResult] = field(default_factory=list)  # its rules on the whole table
    notes: list[str] = field(default_factory=list)

    @property
    def blocked(self) -> list[str]:
        """The `error` rules failing on the whole table at the end."""
        return [c.rule.name for c in self.checks if c.blocking]

    @property
    def status(self) -> BackfillStatus:
        if self.interrupted:
            return BackfillStatus.INTERRUPTED
        if self.failed or self.blocked:
            return BackfillStatus.FAILED
        return BackfillStatus.DONE

    @property
    def ok(self) -> bool:
        return self.status is BackfillStatus.DONE

    def as_dict(self) -> dict[str, Any]:
        """Everything but the rule results, as JSON values."""
        return {
            "backfill_id": self.backfill_id,
            "run_id": self.run_id,
            "model": self.model,
            "status": self.status.value,
            "ok": self.ok,
            "start": self.span[0],
            "end": self.span[1],
            "interval": self.unit.value,
            "covered": [{"start": lo, "end": hi} for lo, hi in self.covered],
            "physical": self.physical,
            "version": self.version.value,
            "intervals": self.intervals,
            "written": self.written,
            "skipped": self.skipped,
            "present": self.present,
            "failed": [
                {"start": f.span[0], "end": f.span[1], "error": f.error} for f in self.failed
            ],
            "resumed": self.resumed,
            "interrupted": self.interrupted,
            "published": self.published,
            "remaining": [{"start": lo, "end": hi} for lo, hi in self.remaining],
            "rows": self.rows,
            "blocked": self.blocked,
            "notes": self.notes,
        }


def backfill(
    project: Project,
    stores: Stores,
    request: Request,
    *,
    now: datetime,
    sink: EventSink = discard,
) -> BackfillReport:
    """Write `request.model`'s intervals in `[start, end)` again (see the module's doc),
    holding the project's run lease; the backfill is recorded as a run (`backfill`).

    Raises:
        UsageError: what cannot be backfilled (an unknown model, not incremental_by_time, a
            range with no data, what it reads not built), with what to do instead.
        Busy: another run holds the project.
    """
    if request.parallel < 1:
        raise UsageError(f"--parallel {request.parallel}: at least 1 unit at a time")
    model = backfillable(project, request.model)
    span, notes = aligned(request.start, request.end, model.config.interval)
    with held(stores.catalog, f"{STAGE} {model.name}") as lease:
        job = _Backfill(project, stores, model, request, span, now=now, sink=sink)
        if lease.took_over:  # a run or backfill killed before: this one continues it
            notes.append(f"this backfill {lease.took_over}")
        job.report.notes[:0] = notes
        report = job.run()
        if lease.lost:
            report.notes.append(
                "another run took this backfill's lease over while it ran: check `headwater "
                "runs` for runs that overlapped"
            )
        return report


def backfillable(project: Project, name: str) -> Model:
    """The model `name` names, if a backfill can write it."""
    model = project.models.get(name)
    if model is None:
        short = [n for n in project.models if n.split(".", 1)[-1] == name]
        close = short or difflib.get_close_matches(name, sorted(project.models), n=1, cutoff=0.6)
        raise UsageError(
            f"no model named {name!r}",
            hint=f"did you mean {close[0]!r}?" if close else _kind_hint(project),
        )
    kind = model.config.kind
    if kind is not ModelKind.INCREMENTAL_BY_TIME:
        raise UsageError(
            f"{name} is a {kind.value} model: only incremental_by_time models have intervals "
            f"to backfill (`headwater run -s {name} --full-refresh` rebuilds it)",
            hint=_kind_hint(project),
        )
    if model.function is not None:
        raise UsageError(
            f"{name} is a Python model, which every build writes whole: it has no intervals "
            "to backfill",
            hint=f"`headwater run -s {name} --full-refresh` rebuilds it",
        )
    return model


def aligned(start: datetime, end: datetime, unit: IntervalUnit) -> tuple[Range, list[str]]:
    """`[start, end)` rounded out to whole intervals, and what rounding changed."""
    start, end = utc(start), utc(end)
    if start >= end:
        raise UsageError(
            f"--start {shown(start, unit)} is not before --end {shown(end, unit)}",
            hint="the range is [start, end): --start 2026-01-01 --end 2026-02-01 is January",
        )
    span = covering(start, end, unit)
    notes = []
    if span[0] != start:
        notes.append(
            f"--start {shown(start, unit, exact=True)} is inside a {unit.value}: "
            f"rounded down to {shown(span[0], unit)}"
        )
    if span[1] != end:
        notes.append(
            f"--end {shown(end, unit, exact=True)} is inside a {unit.value}: "
            f"rounded up to {shown(span[1], unit)}"
        )
    return span, notes


def shown(moment: datetime, unit: IntervalUnit, *, exact: bool = False) -> str:
    """A time as a user writes it: a date for days and weeks, else with its hour."""
    if exact and moment.time() != datetime.min.time():
        return f"{moment:%Y-%m-%d %H:%M:%S}".removesuffix(":00")
    return f"{moment:%Y-%m-%d %H:%M}" if unit is IntervalUnit.HOUR else f"{moment:%Y-%m-%d}"


def shown_range(span: Range, unit: IntervalUnit) -> str:
    return f"[{shown(span[0], unit)}, {shown(span[1], unit)})"


class _Backfill:
    """One backfill of one model: its version found, its units written on worker threads,
    its record kept."""

    def __init__(
        self,
        project: Project,
        stores: Stores,
        model: Model,
        request: Request,
        span: Range,
        *,
        now: datetime,
        sink: EventSink,
    ):
        self.project, self.stores, self.model, self.request = project, stores, model, request
        self.now, self.sink, self.name = now, sink, model.name
        self.unit = model.config.interval
        # the builder of the one model: its query, its rules, its version's record; the run
        # it records check results under starts once the backfill is known to be possible
        self.run_report = RunReport("")
        self.builder = open_builder(
            project, stores, self.run_report, now=now, sink=discard, chosen={model.name}
        )
        self.fp = self.builder.fps[model.name]
        self.physical = self.builder.physical[model.name]
        self.report = BackfillReport(model.name, span, self.unit, physical=self.physical)
        self.routed = [r for r in model.rules if r.action is OnFail.QUARANTINE]
        self.backfill_id = ""
        self.done: list[Range] = []  # what the version had done before
        self.extent: list[Range] = []  # the intervals its data covers
        self.seen: dict[str, int] = {}  # the raw snapshots the extent is of
        self._lock = threading.Lock()  # the report and the cursors, shared by the workers
        self._stop = threading.Event()
        self._cursors: list[Engine] = []
        self._idle = threading.Condition()  # notified as each worker ends
        self._running = 0  # workers not ended yet
        self._crash: Exception | None = None

    def run(self) -> BackfillReport:
        report, catalog = self.report, self.stores.catalog
        pending = [
            b
            for b in catalog.backfills(self.name, unfinished=True)
            if b.fingerprint == self.fp and (b.start, b.end) == report.span
        ]
        state, done = self._version(resuming=bool(pending))
        report.version = state
        # a new table holds none of what an unfinished backfill wrote into one now gone
        recorded = pending[0].done if pending and state is not VersionState.NEW else ()
        units = self._units(done, recorded)
        run_id = catalog.start_run(STAGE, now=self.now)
        self.run_report.run_id = report.run_id = run_id
        self.sink = stamped(self.sink, run_id)
        found, report.resumed = catalog.start_backfill(
            self.name,
            self.fp,
            report.span,
            requested_by=self.request.requested_by,
            now=self.now,
            forget_done=state is VersionState.NEW,
        )
        self.backfill_id = report.backfill_id = found.backfill_id
        detail = {"intervals": report.intervals, "skipped": report.skipped + report.present}
        self.sink(Event(STAGE, self.name, PLANNED, detail))
        try:
            if state is VersionState.NEW:
                self._make()
            else:  # written in place: data a retained release shows is copied aside first
                self.builder.freeze(self.model, self.physical, self.stores.engine)
            self._quarantine_table()
            self._write_all(units)
            self._finish(state)
        except BaseException as err:
            report.interrupted = report.interrupted or isinstance(err, KeyboardInterrupt)
            with suppress(Exception):  # never hide what stopped it
                self._record(error=f"{type(err).__name__}: {err}")
            raise
        self._record()
        return report

    def _version(self, *, resuming: bool) -> tuple[VersionState, list[Range]]:
        """Which version the backfill writes, and the intervals it has done.

        Raises:
            UsageError: what it reads must be built first; or its published version was
                changed outside headwater (rows deleted or added), which a run rebuilds.
        """
        self._refuse_stale_reads()
        key = (self.name, self.fp)
        known = self.builder.versions.get(key)
        exists = self.physical in self.stores.engine.objects()
        done = list(self.builder.done.get(key, []))
        published = self.builder.pointers.get(self.name)
        if published == self.physical:
            # a resumed backfill's own kill (between a unit's commit and its record) may
            # have left the counts apart: it counts them again at its end
            why = None
            if known is None:
                why = "the catalog has no record of its version"
            elif not resuming:
                why = self.builder.changed_since(self.model, known)
            if why:
                raise UsageError(
                    f"{self.name}: {why} (changed outside headwater)",
                    hint=f"`headwater run -s {self.name}` rebuilds it whole, every interval",
                )
            return VersionState.PUBLISHED, done
        self.report.notes.append(
            f"{self.name} has never been published: this backfill builds its version "
            f"{self.physical}"
            if published is None
            else f"{self.name}'s SQL (or what it reads) changed since prod's version "
            f"{published}: this backfill builds the new one, {self.physical}, and prod shows "
            "the old one until it holds every interval"
        )
        if known is not None and exists:
            return VersionState.UNPUBLISHED, done
        return VersionState.NEW, []

    def _refuse_stale_reads(self) -> None:
        """Every model it reads (directly or through ephemeral models) must be published at
        the version the project names; every table its rules read, published."""
        pointers, fps, models = self.builder.pointers, self.builder.fps, self.project.models
        for dep in sorted(_reads(self.model, models)):
            if dep not in pointers:
                raise UsageError(
                    f"{self.name} reads {dep}, which has never been built",
                    hint=f"build it first: headwater run -s {dep} (+{dep}: with what it reads)",
                )
            if pointers[dep] != physical_name(dep, fps[dep]):
                raise UsageError(
                    f"{self.name} reads {dep}, whose SQL (or what it reads) changed since it "
                    "was built",
                    hint=f"build it first: headwater run -s {dep}",
                )
        for table in self.model.audit_refs:
            if table in models and table not in pointers:
                raise UsageError(
                    f"the rules of {self.name} read {table}, which has never been built",
                    hint=f"build it first: headwater run -s {table}",
                )

    def _units(self, done: list[Range], recorded: tuple[Range, ...]) -> list[Range]:
        """The units of intervals to write: the range cut to the data, less what the version
        has (`only_missing`), less what this backfill recorded before it was stopped."""
        report, unit, config = self.report, self.unit, self.model.config
        whole = self.builder.whole(self.model)  # raises ModelError when it cannot tell
        self.seen, self.extent = whole.seen, whole.work
        if not whole.work:
            raise UsageError(
                f"no data upstream of {self.name} has landed yet: no interval to backfill",
                hint="land it first: headwater ingest (or headwater run)",
            )
        covered = intersect([report.span], whole.work)
        data = ", ".join(shown_range(r, unit) for r in whole.work)
        if not covered:
            lo, hi = whole.work[0][0], whole.work[-1][1]
            raise UsageError(
                f"{shown_range(report.span, unit)} holds none of {self.name}'s data, which "
                f"covers {data}",
                hint=f"e.g. --start {shown(lo, unit)} --end {shown(hi, unit)}",
            )
        if covered != [report.span]:
            start = f" (from its start: {shown(utc(config.start), unit)})" if config.start else ""
            report.notes.append(
                f"{self.name}'s data covers {data}{start}: backfilling "
                f"{', '.join(shown_range(r, unit) for r in covered)}"
            )
        wanted = subtract(covered, done) if self.request.only_missing else covered
        report.covered, report.intervals = covered, count(covered, unit)
        report.present = report.intervals - count(wanted, unit)
        report.skipped = count(intersect(wanted, recorded), unit)
        if self.request.only_missing and report.present == report.intervals:
            report.notes.append(
                f"every interval of {', '.join(shown_range(r, unit) for r in covered)} is "
                "done already: without --only-missing they are written again"
            )
        size = config.batch_size if "batch_size" in config.model_fields_set else 1
        self.done = done
        return batches(subtract(wanted, recorded), unit, size)

    def _make(self) -> None:
        """Make the new version's table, empty, and record the version (not published):
        keyed by the raw snapshots of now, so the next run restates what lands later."""
        create_empty(self.builder.job(self.stores.engine, self.model))
        version = self.builder.new_version(self.model, self.seen)
        self.stores.catalog.begin_version(version, run_id=self.report.run_id, now=self.now)

    def _quarantine_table(self) -> None:
        """Make the version's quarantine table if its rules route rows and it has none."""
        aside = f"{self.physical}__quarantine"
        if self.routed and aside not in self.stores.engine.objects():
            nothing = IntervalPlan([], [], 0, 0)  # routes nothing: only makes the table
            route(self.builder.job(self.stores.engine, self.model, nothing), self.routed)

    def _write_all(self, units: list[Range]) -> None:
        """Write the units on `parallel` worker threads, a cursor each; Ctrl-C stops them
        (statements under way are interrupted and roll back) and the backfill is left to
        resume."""
        if not units:
            return
        work: queue.SimpleQueue[Range] = queue.SimpleQueue()
        for span in units:
            work.put(span)
        threads = min(self.request.parallel, len(units))
        self._running = threads
        for n in range(threads):
            name = f"hw-backfill-{n}"
            threading.Thread(target=self._worker, args=(work,), name=name, daemon=True).start()
        # waited for on a condition, not with Thread.join: a Ctrl-C landing in join() can
        # leave a thread still running marked as finished (CPython gh-90882)
        try:
            self._wait(timeout=0.2)  # a wait with a timeout lets Ctrl-C in
        except KeyboardInterrupt:
            self.report.interrupted = True
            self._stop.set()
            with self._lock:
                for cursor in self._cursors:
                    with suppress(Exception):
                        cursor.interrupt()
            self._wait(timeout=None)
        if self._crash is not None:
            raise self._crash

    def _wait(self, *, timeout: float | None) -> None:
        """Until every worker has closed its cursor."""
        with self._idle:
            while self._running:
                self._idle.wait(timeout)

    def _worker(self, work: queue.SimpleQueue[Range]) -> None:
        cursor = self.stores.engine.cursor()
        with self._lock:
            self._cursors.append(cursor)
        try:
            while not self._stop.is_set():
                try:
                    span = work.get_nowait()
                except queue.Empty:
                    return
                self._unit(cursor, span)
        except Exception as err:
            # what the interrupted statement raised when stopping is no failure; any other
            # error (the catalog failing) stops every worker and is raised in the caller
            if not self._stop.is_set():
                self._crash = err
                self._stop.set()
        finally:
            with self._lock:
                self._cursors.remove(cursor)
            try:
                cursor.close()
            finally:
                with self._idle:
                    self._running -= 1
                    self._idle.notify_all()

    def _unit(self, cursor: Engine, span: Range) -> None:
        """Write one unit, again after an error a retry may fix (a write conflict), then
        record it done; a unit that fails is reported and left for a resume."""
        detail: dict[str, Any] = {"start": span[0], "end": span[1]}
        detail["intervals"] = count([span], self.unit)
        self.sink(Event(STAGE, self.name, TaskStatus.START, detail))
        try:
            rows = self._retrying(detail).call(lambda: self._write(cursor, span))
        except (HeadwaterError, _Blocked) as err:
            if self._stop.is_set():
                return  # interrupted: written by the resume
            if isinstance(err, HeadwaterError) and err.where is None:
                err.where = Location(self.model.path)
            error = err.render() if isinstance(err, HeadwaterError) else str(err)
            status = TaskStatus.BLOCKED if isinstance(err, _Blocked) else TaskStatus.FAILED
            with self._lock:
                self.report.failed.append(Failure(span, error))
            self.sink(Event(STAGE, self.name, status, {**detail, "error": error}))
            return
        key = (self.name, self.fp)
        self.stores.catalog.record_backfilled(self.backfill_id, key, span, rows=rows)
        with self._lock:
            self.report.written += detail["intervals"]
        self.sink(Event(STAGE, self.name, TaskStatus.BUILT, {**detail, "rows": rows}))

    def _retrying(self, detail: dict[str, Any]) -> Retrying:
        config, defaults = self.model.config, self.project.settings.defaults

        def waiting(err: HeadwaterError, wait: float) -> None:
            retry = {**detail, "error": err.message, "wait": round(wait, 3)}
            self.sink(Event(STAGE, self.name, TaskStatus.RETRYING, retry))

        return Retrying(
            defaults.retries if config.retries is None else config.retries,
            parse_duration(config.timeout or defaults.timeout),
            first_wait=parse_duration(defaults.backoff),
            on_retry=waiting,
        )

    def _write(self, cursor: Engine, span: Range) -> int | None:
        """Delete + insert one unit in one transaction, its quarantined rows routed out and,
        in a published version, its rules passing; the rows it added (None: not told)."""
        # the whole version besides this unit: routing replaces the quarantine table only
        # when the unit is all of it
        around = merge([*self.done, *self.extent, span])
        job = self.builder.job(cursor, self.model, IntervalPlan([span], around, 0, 0))
        timeout = self.model.config.timeout or self.project.settings.defaults.timeout
        with deadline(cursor, parse_duration(timeout), timeout) as watch:
            try:
                with cursor.transaction():
                    deleted, inserted = replace_interval(job, span)
                    moved = route(job, self.routed) if self.routed else 0
                    if self.report.version is VersionState.PUBLISHED and self.model.rules:
                        self._audit_unit(cursor)
            except HeadwaterError as err:
                if watch.fired:
                    raise TimedOut(
                        f"writing {shown_range(span, self.unit)} ran past its timeout "
                        f"({timeout}) and was stopped; it was rolled back",
                        where=Location(self.model.path),
                        hint="set a longer `timeout:` in its header",
                    ) from err
                raise
        return None if deleted is None or inserted is None else inserted - deleted - moved

    def _audit_unit(self, cursor: Engine) -> None:
        failed = [r for r in self.builder.audit(self.model, cursor) if r.blocking]
        if failed:
            names = ", ".join(r.rule.name for r in failed)
            raise _Blocked(f"error rule(s) failed: {names}; the unit was rolled back")

    def _finish(self, state: VersionState) -> None:
        """Count the version's rows into the catalog; unless stopped, audit it whole, and
        publish a version that was not, once it holds every interval of its data."""
        report, engine, catalog = self.report, self.stores.engine, self.stores.catalog
        report.rows = engine.row_counts([self.physical])[self.physical]
        catalog.set_version_rows(self.name, self.fp, report.rows)
        if report.interrupted or report.failed:
            return
        # rules on the whole table: unless nothing in it changed (a published version
        # audited as it was last written)
        unchanged = state is VersionState.PUBLISHED and not (report.written or report.resumed)
        if self.model.rules and not unchanged:
            report.checks = self.builder.audit(self.model, engine)
            record_checks(self.stores, report.run_id, report.checks, now=self.now)
        done = catalog.all_intervals().get((self.name, self.fp), [])
        if state is VersionState.PUBLISHED:
            if report.blocked:
                report.notes.append(
                    f"the intervals written stay in {self.name}, which prod shows: rules "
                    "comparing rows of different intervals failed only on the whole table"
                )
            return
        report.remaining = subtract(self.extent, done)
        if report.blocked or report.remaining:
            return
        version = replace(catalog.model_versions()[(self.name, self.fp)], rows=report.rows)
        dialect = engine.dialect
        views = [view_sql(self.name, self.physical, dialect)]
        if self.routed:
            views.append(
                view_sql(f"{self.name}__quarantine", f"{self.physical}__quarantine", dialect)
            )
        Environment(engine, catalog, PROD).release(
            [(version, done)], views, run_id=report.run_id, now=now_after(self.now)
        )
        report.published = True

    def _record(self, error: str | None = None) -> None:
        """The backfill's status, its task and its run, in the catalog."""
        report, catalog = self.report, self.stores.catalog
        status = BackfillStatus.FAILED if error and not report.interrupted else report.status
        catalog.end_backfill(self.backfill_id, status, now=now_after(self.now))
        if error is None and report.interrupted:
            error = "interrupted: the same backfill asked again continues it"
        elif error is None and report.failed:
            error = f"{len(report.failed)} unit(s) failed, e.g. {report.failed[0].error}"
        elif error is None and report.blocked:
            error = f"error rule(s) failed: {', '.join(report.blocked)}"
        ok = status is BackfillStatus.DONE
        task = TaskRecord(
            task=self.name,
            stage=STAGE,
            status=TaskStatus.BUILT if ok else TaskStatus.FAILED,
            rows=report.rows,
            error=error,
        )
        catalog.record_tasks(report.run_id, [task])
        catalog.end_run(
            report.run_id,
            status=RunStatus.SUCCESS if ok else RunStatus.FAILED,
            summary={STAGE: report.as_dict()},
            now=now_after(self.now),
        )


class _Blocked(Exception):
    """An error rule failed on a unit of the published version: roll the unit back."""


def _reads(model: Model, models: dict[str, Model]) -> set[str]:
    """The models `model` reads from their tables: directly, or through ephemeral ones."""
    out: set[str] = set()
    for dep in model.depends_on:
        upstream = models.get(dep)
        if upstream is None:
            continue  # a raw table
        if upstream.config.kind is ModelKind.EPHEMERAL:
            out |= _reads(upstream, models)
        else:
            out.add(dep)
    return out


def _kind_hint(project: Project) -> str:
    timed = sorted(
        n for n, m in project.models.items() if m.config.kind is ModelKind.INCREMENTAL_BY_TIME
    )
    if not timed:
        return "this project has no incremental_by_time model"
    return f"its incremental_by_time models: {', '.join(timed)}"
