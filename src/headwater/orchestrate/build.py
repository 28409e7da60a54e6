"""Build models in DAG order, independent ones in parallel: write, audit, then publish.

Each version is written and audited inside one engine transaction; a failing `error` rule rolls
it back. Models read their upstream versions by physical name, so the environment's views are
swapped only at the end, all in one transaction: readers see the previous versions until the
whole build is published, never a mix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Collection, Mapping
from contextlib import nullcontext
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from sqlglot import exp

from headwater.change import online, products
from headwater.change.environments import Environment
from headwater.change.releases import check_summary, code_version, pinned, who
from headwater.change.versions import (
    PROD,
    copy_name,
    data_key,
    fingerprints,
    physical_name,
    view_schema,
    view_sql,
)
from headwater.contracts import ModelKind, OnFail
from headwater.contracts.thresholds import parse_duration
from headwater.engine import Engine, ObjectKind, verbatim
from headwater.errors import EngineError, HeadwaterError, Location, ModelError, TimedOut
from headwater.govern.pii import ModelPii
from headwater.models import Model, Renderer
from headwater.models.intervals import Range, count
from headwater.observe import Event, EventSink, TaskStatus, stamped
from headwater.orchestrate.checks import Profiled, evaluate_in, record_checks
from headwater.orchestrate.deadline import Watch, deadline
from headwater.orchestrate.incremental import IntervalPlan, plan
from headwater.orchestrate.judged import Judging
from headwater.orchestrate.materialize import Job, mview, route, strategy
from headwater.orchestrate.materialize.mview import Refresh
from headwater.orchestrate.plan import Task
from headwater.orchestrate.report import ModelOutcome, RunReport, now_after
from headwater.orchestrate.retry import Retrying
from headwater.orchestrate.stores import Stores
from headwater.project import Project
from headwater.quality import CheckResult, written
from headwater.quality.drift import Relation
from headwater.zones.catalog import ModelVersion, NewRelease, TaskRecord
from headwater.zones.catalog.products import Shown
from headwater.zones.lake import Snapshot

# keys of a version's recorded inputs beside the raw snapshots it has seen
AUDIT = "#audit"  # what its last passing audit depended on (see _Builder._audit_key)
QUARANTINE_RULES = "#quarantine"  # its on_fail: quarantine rules, which shape its data
FORWARD_SQL = "#sql"  # a forward-only model's query: part of its data key, not its version
# kinds whose new version is the old one's table, written to in place
IN_PLACE = frozenset(
    {
        ModelKind.APPEND,
        ModelKind.INCREMENTAL_BY_KEY,
        ModelKind.INCREMENTAL_BY_TIME,
        ModelKind.SCD2,
    }
)


class BuildStage:
    """The build tasks of a run and its publish task: what the executor asks of them.

    Prepared once, before the first build task runs (after every ingest of the run: what a
    raw table holds names the versions built from it). `full_refresh` rebuilds from scratch
    (incremental models over their whole range); models left out of `chosen` are read as
    published. `blocked`: raw tables this run could not land, or whose batch a rule held.
    """

    def __init__(
        self,
        project: Project,
        stores: Stores,
        report: RunReport,
        *,
        now: datetime,
        sink: EventSink,
        blocked: Mapping[str, str],
        full_refresh: bool = False,
        chosen: Collection[str] = (),
        env: str = PROD,
        release_kind: str = "run",
        atomic: bool = False,
    ):
        self.project, self.stores, self.report = project, stores, report
        self.now, self.sink, self.blocked = now, stamped(sink, report.run_id), blocked
        self.full_refresh, self.chosen, self.env = full_refresh, set(chosen), env
        # `atomic` (apply): publish every version or, if any failed, none
        self.release_kind, self.atomic = release_kind, atomic
        self._builder: _Builder | None = None
        self._prepared = False
        self.queued: Mapping[str, float] = {}  # task id → seconds it waited for a worker

    def settle(self, task: Task) -> ModelOutcome | None:
        """A model's outcome when it needs no engine work: something it reads failed, or it
        is up to date, ephemeral, or was never built upstream; None: build it."""
        builder = self._prepare()
        assert builder is not None
        name = task.subject
        reason = _upstream_problem(self.project.models[name], self.report, self.blocked)
        if reason:
            self.sink(Event("build", name, TaskStatus.SKIPPED, {"error": reason}))
            return ModelOutcome(name, TaskStatus.SKIPPED, error=reason)
        # decided without the engine: no thread round trip for an unchanged model
        return builder.settle(name)

    def work(self, task: Task) -> ModelOutcome:
        """Build the model; again, with growing jittered waits, after a failure another
        attempt may fix (a write conflict), as its `retries:` and `timeout:` allow."""
        builder = self._builder
        assert builder is not None
        name = task.subject
        config, defaults = self.project.models[name].config, self.project.settings.defaults

        def attempt() -> ModelOutcome:
            outcome = builder.build(name)
            if outcome.status is TaskStatus.FAILED and outcome.retryable:
                raise _Retryable(outcome)
            return outcome

        def waiting(err: HeadwaterError, wait: float) -> None:
            detail = {"error": err.message, "wait": round(wait, 3)}
            self.sink(Event("build", name, TaskStatus.RETRYING, detail))

        retrying = Retrying(
            defaults.retries if config.retries is None else config.retries,
            parse_duration(config.timeout or defaults.timeout),
            first_wait=parse_duration(defaults.backoff),
            on_retry=waiting,
        )
        started = now_after(self.now)
        try:
            outcome = retrying.call(attempt)
        except _Retryable as failed:
            outcome = failed.outcome
        outcome.attempts = len(retrying.failures) + 1
        outcome.started_at, outcome.ended_at = started, now_after(started)
        return outcome

    def done(self, task: Task, outcome: ModelOutcome) -> None:
        self.report.models[task.subject] = outcome

    def publish(self) -> None:
        """Flip the environment to every version built at once, in one transaction of the
        warehouse and then one of the catalog (per-model writes would queue on their locks),
        and record the build's tasks."""
        builder = self._prepare()
        if builder is None:
            return
        failed = sorted(n for n, o in self.report.models.items() if not o.ok)
        if self.atomic and failed:
            self.report.notes.append(
                f"nothing was published and no release written: {', '.join(failed)} did not "
                f"build or pass its rules; {self.env} shows what it showed before"
            )
        else:
            with self.report.timed("products"):
                self._products(builder)
            with self.report.timed("publish"):
                self.report.release = Environment(
                    self.stores.engine, self.stores.catalog, self.env
                ).release(
                    builder.built,
                    builder.views,
                    run_id=self.report.run_id,
                    now=now_after(self.now),
                    release=self._release(builder),
                )
            with self.report.timed("online"):
                self._online()
        with self.report.timed("record"):
            self._record_tasks()

    def _online(self) -> None:
        """Bring the online feature store up to what the environment now serves. The release
        stands whatever happens here: a failure is reported, and the next run tries again."""
        if not any(m.sidecar.features for m in self.project.models.values()):
            return
        try:
            online.refresh(
                self.project,
                self.stores.engine,
                self.stores.lake,
                self.stores.catalog,
                self.env,
                now=now_after(self.now),
            )
        except HeadwaterError as err:
            self.report.notes.append(
                f"the online feature store was not refreshed: {err.message} (the next run "
                "tries again; what is published stands)"
            )

    def _products(self, builder: _Builder) -> None:
        """Publish the data products of the served models, as the environment is about to
        show them (before it does: serving never finds data it cannot read)."""
        if not any(m.sidecar.published for m in self.project.models.values()):
            return
        catalog = self.stores.catalog
        shown = catalog.shown(self.env)
        shown.update(
            {v.name: Shown(v.name, v.physical, v.fingerprint, v.data_key) for v, _ in builder.built}
        )
        products.publish(
            self.project,
            self.stores.engine,
            self.stores.lake,
            catalog,
            shown,
            now=now_after(self.now),
        )

    def _release(self, builder: _Builder) -> NewRelease | None:
        """The release this publish writes: when the environment shows another version of
        any model than before, or an apply wrote anything (a data refresh of the same
        versions by a run is not a release)."""
        moved = [v.name for v, _ in builder.built if builder.pointers.get(v.name) != v.physical]
        # an apply that wrote anything releases it (a forward-only model changes in place)
        applied = self.release_kind != "run" and bool(builder.built)
        if not moved and not self.report.removed and not applied:
            return None
        snapshots: dict[str, int | None] = {}

        def snapshot(table: str) -> int | None:
            if table not in snapshots:
                snapshots[table] = self.stores.lake.current_snapshot_id(table)
            return snapshots[table]

        raw = {
            v.name: {
                t: sid for t in sorted(builder.sources.get(v.name, ())) if (sid := snapshot(t))
            }
            for v, _ in builder.built
        }
        return NewRelease(
            kind=self.release_kind,
            created_by=who(),
            code_version=code_version(self.project.root),
            checks=check_summary(self.report.checks),
            raw=raw,
        )

    def _record_tasks(self) -> None:
        rows_in = _InputRows(self.project, self.stores, self.report, self.env)
        self.stores.catalog.record_tasks(
            self.report.run_id,
            [
                TaskRecord(
                    task=o.name,
                    stage="build",
                    status=o.status,
                    rows=o.rows,
                    error=o.error,
                    attempts=o.attempts,
                    quarantined=o.quarantined or None,
                    started_at=o.started_at,
                    ended_at=o.ended_at,
                    rows_in=rows_in.of(o.name) if o.status is TaskStatus.BUILT else None,
                    queued_s=self.queued.get(f"build:{o.name}"),
                )
                for o in self.report.models.values()
            ],
        )

    def _prepare(self) -> _Builder | None:
        """Unpublish models gone from the project; then, if any model is chosen, make the
        schemas and the builder (None: nothing to build)."""
        if self._prepared:
            return self._builder
        self._prepared = True
        with self.report.timed("prepare"):
            self._builder = self._make_builder()
        return self._builder

    def _make_builder(self) -> _Builder | None:
        self.report.removed = remove_stale(self.project, self.stores, self.env)
        if not self.chosen:
            return None
        return open_builder(
            self.project,
            self.stores,
            self.report,
            now=self.now,
            sink=self.sink,
            full_refresh=self.full_refresh,
            chosen=self.chosen,
            env=self.env,
        )


class _InputRows:
    """The rows of what a model reads, for its task's `rows_in`: each input's rows as the
    build read them (an input built this run: its new version; else the version published;
    a raw table: its current snapshot, from the commit's summary)."""

    def __init__(self, project: Project, stores: Stores, report: RunReport, env: str):
        self.project, self.stores, self.report = project, stores, report
        self._published: dict[str, int | None] | None = None
        self._raw: dict[str, int] = {}
        self.env = env

    def of(self, name: str) -> int | None:
        counts = [self._rows(d) for d in self.project.models[name].depends_on]
        known = [c for c in counts if c is not None]
        return sum(known) if known and len(known) == len(counts) else None

    def _rows(self, table: str) -> int | None:
        outcome = self.report.models.get(table)
        if outcome is not None and outcome.rows is not None:
            return outcome.rows
        if table in self.project.raw_tables:
            if table not in self._raw:
                self._raw[table] = self.stores.lake.row_count(table)
            return self._raw[table]
        if self._published is None:
            pointers = self.stores.catalog.pointers(self.env)
            self._published = {
                v.name: v.rows
                for v in self.stores.catalog.model_versions().values()
                if pointers.get(v.name) == v.physical
            }
        return self._published.get(table)


def open_builder(
    project: Project,
    stores: Stores,
    report: RunReport,
    *,
    now: datetime,
    sink: EventSink,
    chosen: Collection[str],
    full_refresh: bool = False,
    env: str = PROD,
) -> _Builder:
    """A builder of the `chosen` models (the others are read as `env` has them), their
    zones' schemas made: a build's, or a backfill's (which unpublishes nothing)."""
    fps = fingerprints(project)
    for zone in {m.zone for m in project.models.values()}:
        for schema in (f"hw_{zone}", view_schema(zone, env)):
            create = exp.Create(this=exp.to_identifier(schema, quoted=True), kind="SCHEMA")
            create.set("exists", True)
            stores.engine.execute(create)
    # what a raw table holds is named by its metadata file, which every commit replaces:
    # one catalog query, where the snapshot id would load the table's metadata
    # ... and by the batches held out of it and released back into it
    releases = stores.catalog.releases()
    held = stores.catalog.held_all()
    raw_keys = {
        t: f"{stores.lake.version(t)}|{sorted(held.get(t, {}))}|{releases.get(t, 0)}"
        for t in project.raw_tables
    }
    return _Builder(
        project,
        stores,
        report,
        fps=fps,
        raw_keys=raw_keys,
        releases=releases,
        now=now,
        sink=sink,
        full_refresh=full_refresh,
        chosen=set(chosen),
        env=env,
    )


def remove_stale(project: Project, stores: Stores, env: str = PROD) -> list[str]:
    """Drop the views of models no longer in the project (deleted, or moved to another zone)
    and their pointers; their versions' tables stay, as every version's do."""
    environment = Environment(stores.engine, stores.catalog, env)
    stale = sorted(set(environment.pointers()) - set(project.models))
    environment.withdraw(stale)
    return stale


class _Builder:
    """Builds one model on its own cursor: write the version, audit it, then publish it."""

    def __init__(
        self,
        project: Project,
        stores: Stores,
        report: RunReport,
        *,
        fps: dict[str, str],
        raw_keys: dict[str, str],
        releases: dict[str, int],
        now: datetime,
        sink: EventSink,
        full_refresh: bool = False,
        chosen: set[str],
        env: str = PROD,
    ):
        self.project, self.stores, self.report = project, stores, report
        self.fps, self.raw_keys, self.now, self.sink = fps, raw_keys, now, sink
        self.full_refresh, self.env = full_refresh, env
        self.pointers = stores.catalog.pointers(env)
        self.versions = stores.catalog.model_versions()
        self.done = stores.catalog.all_intervals()
        self.objects = stores.engine.objects()
        self.existing_views = {
            name for name, kind in self.objects.items() if kind is ObjectKind.VIEW
        }
        # a model outside the selection is read as published, at the data key it was built at
        self.physical = {
            name: physical_name(name, fp) if name in chosen else self.pointers.get(name, "")
            for name, fp in fps.items()
        }
        self.published_keys = {
            v.name: v.data_key or ""
            for v in self.versions.values()
            if self.pointers.get(v.name) == v.physical
        }
        self.inline: dict[str, exp.Query] = {}
        self.renderer = Renderer()  # the passes of later stages (masking, row filters) go here
        self.built: list[tuple[ModelVersion, list[Range] | None]] = []
        self.views: list[str] = []  # the environment's view of each version built
        self.dialect = stores.engine.dialect
        self.sources = raw_sources(project)
        # what append-family models read of a snapshot or merge table: every batch (its
        # history), so a full rebuild sees what the runs before it saw
        self.histories = {
            t: exp.select(exp.Star()).from_(exp.to_table(c.history))
            for t, c in project.raw_tables.items()
            if c.history
        }
        self.releases = releases
        self._snapshots: dict[str, list[Snapshot]] = {}
        self.changed_outside: dict[str, str] = {}  # model → how its version was changed

    def settle(self, name: str) -> ModelOutcome | None:
        """The outcome of a model that needs no engine work: an upstream never built, an
        ephemeral model (inlined into its readers), or a version that is up to date.
        None: the model must be built."""
        model = self.project.models[name]
        missing = [
            d
            for d in (*model.depends_on, *model.audit_refs)
            if d in self.physical
            and not self.physical[d]
            and self.project.models[d].config.kind is not ModelKind.EPHEMERAL
        ]
        if missing:
            reads = "upstream" if missing[0] in model.depends_on else "the table its rules read,"
            outcome = ModelOutcome(
                name,
                TaskStatus.FAILED,
                error=f"{model.path}: {reads} {missing[0]} has "
                f"never been built; select it too (+{name})",
            )
            self.sink(Event("build", name, TaskStatus.FAILED, {"error": outcome.error}))
            return outcome
        key = self._data_key(model)
        if model.config.kind is ModelKind.EPHEMERAL:
            self._inline_ephemeral(model)
            self.inline[name] = self.renderer.query(model.query, self.physical, self.inline)
            return ModelOutcome(name, TaskStatus.INLINED, data_key=key)
        known = self._current(model, key)
        # an incremental model continues from the table it holds: that table must be what the
        # catalog recorded (a run killed between the warehouse's commit and the catalog's
        # leaves rows the catalog never saw, which continuing would add again)
        held = known or self._continued(model)
        changed = self._changed_outside(model, held) if held is not None else None
        if changed:
            # rebuilt whole: an incremental model must not continue from what it holds now
            self.changed_outside[name] = changed
            del self.versions[(name, self.fps[name])]
            return None
        if known is None or known.inputs.get(AUDIT) != self._audit_key(model):
            return None  # to build, or to audit again: its rules or what they read changed
        if known.meta != model.meta_key or known.sql is None:
            # its docs changed (or it predates recording them): recorded, nothing rebuilt
            self.built.append(
                (dataclasses.replace(known, sql=model.normalized_sql, meta=model.meta_key), None)
            )
        self.sink(Event("build", name, TaskStatus.UP_TO_DATE, {"rows": known.rows}))
        return ModelOutcome(name, TaskStatus.UP_TO_DATE, known.physical, known.rows, data_key=key)

    def _continued(self, model: Model) -> ModelVersion | None:
        """The published version an incremental model written in place continues from."""
        if model.config.kind not in IN_PLACE or self.full_refresh:
            return None
        known = self.versions.get((model.name, self.fps[model.name]))
        if known is None or self.pointers.get(model.name) != known.physical:
            return None
        return known

    def _current(self, model: Model, key: str) -> ModelVersion | None:
        """The published version of `model` when it is up to date (None: build it)."""
        known = self.versions.get((model.name, self.fps[model.name]))
        physical = self.physical[model.name]
        if self.full_refresh or known is None or known.data_key != key:
            return None
        return known if self.pointers.get(model.name) == physical else None

    def _audit_key(self, model: Model) -> str:
        """What a version's audit depends on besides its data: the rules, and the data of the
        tables they read (a referential integrity rule's `to:`). "" when it has no rules."""
        if not model.rules:
            return ""
        payload = json.dumps(
            {
                "rules": [r.model_dump(mode="json") for r in model.rules],
                "reads": {t: self._input_key(t) for t in model.audit_refs},
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def _changed_outside(self, model: Model, known: ModelVersion) -> str | None:
        """Why the warehouse no longer holds the version the catalog recorded (its table or
        view dropped, rows deleted or added outside headwater); None if it still does."""
        kind, view = model.config.kind, model.name
        if view not in self.existing_views:
            return f"its view {view} is missing"
        if kind is ModelKind.VIEW:
            return None if known.physical in self.existing_views else f"{known.physical} is missing"
        if known.physical not in self._stored_rows:
            return f"{known.physical} is missing"
        rows = self._stored_rows[known.physical]
        if known.rows is not None and rows != known.rows:
            return f"{known.physical} had {rows:,} rows, the catalog recorded {known.rows:,}"
        return None

    @cached_property
    def _stored_rows(self) -> dict[str, int]:
        """Rows of the table of every version the environment points at, in one query
        (DuckDB answers a bare COUNT(*) from table metadata); a table that no longer exists
        is left out."""
        tables = [
            physical
            for name, physical in self.pointers.items()
            if physical == self.physical.get(name)
            and name in self.project.models
            and self.project.models[name].config.kind not in (ModelKind.VIEW, ModelKind.EPHEMERAL)
        ]
        try:
            return self.stores.engine.row_counts(tables)
        except HeadwaterError:  # a table is gone: count those that remain
            found = self.stores.engine.objects()
            return self.stores.engine.row_counts([t for t in tables if t in found])

    def build(self, name: str) -> ModelOutcome:
        """Write, audit and publish a new version of `name` (on a worker thread); or only
        audit the published one, when just its rules or what they read changed."""
        model = self.project.models[name]
        started = time.perf_counter()
        self.sink(Event("build", name, TaskStatus.START))
        self._inline_ephemeral(model)
        key = self._data_key(model)
        known = self._current(model, key)
        if known is not None:
            outcome = self._audit_again(model, known, key)
        else:
            outcome = self._write_audit_publish(model, self.physical[name], key)
        outcome.seconds = time.perf_counter() - started
        if outcome.ok and name in self.changed_outside:
            outcome.error = (
                f"{self.changed_outside[name]} (changed outside headwater, or by a run killed "
                "before it recorded its build)"
            )
        self.sink(
            Event(
                "build",
                name,
                outcome.status,
                {"rows": outcome.rows, "error": outcome.error},
                inputs=tuple(model.depends_on),
                outputs=(outcome.physical,) if outcome.physical else (),
            )
        )
        return outcome

    def _data_key(self, model: Model) -> str:
        inputs = {dep: self._input_key(dep) for dep in model.depends_on}
        routed = [r.model_dump(mode="json") for r in model.rules if r.action is OnFail.QUARANTINE]
        if routed:  # rules that move rows out of the version shape its data
            inputs[QUARANTINE_RULES] = json.dumps(routed, sort_keys=True)
        if model.config.forward_only:  # its one version's data follows its query too
            inputs[FORWARD_SQL] = model.sql_hash
        return data_key(self.fps[model.name], inputs)

    def _audit_again(self, model: Model, known: ModelVersion, key: str) -> ModelOutcome:
        """Audit the published, up-to-date version of `model` (its rules changed); an `error`
        rule failing now is reported, and what reads the model is skipped, as after a build."""
        cursor = self.stores.engine.cursor()
        results: list[CheckResult] = []
        try:
            results = self._audit(model, known.physical, cursor, known.rows)
        except HeadwaterError as err:
            if err.where is None:
                err.where = Location(model.sidecar_path or model.path)
            return ModelOutcome(model.name, TaskStatus.FAILED, known.physical, error=err.render())
        finally:
            self._record_checks(results)
            cursor.close()
        failed = [r.rule.name for r in results if r.blocking]
        if failed:
            error = (
                f"error rule(s) failed: {', '.join(failed)}, on the published version (its "
                "rules changed); it stays published as it was"
            )
            return ModelOutcome(model.name, TaskStatus.BLOCKED, known.physical, error=error)
        inputs = {**known.inputs, AUDIT: self._audit_key(model)}
        self.built.append((dataclasses.replace(known, inputs=inputs), None))
        outcome = ModelOutcome(
            model.name, TaskStatus.UP_TO_DATE, known.physical, known.rows, data_key=key
        )
        outcome.audited = True
        return outcome

    def _write_audit_publish(self, model: Model, physical: str, key: str) -> ModelOutcome:
        kind = model.config.kind
        cursor = self.stores.engine.cursor()
        results: list[CheckResult] = []
        seen: dict[str, int] = {}
        intervals = None
        new: dict[str, list[str]] | None = None
        timeout = model.config.timeout or self.project.settings.defaults.timeout
        watch: Watch | None = None
        reshaped = False
        frozen = self.to_freeze(model, physical)
        try:
            with deadline(cursor, parse_duration(timeout), timeout) as watch:
                if kind is ModelKind.INCREMENTAL_BY_TIME:
                    intervals = self._plan(model)
                    seen = intervals.seen
                elif kind in (ModelKind.APPEND, ModelKind.INCREMENTAL_BY_KEY, ModelKind.SCD2):
                    new, seen = self._new_batches(model)
                job = self._job(cursor, model, physical, new, intervals)
                if kind is ModelKind.MATERIALIZED_VIEW:
                    job.refresh = self._refresh(model, physical)
                materialization = strategy(model)
                # a forward-only model's query changed since its table was made
                evolving = model.config.forward_only and physical in self.objects
                # one statement commits alone; several, or an audit that may roll back, need a
                # transaction (BEGIN/COMMIT cost the engine about as much as a small statement)
                single = (
                    not model.rules
                    and not evolving
                    and frozen is None
                    and materialization.one_statement(job)
                )
                routed = [r for r in model.rules if r.action is OnFail.QUARANTINE]
                quarantined = 0
                with nullcontext() if single else cursor.transaction():
                    if frozen is not None:  # a retained release shows what is written over
                        self.set_aside(cursor, frozen, rename=kind is ModelKind.TABLE)
                    if evolving:
                        job, reshaped = evolve(job)
                    rows = materialization.write(job)
                    if routed:
                        quarantined = route(job, routed)
                        rows = None if rows is None else rows - quarantined
                    # a version written is profiled in its rules' scan (a view is not: its
                    # query would run again)
                    profiling = self.project.settings.defaults.profile and kind not in (
                        ModelKind.VIEW,
                        ModelKind.EPHEMERAL,
                    )
                    if model.rules or profiling:
                        # the statistics of a table written whole, nothing routed out of it, are
                        # its exact bounds; of one written in place, bounds its values lie within
                        whole = kind is ModelKind.TABLE and not routed
                        results = self._audit(
                            model, physical, cursor, rows, exact=whole, profiled=profiling
                        )
                    if any(r.blocking for r in results):
                        failed = ", ".join(r.rule.name for r in results if r.blocking)
                        raise _Blocked(f"error rule(s) failed: {failed}; nothing was published")
            if frozen is not None:  # committed with the write
                self.record_frozen(frozen)
        except _Blocked as blocked:
            return ModelOutcome(model.name, TaskStatus.BLOCKED, physical, error=str(blocked))
        except HeadwaterError as raised:
            err = raised
            if watch is not None and watch.fired:
                err = TimedOut(
                    f"{model.name} ran past its timeout ({watch.text}) and was stopped; "
                    "nothing was published",
                    where=Location(model.path),
                    hint="set a longer `timeout:` in its header, or make it cheaper",
                )
            if err.where is None:
                line = (
                    _line_of_column(model, cursor.missing_column(err))
                    if isinstance(err, EngineError)
                    else None
                )
                err.where = Location(model.path, line)
            broken = ModelOutcome(model.name, TaskStatus.FAILED, physical, error=err.render())
            broken.retryable = err.retryable
            return broken
        finally:
            self._record_checks(results)
            cursor.close()
        released = {_released(t): self.releases.get(t, 0) for t in self.sources[model.name]}
        inputs: dict[str, Any] = {**seen, **released, AUDIT: self._audit_key(model)}
        if kind is ModelKind.MATERIALIZED_VIEW:  # what it was refreshed from, to go on from
            inputs |= {_refreshed(d): self._input_key(d) for d in model.depends_on}
        version = ModelVersion(
            model.name,
            self.fps[model.name],
            physical,
            kind.value,
            key,
            rows,
            inputs,
            model.normalized_sql,
            model.meta_key,
        )
        # recorded in the catalog once for the whole build: the warehouse view, swapped in the
        # transaction above, is what readers see; a crash before the catalog write only means
        # the version is (idempotently) built again next run
        self.built.append((version, intervals.done_after if intervals else None))
        if (
            self.pointers.get(model.name) != physical
            or model.name not in self.existing_views
            or reshaped
        ):
            # an incremental model written in place keeps its view as it is (unless its
            # table gained columns: a view's columns are fixed when it is made)
            hide = hidden(model)
            self.views.append(view_sql(model.name, physical, self.dialect, self.env, hide=hide))
        outcome = ModelOutcome(model.name, TaskStatus.BUILT, physical, rows, data_key=key)
        outcome.quarantined = quarantined
        if routed:
            quarantine = (f"{model.name}__quarantine", f"{physical}__quarantine")
            self.views.append(view_sql(*quarantine, self.dialect, self.env))
        if intervals is not None:
            outcome.intervals = count(intervals.work, model.config.interval)
            outcome.restated, outcome.late_rows = intervals.restated, intervals.late_rows
            outcome.written = list(intervals.work)
        if job.refresh is not None:  # the buckets refreshed, not the whole view
            outcome.written = list(job.refresh.ranges)
            outcome.intervals = len(job.refresh.ranges)
        return outcome

    @cached_property
    def _pinned(self) -> set[tuple[str, str | None]]:
        """The data retained releases show (asked once a build first writes a table)."""
        return pinned(self.stores.catalog, self.project.settings.releases, now=self.now)

    @cached_property
    def _frozen(self) -> dict[tuple[str, str], tuple[str, int | None]]:
        return self.stores.catalog.frozen_copies()

    def to_freeze(self, model: Model, physical: str) -> Frozen | None:
        """The copy to make of `physical` before it is written in place, if a retained release
        shows its data (so rolling back to that release restores exactly that data)."""
        known = self.versions.get((model.name, self.fps[model.name]))
        if known is None or known.physical != physical or not known.data_key:
            return None
        key = (physical, known.data_key)
        if physical not in self.objects or key not in self._pinned or key in self._frozen:
            return None
        frozen = Frozen(physical, known.data_key, copy_name(physical, known.data_key), known.rows)
        if frozen.copy in self.objects:
            # set aside by a run killed after its write committed, before the catalog heard
            # of it: the copy holds the released data, and the table what that run wrote
            self.record_frozen(frozen)
            return None
        return frozen

    def set_aside(self, cursor: Engine, frozen: Frozen, *, rename: bool) -> None:
        """Keep the data `frozen` names under its copy's name, in the caller's transaction:
        renamed when the write replaces the table whole (nothing to copy), else copied."""
        for source, target in (
            (frozen.physical, frozen.copy),
            (f"{frozen.physical}__quarantine", f"{frozen.copy}__quarantine"),
        ):
            if source not in self.objects:
                continue
            if rename:
                new_name = exp.to_table(target, quoted=True).args["this"]
                action = exp.AlterRename(this=exp.Table(this=new_name))
                alter = exp.Alter(
                    this=exp.to_table(source, quoted=True), kind="TABLE", actions=[action]
                )
                cursor.execute(alter)
            else:
                cursor.execute(copy_table(source, target))

    def record_frozen(self, frozen: Frozen) -> None:
        """The copy is committed: a rollback reads it from now on."""
        self.stores.catalog.record_frozen(
            frozen.physical, frozen.data_key, frozen.copy, frozen.rows, now=now_after(self.now)
        )
        self._frozen[(frozen.physical, frozen.data_key)] = (frozen.copy, frozen.rows)

    def freeze(self, model: Model, physical: str, cursor: Engine) -> None:
        """Copy released data of `physical` aside in a transaction of its own (a backfill's
        writes commit unit by unit)."""
        frozen = self.to_freeze(model, physical)
        if frozen is None:
            return
        with cursor.transaction():
            self.set_aside(cursor, frozen, rename=False)
        self.record_frozen(frozen)

    def _inline_ephemeral(self, model: Model) -> None:
        """Render the ephemeral models `model` reads (also those outside a selection)."""
        for dep in model.depends_on:
            upstream = self.project.models.get(dep)
            if upstream is None or upstream.config.kind is not ModelKind.EPHEMERAL:
                continue
            if dep not in self.inline:
                self._inline_ephemeral(upstream)
                self.inline[dep] = self.renderer.query(upstream.query, self.physical, self.inline)

    def _job(
        self,
        cursor: Engine,
        model: Model,
        physical: str,
        new: dict[str, list[str]] | None,
        intervals: IntervalPlan | None,
    ) -> Job:
        known = self.versions.get((model.name, self.fps[model.name]))
        return Job(
            cursor,
            model,
            physical,
            query=self._query(model, cursor.dialect),
            everything=lambda: self._everything(model),
            over_new=lambda: self._over_new(model, new or {}),
            upstream=self.physical,
            new=new,
            intervals=intervals,
            continued_rows=known.rows if known else None,
        )

    def _refresh(self, model: Model, physical: str) -> Refresh | None:
        """The buckets of a materialized view to refresh, when only the input rows written
        this run can have changed them; None: recompute it whole."""
        found = mview.buckets(model, self.project.models)
        known = self._known(model)
        if found is None or known is None or physical not in self.objects:
            return None
        source = self.report.models.get(found.source)
        before = self.versions.get((found.source, self.fps[found.source]))
        if (
            source is None
            or source.status is not TaskStatus.BUILT
            or before is None
            or known.inputs.get(_refreshed(found.source)) != before.data_key
        ):
            return None  # the view did not follow its input's last state: recompute it
        ranges = mview.spans(source.written, found.unit)
        if not ranges:  # the input was written whole (not by intervals): recompute
            return None
        over = exp.select(exp.Star()).from_(exp.to_table(self.physical[found.source], quoted=True))
        only = over.where(mview.within(found.time_column, ranges))
        query = self.renderer.query(model.query, self.physical, {**self.inline, found.source: only})
        return Refresh(found.column, ranges, query)

    def _query(self, model: Model, dialect: str) -> exp.Expr:
        """The model's query over the physical tables, in the engine's dialect."""
        query = self.renderer.sql(model, dialect, self.physical, self.inline)
        return verbatim(query) if isinstance(query, str) else query

    def _input_key(self, dep: str) -> str:
        if dep in self.raw_keys:
            return self.raw_keys[dep]
        outcome = self.report.models.get(dep)
        return (outcome.data_key if outcome else self.published_keys.get(dep)) or ""

    def _known(self, model: Model) -> ModelVersion | None:
        """The version an incremental model continues from; None to rebuild it whole: a full
        refresh, a first build, or a batch released into a raw table since it was built
        (the batch was held out when the version processed its snapshot)."""
        known = None if self.full_refresh else self.versions.get((model.name, self.fps[model.name]))
        if known is not None and any(
            known.inputs.get(_released(t), 0) < self.releases.get(t, 0)
            for t in self.sources[model.name]
        ):
            return None
        return known

    def _new_batches(self, model: Model) -> tuple[dict[str, list[str]] | None, dict[str, int]]:
        """The raw batches an append model has not seen (None: all of them, a first build)."""
        known = self._known(model)
        snapshots = {t: self._raw_snapshots(t) for t in self.sources[model.name]}
        newest = {t: s[-1].snapshot_id for t, s in snapshots.items() if s}
        if known is None:
            return None, newest
        new: dict[str, list[str]] = {}
        for table, snaps in snapshots.items():
            ids = [s.snapshot_id for s in snaps]
            start = ids.index(known.inputs[table]) + 1 if known.inputs.get(table) in ids else 0
            new[table] = [s.batch_id for s in snaps[start:] if s.batch_id]
        return new, newest

    def _everything(self, model: Model) -> exp.Query:
        """An append-family model's query over every batch of the raw tables it reads."""
        histories = {t: q for t, q in self.histories.items() if t in model.depends_on}
        return self.renderer.query(model.query, self.physical, {**self.inline, **histories})

    def _over_new(self, model: Model, new: dict[str, list[str]]) -> exp.Query:
        """The model's query over only the new batches of the raw tables it reads."""
        contracts = self.project.raw_tables
        only_new = {
            table: exp.select(exp.Star())
            .from_(exp.to_table(contracts[table].history or table))
            .where(
                exp.column("_hw_batch_id").isin(*[exp.Literal.string(b) for b in batches])
                if batches
                else exp.false()
            )
            for table, batches in new.items()
        }
        return self.renderer.query(model.query, self.physical, {**self.inline, **only_new})

    def _plan(self, model: Model) -> IntervalPlan:
        name, fp = model.name, self.fps[model.name]
        known = self._known(model)
        done = self.done.get((name, fp), []) if known else []
        snapshots = {t: self._raw_snapshots(t) for t in self.sources[name]}
        seen = known.inputs if known else {}
        return plan(model, done=done, seen=seen, snapshots=snapshots, now=self.now)

    def _raw_snapshots(self, table: str) -> list[Snapshot]:
        if table not in self._snapshots:
            self._snapshots[table] = self.stores.lake.snapshots(table)
        return self._snapshots[table]

    def _audit(
        self,
        model: Model,
        physical: str,
        cursor: Engine,
        rows: int | None,
        *,
        exact: bool = False,
        profiled: bool = False,
    ) -> list[CheckResult]:
        types = cursor.columns(physical)
        columns = list(types)
        stats = (
            None
            if rows is None
            else written(
                cursor, physical, model.rules, rows, exact=exact, profiled=types if profiled else ()
            )
        )
        keep = (
            Profiled(model.name, "version", physical, self.report.run_id, self.now, types)
            if profiled
            else None
        )
        # drift compares a version with the one published before it (a version is whole: a
        # window `reference:` means the same)
        before = self.pointers.get(model.name)
        previous = Relation(before) if before and before != physical else None
        judging = Judging(model.name, Relation(physical), lambda _: previous, types)
        return evaluate_in(
            model.sidecar_path or model.path,
            model.rules,
            physical,
            stores=self.stores,
            root=self.project.root,
            # rules read the versions of this build, which no view points at yet
            tables={name: p for name, p in self.physical.items() if p},
            declared=model.sidecar.declared,
            stats=stats,
            # the merge keeps one row per unique_key: a uniqueness rule on it needs no scan
            unique=[model.config.unique_key]
            if model.config.kind is ModelKind.INCREMENTAL_BY_KEY
            else [],
            engine=cursor,
            now=self.now,
            columns=columns,
            key=model.config.grain,
            label=model.name,
            pii=ModelPii(self.project, model.name, columns),
            keep=keep,
            judging=judging,
        )

    def _record_checks(self, results: list[CheckResult]) -> None:
        if results:
            self.report.checks.extend(results)
            record_checks(self.stores, self.report.run_id, results, now=self.now)

    # what a backfill (orchestrate/backfill.py) asks of the builder of its one model

    def job(self, cursor: Engine, model: Model, intervals: IntervalPlan | None = None) -> Job:
        """The job of writing intervals of `model`'s version on `cursor`: its query over the
        versions it reads, the ephemeral models it reads inlined."""
        self._inline_ephemeral(model)
        return self._job(cursor, model, self.physical[model.name], None, intervals)

    def whole(self, model: Model) -> IntervalPlan:
        """What a full build of `model` would write now: every interval its upstream data
        covers (`work`), from the raw snapshots it would have seen (`seen`)."""
        snapshots = {t: self._raw_snapshots(t) for t in self.sources[model.name]}
        return plan(model, done=[], seen={}, snapshots=snapshots, now=self.now)

    def new_version(self, model: Model, seen: Mapping[str, int]) -> ModelVersion:
        """The record of a version of `model` written from the raw snapshots `seen`, keyed as
        a build now would key it; no rows yet."""
        released = {_released(t): self.releases.get(t, 0) for t in self.sources[model.name]}
        inputs: dict[str, Any] = {**seen, **released, AUDIT: self._audit_key(model)}
        name = model.name
        kind = model.config.kind.value
        key = self._data_key(model)
        return ModelVersion(
            name,
            self.fps[name],
            self.physical[name],
            kind,
            key,
            0,
            inputs,
            model.normalized_sql,
            model.meta_key,
        )

    def changed_since(self, model: Model, known: ModelVersion) -> str | None:
        """Why the published version of `model` no longer holds what the catalog recorded
        (changed outside headwater); None if it does."""
        return self._changed_outside(model, known)

    def audit(self, model: Model, cursor: Engine) -> list[CheckResult]:
        """`model`'s rules on its version as `cursor` sees it (in its transaction)."""
        return self._audit(model, self.physical[model.name], cursor, None)


class _Blocked(Exception):
    """An error rule failed on a new version: roll back and publish nothing."""


class _Retryable(HeadwaterError):
    """A build failed in a way another attempt may fix (its outcome says how)."""

    retryable = True

    def __init__(self, outcome: ModelOutcome):
        super().__init__(outcome.error or "failed")
        self.outcome = outcome


def _line_of_column(model: Model, name: str | None) -> int | None:
    """The line of the column an engine says does not exist, so the error points at it."""
    if name is None:
        return None
    lines = [
        c.this.meta.get("line")
        for c in model.query.find_all(exp.Column)
        if c.name == name and isinstance(c.this, exp.Identifier)
    ]
    return min((line for line in lines if line), default=None)


@dataclasses.dataclass(frozen=True)
class Frozen:
    """Released data of a version about to be written in place, and where it is kept."""

    physical: str
    data_key: str
    copy: str
    rows: int | None


def evolve(job: Job) -> tuple[Job, bool]:
    """A forward-only model's job over its table as it stands: columns the query added are
    added to the table (`ALTER TABLE … ADD COLUMN`), and what the query writes is laid out
    in the table's column order (NULL for a column it no longer has); whether the table
    gained columns.

    Raises:
        ModelError: a column's type changed (it cannot change in place).
    """
    cursor = job.cursor
    table = cursor.columns(job.physical)
    # an interval's bounds are parameters: any values tell the columns
    moment = datetime(2000, 1, 1, tzinfo=UTC)
    bounds = {"start": moment, "end": moment} if job.intervals is not None else None
    wanted = cursor.columns(job.query, bounds)
    retyped = [
        f"{c} ({table[c]} → {wanted[c]})" for c in wanted if c in table and wanted[c] != table[c]
    ]
    if retyped:
        raise ModelError(
            f"{job.model.name} is forward_only and its query changed the type of "
            f"{', '.join(retyped)}: a column's type cannot change in place",
            hint=f"`headwater run --full-refresh -s {job.model.name}` rebuilds it whole, or "
            "keep the type and add a new column",
        )
    added = [c for c in wanted if c not in table]
    target = exp.to_table(job.physical, quoted=True)
    for column in added:
        kind = exp.DataType.build(wanted[column], dialect=cursor.dialect)
        definition = exp.ColumnDef(this=exp.to_identifier(column, quoted=True), kind=kind)
        cursor.execute(exp.Alter(this=target.copy(), kind="TABLE", actions=[definition]))
    order = [*table, *added]
    if order == list(wanted):
        return job, bool(added)

    def shaped(query: exp.Expr) -> exp.Query:
        alias = exp.TableAlias(this=exp.to_identifier("q"))
        return exp.select(
            *(
                exp.column(c, "q", quoted=True)
                if c in wanted
                else exp.alias_(exp.null(), c, quoted=True)
                for c in order
            )
        ).from_(exp.Subquery(this=query, alias=alias))

    reshaped = dataclasses.replace(
        job,
        query=shaped(job.query),
        everything=lambda: shaped(job.everything()),
        over_new=lambda: shaped(job.over_new()),
    )
    return reshaped, bool(added)


def copy_table(source: str, target: str) -> exp.Create:
    """`CREATE OR REPLACE TABLE target AS SELECT * FROM source`."""
    select = exp.select(exp.Star()).from_(exp.to_table(source, quoted=True))
    return exp.Create(
        this=exp.to_table(target, quoted=True), kind="TABLE", replace=True, expression=select
    )


def _refreshed(model: str) -> str:
    """The key under which a materialized view records the data key of what it read."""
    return f"{model}#refreshed"


def _released(table: str) -> str:
    """The key under which a version records how many batches of `table` were released."""
    return f"{table}#released"


def raw_sources(project: Project) -> dict[str, set[str]]:
    """The raw tables each model reads, directly or through other models."""
    out: dict[str, set[str]] = {}
    for name in project.dag.order:
        deps = project.models[name].depends_on
        out[name] = {d for d in deps if d in project.raw_tables}.union(
            *[out[d] for d in deps if d in out]
        )
    return out


def _upstream_problem(model: Model, report: RunReport, blocked: Mapping[str, str]) -> str | None:
    for dep in model.depends_on:
        if dep in blocked:
            return f"upstream {dep} {blocked[dep]}"
        outcome = report.models.get(dep)
        if outcome is not None and not outcome.ok:
            return f"upstream {dep} {outcome.status}"
    for dep in model.audit_refs:
        outcome = report.models.get(dep)
        if dep in blocked or (outcome is not None and not outcome.ok):
            status = blocked.get(dep) or f"was {outcome.status}"  # type: ignore[union-attr]
            rule = next((r.name for r in model.rules if (r.to or "").startswith(f"{dep}.")), None)
            who = f"rule {rule!r} reads" if rule else "its rules read"
            return f"{who} {dep}, which {status} in this run"
    return None


def hidden(model: Model) -> tuple[str, ...]:
    """The columns whose true rows `model`'s view leaves out (tombstones, truncations)."""
    config = model.config
    if config.kind is not ModelKind.INCREMENTAL_BY_KEY:
        return ()
    return tuple(c for c in (config.deleted_column, config.truncated_column) if c)


def environment_views(
    project: Project, pointers: Mapping[str, str], dialect: str, env: str
) -> list[str]:
    """The views that show `pointers` (model → physical version) in `env`, quarantines too."""
    views = []
    for name, physical in pointers.items():
        model = project.models.get(name)
        views.append(view_sql(name, physical, dialect, env, hide=hidden(model) if model else ()))
        if model is not None and any(r.action is OnFail.QUARANTINE for r in model.rules):
            views.append(view_sql(f"{name}__quarantine", f"{physical}__quarantine", dialect, env))
    return views
