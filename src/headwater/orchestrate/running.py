"""One run of a project: ingest → raw views → models in DAG order → checks, with a report.

Stages are plain functions over the stores; time and the event sink are passed in. Failures
are contained: a failed model skips only its downstream, a failed contract only the models
that read it, and everything else goes on.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from headwater.change.contracts import compare
from headwater.change.releases import who
from headwater.change.versions import (
    PROD,
)
from headwater.contracts import Contract
from headwater.contracts.thresholds import parse_duration
from headwater.errors import HeadwaterError, LeakError, Location, SpecError, UsageError
from headwater.govern import gate
from headwater.models.selection import select as select_models
from headwater.observe import Event, EventSink, RunStatus, TaskStatus, discard, stamped
from headwater.orchestrate.bluegreen import (
    Verdict,
    critical_changes,
    flip,
    green_of,
    judge,
    staged,
)
from headwater.orchestrate.build import BuildStage
from headwater.orchestrate.checks import contract_checks, recheck_held
from headwater.orchestrate.classify import reclassify_batches
from headwater.orchestrate.environments import changed, fork, recover
from headwater.orchestrate.executor import Executor
from headwater.orchestrate.lease import Lease, LeaseLost, held
from headwater.orchestrate.observing import after_run
from headwater.orchestrate.openlineage import lineage_sink
from headwater.orchestrate.plan import Task, TaskKind, plan_run
from headwater.orchestrate.raw import refresh_raw_view, refresh_raw_views
from headwater.orchestrate.report import ModelOutcome, RunReport, now_after
from headwater.orchestrate.retry import Retrying
from headwater.orchestrate.stores import Stores
from headwater.project import Project
from headwater.zones.catalog import TaskRecord
from headwater.zones.catalog.holds import REASON_PREFIX
from headwater.zones.catalog.products import Audited

STAGES = ("ingest", "build")


def run(
    project: Project,
    stores: Stores,
    *,
    now: datetime,
    sink: EventSink = discard,
    stages: Iterable[str] = STAGES,
    command: str = "run",
    full_refresh: bool = False,
    select: Sequence[str] | None = None,
    zones: Collection[str] | None = None,
    tables: Collection[str] | None = None,
    env: str = PROD,
    apply: bool = False,
    approve: bool = False,
) -> RunReport:
    """Run the chosen `stages` of `project` and record the run in the catalog, holding the
    project's run lease throughout (one run of a project at a time).

    `select` limits the build to the models it names (see `models.selection`); `zones` the
    ingest to the contracts landing in them (`("seed",)`: the seeds only); `tables` to
    the contracts of those tables. `env` other than prod builds (never lands) into that
    environment: it starts as a copy of prod's pointers, and only models whose version it
    does not show yet are built. `apply` builds only the models whose version `env` does
    not show, and publishes them all as one release or, if any fails to build or pass its
    blocking rules, none; a contract change the plan refuses stops it before anything runs.
    When a `critical: true` model changes, apply stages the change in `env`'s green
    environment and flips `env` to it only if `approve`d or the auto-approve policy passes.

    Raises:
        Busy: another run of the project is under way.
        SpecError: (apply) a contract changed incompatibly under the same schema_version.
        LeakError: a model marked `privacy: public` would show a PII column unmasked.
    """
    if "build" in stages:
        try:
            gate.check(project)  # before anything lands or builds
        except LeakError as err:
            refused = audited("gate", env, at=now, status=err.exit_code, refused=err.message)
            stores.catalog.audit([refused])
            raise
    with held(stores.catalog, command) as lease:
        report = _run(
            project,
            stores,
            now=now,
            sink=sink,
            stages=stages,
            command=command,
            full_refresh=full_refresh,
            select=select,
            zones=zones,
            tables=tables,
            env=env,
            lease=lease,
            apply=apply,
            approve=approve,
        )
        if lease.lost:
            report.notes.append(
                "another run took this run's lease over while it ran (it had stopped renewing "
                "it): check `headwater runs` for runs that overlapped"
            )
    return report


def _run(
    project: Project,
    stores: Stores,
    *,
    now: datetime,
    sink: EventSink,
    stages: Iterable[str],
    command: str,
    full_refresh: bool,
    select: Sequence[str] | None,
    zones: Collection[str] | None,
    tables: Collection[str] | None,
    env: str,
    lease: Lease,
    apply: bool = False,
    approve: bool = False,
) -> RunReport:
    selected = select_models(project.dag, select) if select else None
    if apply:
        _refuse_incompatible(project, stores)
    if env != PROD and "ingest" in stages:
        raise UsageError(
            f"environment {env!r} shares prod's raw zone and lands nothing",
            hint=f"land with `headwater ingest`, then `headwater build --env {env}`",
        )
    started = time.perf_counter()
    staging = apply and (
        bool(critical_changes(project, stores.catalog, env))
        or (approve and bool(stores.catalog.pointers(green_of(env))))
    )
    built_env = green_of(env) if staging else env
    report = RunReport(stores.catalog.start_run(command, now=now, env=built_env))
    report.timings["start"] = time.perf_counter() - started
    if lease.took_over:  # the run before was killed: what it left is resumed below
        report.notes.append(f"this run {lease.took_over}")
    report.notes += recover(stores, now=now)  # a release a crash left half done
    sink = lineage_sink(project, stores, stamped(sink, report.run_id))  # OpenLineage, if set
    chosen = set(stages)
    finished = False
    blue = env
    try:
        if env != PROD:  # a copy of prod's pointers first; then only what it lacks is built
            fork(project, stores, env, run_id=report.run_id, now=now)
        if staging:  # built into green, a copy of blue's pointers; blue flips once approved
            env = green_of(env)
            fork(project, stores, env, run_id=report.run_id, now=now, source=blue)
        if env != PROD or apply:
            differs = changed(project, stores.catalog, env)
            selected = differs if selected is None else selected & differs
        elif "build" in chosen:  # a run never publishes an unreviewed critical change
            held_back = _critical_held_back(project, stores, report)
            if held_back:
                selected = (set(project.dag.order) if selected is None else selected) - held_back
        blocked: dict[str, str] = {}
        if "ingest" in chosen:
            landing = [
                c
                for c in project.contracts.values()
                if (zones is None or c.zone in zones) and (tables is None or c.table in tables)
            ]
        else:
            landing = []
            with report.timed("raw_views"):
                blocked.update(refresh_raw_views(project, stores))
        models = set(project.dag.order) if selected is None else set(selected)
        building = BuildStage(
            project,
            stores,
            report,
            now=now,
            sink=sink,
            blocked=blocked,
            full_refresh=full_refresh,
            chosen=models if "build" in chosen else (),
            env=env,
            release_kind=("stage" if staging else "apply") if apply else "run",
            atomic=apply,
        )
        plan = plan_run(
            project,
            ingest=[c.table for c in landing],
            build=building.chosen,
            publish=env if "build" in chosen else None,
        )

        workers = project.settings.defaults.threads or 4
        executor = Executor[object](
            workers,
            pools=project.settings.pools,
            on_wait=lambda task, why: sink(
                Event(task.kind.value, task.subject, TaskStatus.WAITING, {"waiting": why})
            ),
        )
        building.queued = executor.queued

        def land(task: Task) -> TaskStatus:
            contract = project.raw_tables[task.subject]
            return land_one(
                contract,
                project,
                stores,
                report,
                now=now,
                sink=sink,
                blocked=blocked,
                queued=executor.queued.get(task.id),
            )

        with report.timed("tasks"):
            executor.run(plan, _Stages(land, building, lease))
        if staging and report.ok:
            _approve(project, stores, report, blue, approve=approve, now=now)
        with report.timed("classify"):
            landed = {x.table: x.batch_id for x in report.landed if x.batch_id and x.rows}
            report.notes.extend(reclassify_batches(project, stores.engine, stores.catalog, landed))
        with report.timed("zone_rows"):
            report.zone_rows = zone_rows(project, stores)
        finished = True
    finally:
        with report.timed("end"):
            stores.catalog.end_run(
                report.run_id,
                status=RunStatus.SUCCESS if report.ok and finished else RunStatus.FAILED,
                summary=report.summary(),
                now=now_after(now),
            )
            entry = _audit_entry(report, command, env, at=now_after(now), finished=finished)
            stores.catalog.audit([entry])
        with report.timed("observe"):
            report.notes.extend(after_run(project, stores, report, now=now_after(now)))
    return report


def audited(
    action: str,
    subject: str | None,
    *,
    at: datetime,
    status: int,
    role: str | None = None,
    **detail: object,
) -> Audited:
    """An audit log entry for what this process's user did (as `role`, when it read as one)."""
    return Audited(
        at=at,
        actor=getpass.getuser(),
        role=role,
        action=action,
        subject=subject,
        status=status,
        detail=dict(detail),
    )


def _audit_entry(
    report: RunReport, command: str, env: str, *, at: datetime, finished: bool
) -> Audited:
    built = [n for n, o in report.models.items() if o.status is TaskStatus.BUILT]
    failed = [n for n, o in report.models.items() if o.status is TaskStatus.FAILED]
    return audited(
        command,
        env,
        at=at,
        status=0 if report.ok and finished else 1,
        run_id=report.run_id,
        release=report.release,
        landed=sorted({landed.table for landed in report.landed}),
        built=sorted(built),
        failed=sorted(failed),
    )


def _critical_held_back(project: Project, stores: Stores, report: RunReport) -> set[str]:
    """The `critical: true` models prod shows another version of than the project says
    (and what reads them): a run leaves them as they are, for `headwater apply` to stage."""
    if not any(m.config.critical for m in project.models.values()):
        return set()
    pointers = stores.catalog.pointers(PROD)
    critical = [n for n in critical_changes(project, stores.catalog, PROD) if n in pointers]
    if not critical:
        return set()
    held = select_models(project.dag, [f"{name}+" for name in critical])
    report.notes.append(
        f"{', '.join(critical)} changed and is critical: true, so this run left it (and what "
        f"reads it: {len(held) - len(critical)} model(s)) as prod shows it; `headwater apply` "
        "stages the change for approval"
    )
    return held


def _approve(
    project: Project, stores: Stores, report: RunReport, env: str, *, approve: bool, now: datetime
) -> None:
    """Flip `env` to what its green environment holds, if approved; else say what waits."""
    green = green_of(env)
    waiting = staged(project, stores.catalog, env)
    if not waiting:
        return
    if approve:
        verdict = Verdict(True, [f"approved by {who()} (apply --approve)"])
    else:
        verdict = judge(project, stores, env, report, project.settings.releases.auto_approve)
    if verdict.approved:
        report.release = flip(
            project, stores, env, run_id=report.run_id, now=now, note="; ".join(verdict.reasons)
        )
        report.notes.append(f"{env} flipped to the green versions: {'; '.join(verdict.reasons)}")
        return
    report.staged = green
    report.release = None  # green's own release is in the log; `env` has no new one
    report.notes.append(
        f"staged as green, not published: {', '.join(waiting)} (critical: true); {env} shows "
        f"what it showed. Why not flipped: {'; '.join(verdict.reasons)}. Compare with "
        f"`headwater diff{'' if env == PROD else f' --env {env}'}`, then `headwater apply "
        f"--approve{'' if env == PROD else f' --env {env}'}` flips it"
    )


def _refuse_incompatible(project: Project, stores: Stores) -> None:
    """Stop an apply whose contracts changed in a way their schema_version does not allow."""
    from headwater.change.plan import plan

    refused = plan(project, stores.catalog, lake=stores.lake).refused
    if refused:
        raise SpecError(
            "; ".join(c.explain() for c in refused) + "; nothing was built",
            hint=refused[0].hint + " (see `headwater plan`)",
        )


class _Stages:
    """Each task of a run's plan to the stage that does it: landing in plan order, building
    on the executor's workers, publishing once every build is done."""

    def __init__(self, land: Callable[[Task], TaskStatus], building: BuildStage, lease: Lease):
        self.land, self.building, self.lease = land, building, lease

    def settle(self, task: Task) -> object | None:
        if self.lease.lost and task.kind is not TaskKind.BUILD:
            # another run holds the project now: landing or publishing more would race it
            raise LeaseLost(
                "another run took this run's lease over (this one had stopped renewing it); "
                "it stops before landing or publishing anything more",
                hint="see `headwater runs` for the run that took over",
            )
        if task.kind is TaskKind.INGEST:
            return self.land(task)
        if task.kind is TaskKind.PUBLISH:
            self.building.publish()
            return TaskStatus.BUILT
        return self.building.settle(task)

    def work(self, task: Task) -> object:
        return self.building.work(task)

    def done(self, task: Task, result: object) -> None:
        if task.kind is TaskKind.BUILD:
            assert isinstance(result, ModelOutcome)
            self.building.done(task, result)


def land_one(
    contract: Contract,
    project: Project,
    stores: Stores,
    report: RunReport,
    *,
    now: datetime,
    sink: EventSink,
    blocked: dict[str, str],
    queued: float | None = None,
) -> TaskStatus:
    """Land one contract's new batch, check its rules and refresh its raw views; a raw table
    that failed to land, or whose `error` rules failed on its batch, goes into `blocked`
    with why."""
    from headwater.ingest import ingest  # ingestion's readers load only when a run lands

    sink(Event("ingest", contract.table, TaskStatus.START, run_id=report.run_id))
    started = now_after(now)
    if contract.rules:
        recheck_held(contract, project, stores, now=now)
    retrying: Retrying | None = None
    try:
        changed = compare(contract, stores.lake)
        if changed is not None and changed.refused:
            hint = (
                changed.hint
                if changed.impossible
                else f"raise its schema_version (e.g. {_next(contract.schema_version)!r}) to "
                "land under the new schema — readers see it as a new version — or undo it"
            )
            raise SpecError(changed.explain(), hint=hint)
        defaults = project.settings.defaults
        retries = defaults.retries if contract.retries is None else contract.retries
        budget = parse_duration(contract.timeout or defaults.timeout)
        deadline = time.monotonic() + budget  # every attempt stops at it, not only the first
        retrying = Retrying(
            retries,
            budget,
            first_wait=parse_duration(defaults.backoff),
            on_retry=lambda err, wait: sink(
                Event(
                    "ingest",
                    contract.table,
                    TaskStatus.RETRYING,
                    {"error": err.message, "wait": round(wait, 3)},
                    run_id=report.run_id,
                )
            ),
        )
        landed = retrying.call(
            lambda: ingest(
                contract, root=project.root, lake=stores.lake, now=now, deadline=deadline
            )
        )
        landed.warnings += [
            f"landed on attempt {len(retrying.failures) + 1}, after: {e.render()}"
            for e in retrying.failures[-1:]
        ]
    except HeadwaterError as err:
        if err.where is None:
            err.where = Location(project.contract_file(contract))
        report.ingest_errors[contract.table] = err.render()
        blocked[contract.table] = "failed to land"
        _task(
            stores,
            report,
            contract.table,
            "ingest",
            TaskStatus.FAILED,
            started,
            error=err.render(),
            attempts=retrying.attempts if retrying is not None else 1,
            queued_s=queued,
        )
        sink(
            Event(
                "ingest",
                contract.table,
                TaskStatus.FAILED,
                {"error": err.render()},
                run_id=report.run_id,
            )
        )
        refresh_raw_view(contract, stores)
        return TaskStatus.FAILED
    report.landed.append(landed)
    if why := refresh_raw_view(contract, stores):
        blocked[contract.table] = why
    if landed.batch_id is not None and (contract.rules or project.settings.defaults.profile):
        try:
            results = contract_checks(contract, project, stores, report, landed, now=now)
        except HeadwaterError as err:  # a rule that cannot run: the batch is unchecked
            report.ingest_errors[contract.table] = err.render()
            results = []
            blocked[contract.table] = "has rules that cannot run"
        failed = sorted({r.rule.name for r in results if r.blocking})
        if failed and landed.batch_id:
            # the batch stays in the lake, held out of raw.<name> until its rules pass
            stores.catalog.hold(
                contract.table,
                landed.batch_id,
                reason=f"{REASON_PREFIX}{', '.join(failed)}",
                now=now,
            )
            refresh_raw_view(contract, stores)
            blocked[contract.table] = f"failed its contract rules ({', '.join(failed)})"
    report.held[contract.table] = stores.catalog.held(contract.table)
    _task(
        stores,
        report,
        contract.table,
        "ingest",
        TaskStatus.LANDED,
        started,
        rows=landed.rows,
        quarantined=landed.quarantined,
        attempts=retrying.attempts,
        rows_in=landed.rows + landed.quarantined + landed.skipped,
        bytes=landed.bytes,
        queued_s=queued,
    )
    sink(
        Event(
            "ingest",
            contract.table,
            TaskStatus.LANDED,
            {"rows": landed.rows, "quarantined": landed.quarantined},
            run_id=report.run_id,
            outputs=(contract.table,),
        )
    )
    return TaskStatus.LANDED


def zone_rows(project: Project, stores: Stores) -> dict[str, int]:
    """Rows held now in each zone: raw tables, seeds and the published tables of each model
    zone."""
    # the raw views read the files of each table's current snapshot: counting them reads
    # Parquet footers only, where the snapshot summary would load each table's metadata
    # a contract whose columns are inferred has no raw view before its first load (asked of
    # each: listing every object costs Spark two statements a namespace)
    engine = stores.engine
    tables = [c.table for c in project.contracts.values() if engine.stored(c.table) is not None]
    counted = stores.engine.row_counts(tables)
    totals: dict[str, int] = {}
    for zone in sorted({c.zone for c in project.contracts.values()} | {"raw"}):
        rows = sum(counted.get(c.table, 0) for c in project.contracts.values() if c.zone == zone)
        if rows or zone == "raw":
            totals[zone] = rows
    published = stores.catalog.published_rows(PROD)
    for name, model in project.models.items():
        if published.get(name) is not None:
            totals[model.zone] = totals.get(model.zone, 0) + (published[name] or 0)
    return totals


def _task(
    stores: Stores,
    report: RunReport,
    task: str,
    stage: str,
    status: TaskStatus,
    started: datetime,
    **values: Any,
) -> None:
    stores.catalog.record_task(
        report.run_id,
        TaskRecord(
            task=task,
            stage=stage,
            status=status,
            started_at=started,
            ended_at=now_after(started),
            **values,
        ),
    )


def _next(version: str) -> str:
    """The schema_version after `version`: "3" → "4", "1.2" → "1.3", else `version`-2."""
    head, _, last = version.rpartition(".")
    if last.isdigit():
        return f"{head}.{int(last) + 1}" if head else str(int(last) + 1)
    return f"{version}-2"
