"""One run of a project: ingest → raw views → models in DAG order → checks, with a report.

Stages are plain functions over the stores; time and the event sink are passed in. Failures
are contained: a failed model skips only its downstream, a failed contract only the models
that read it, and everything else goes on.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
from sqlglot import exp

from headwater.change.versions import (
    PROD,
    data_key,
    fingerprint,
    physical_name,
    publish_view,
    view_schema,
)
from headwater.contracts import Contract
from headwater.engine.duckdb import DuckDBEngine
from headwater.errors import HeadwaterError, Location
from headwater.ingest import Landed, ingest
from headwater.models import Model, render
from headwater.observe import Event, EventSink, discard
from headwater.orchestrate.stores import Stores
from headwater.project import Project
from headwater.quality import CheckResult, evaluate
from headwater.zones.catalog import CheckRecord, ModelVersion, TaskRecord

STAGES = ("ingest", "build")


@dataclass
class ModelOutcome:
    """What happened to one model in a run."""

    name: str
    status: str  # built | up_to_date | failed | blocked | skipped
    physical: str | None = None
    rows: int | None = None
    seconds: float = 0.0
    error: str | None = None
    data_key: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("built", "up_to_date")


@dataclass
class RunReport:
    """Everything a run did, for the CLI summary and the catalog."""

    run_id: str
    landed: list[Landed] = field(default_factory=list)
    ingest_errors: dict[str, str] = field(default_factory=dict)
    models: dict[str, ModelOutcome] = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)
    zone_rows: dict[str, int] = field(default_factory=dict)

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
            "quarantined": {x.table: x.quarantined for x in self.landed},
            "models": {m.name: m.status for m in self.models.values()},
            "checks_failed": [c.rule.name for c in self.checks if not c.passed],
            "ingest_errors": self.ingest_errors,
        }


def run(
    project: Project,
    stores: Stores,
    *,
    now: datetime,
    sink: EventSink = discard,
    stages: Iterable[str] = STAGES,
    command: str = "run",
) -> RunReport:
    """Run the chosen `stages` of `project` and record the run in the catalog."""
    report = RunReport(stores.catalog.start_run(command, now=now))
    chosen = set(stages)
    try:
        blocked: set[str] = set()
        if "ingest" in chosen:
            blocked = ingest_all(project, stores, report, now=now, sink=sink)
        else:
            refresh_raw_views(project, stores)
        if "build" in chosen:
            build_all(project, stores, report, now=now, sink=sink, blocked=blocked)
        report.zone_rows = zone_rows(project, stores)
    finally:
        stores.catalog.end_run(
            report.run_id,
            status="success" if report.ok else "failed",
            summary=report.summary(),
            now=_now_after(now),
        )
    return report


def ingest_all(
    project: Project, stores: Stores, report: RunReport, *, now: datetime, sink: EventSink
) -> set[str]:
    """Land every contract; returns the raw tables whose `error` rules failed on their batch."""
    blocked: set[str] = set()
    for contract in project.contracts.values():
        sink(Event("ingest", contract.table, "start"))
        started = _now_after(now)
        try:
            landed = ingest(contract, root=project.root, lake=stores.lake, now=now)
        except HeadwaterError as err:
            if err.where is None:
                err.where = Location(project.contract_file(contract))
            report.ingest_errors[contract.table] = err.render()
            blocked.add(contract.table)
            _task(stores, report, contract.table, "ingest", "failed", started, error=err.render())
            sink(Event("ingest", contract.table, "failed", {"error": err.render()}))
            refresh_raw_view(contract, stores)
            continue
        report.landed.append(landed)
        refresh_raw_view(contract, stores)
        if landed.batch_id is not None and contract.rules:
            results = _contract_checks(contract, stores, report, landed, now=now)
            if any(r.blocking for r in results):
                blocked.add(contract.table)
        _task(
            stores,
            report,
            contract.table,
            "ingest",
            "success",
            started,
            rows=landed.rows,
            quarantined=landed.quarantined,
        )
        sink(
            Event(
                "ingest",
                contract.table,
                "done",
                {"rows": landed.rows, "quarantined": landed.quarantined},
            )
        )
    return blocked


def refresh_raw_views(project: Project, stores: Stores) -> None:
    for contract in project.contracts.values():
        refresh_raw_view(contract, stores)


def refresh_raw_view(contract: Contract, stores: Stores) -> None:
    """Point `raw.<name>` (and its quarantine) at the files of the current Iceberg snapshot."""
    engine = stores.engine
    engine.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for table in (contract.table, f"{contract.table}__quarantine"):
        target = exp.to_table(table)
        files = stores.lake.files(table)
        engine.execute(exp.Drop(tables=[target.copy()], kind="VIEW", exists=True))
        engine.execute(exp.Drop(tables=[target.copy()], kind="TABLE", exists=True))
        if files:
            scan = exp.func(
                "read_parquet",
                exp.Array(expressions=[exp.Literal.string(f) for f in files]),
                exp.EQ(this=exp.column("union_by_name"), expression=exp.true()),
            )
            select = exp.select(exp.Star()).from_(scan)
            engine.execute(exp.Create(this=target, kind="VIEW", expression=select))
        else:
            schema = stores.lake.schema(table) or pa.schema([])
            engine.register("_hw_empty", schema.empty_table())
            try:
                engine.execute(
                    exp.Create(
                        this=target,
                        kind="TABLE",
                        expression=exp.select(exp.Star()).from_("_hw_empty"),
                    )
                )
            finally:
                engine.unregister("_hw_empty")


def build_all(
    project: Project,
    stores: Stores,
    report: RunReport,
    *,
    now: datetime,
    sink: EventSink,
    blocked: set[str] = frozenset(),
) -> None:  # type: ignore[assignment]
    """Build every model in DAG order, independent ones in parallel."""
    dag = project.dag
    if not dag.order:
        return
    fps = fingerprints(project)
    for zone in {m.zone for m in project.models.values()}:
        stores.engine.execute(
            exp.Create(this=exp.to_table(f"hw_{zone}"), kind="SCHEMA", exists=True)
        )
        stores.engine.execute(
            exp.Create(this=exp.to_table(view_schema(zone)), kind="SCHEMA", exists=True)
        )
    raw_keys = {t: str(stores.lake.current_snapshot_id(t)) for t in project.raw_tables}
    builder = _Builder(project, stores, report, fps=fps, raw_keys=raw_keys, now=now, sink=sink)
    sorter = dag.sorter(dag.order)
    workers = project.settings.defaults.threads or 4
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hw-build") as pool:
        running: dict[Future[ModelOutcome], str] = {}
        while sorter.is_active():
            for name in sorter.get_ready():
                reason = _upstream_problem(project.models[name], report, blocked)
                if reason:
                    report.models[name] = ModelOutcome(name, "skipped", error=reason)
                    sink(Event("build", name, "skipped", {"error": reason}))
                    sorter.done(name)
                else:
                    running[pool.submit(builder.build, name)] = name
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                outcome = report.models[name] = future.result()
                sorter.done(name)
                stores.catalog.record_task(
                    report.run_id,
                    TaskRecord(
                        task=name,
                        stage="build",
                        status=outcome.status,
                        rows=outcome.rows,
                        error=outcome.error,
                    ),
                )


def check_all(
    project: Project, stores: Stores, *, now: datetime, targets: set[str] | None = None
) -> list[CheckResult]:
    """Evaluate every rule against what is published now (raw tables and prod views)."""
    refresh_raw_views(project, stores)
    report_run = stores.catalog.start_run("check", now=now)
    results: list[CheckResult] = []
    for contract in project.contracts.values():
        if contract.rules and (targets is None or contract.table in targets):
            columns = [f.name for f in stores.lake.schema(contract.table) or []]
            results += _located(
                contract.rules,
                contract.table,
                stores,
                now=now,
                columns=columns,
                key=contract.primary_key,
                file=project.contract_file(contract),
            )
    pointers = stores.catalog.pointers(PROD)
    for model in project.models.values():
        if model.rules and model.name in pointers and (targets is None or model.name in targets):
            columns = [
                f.name
                for f in stores.engine.read(
                    exp.select(exp.Star()).from_(exp.to_table(model.name)).limit(0)
                ).schema
            ]
            results += _located(
                model.rules,
                model.name,
                stores,
                now=now,
                columns=columns,
                key=model.config.grain,
                file=model.sidecar_path or model.path,
            )
    record_checks(stores, report_run, results, now=now)
    failed = any(r.blocking for r in results)
    stores.catalog.end_run(
        report_run,
        status="failed" if failed else "success",
        summary={"checks": len(results), "failed": sum(not r.passed for r in results)},
        now=_now_after(now),
    )
    return results


def _located(
    rules: list[Any],
    table: str,
    stores: Stores,
    *,
    now: datetime,
    columns: list[str],
    key: list[str],
    file: str,
) -> list[CheckResult]:
    try:
        return evaluate(rules, table, engine=stores.engine, now=now, columns=columns, key=key)
    except HeadwaterError as err:
        err.where = err.where or Location(file)
        raise


def zone_rows(project: Project, stores: Stores) -> dict[str, int]:
    """Rows held now in each zone: raw tables and the published tables of each model zone."""
    totals = {"raw": 0}
    for table in project.raw_tables:
        totals["raw"] += stores.engine.rows(exp.select("count(*)").from_(table))[0][0]
    pointers = stores.catalog.pointers(PROD)
    for name, model in project.models.items():
        if model.config.kind.value == "table" and name in pointers:
            count = stores.engine.rows(exp.select("count(*)").from_(pointers[name]))[0][0]
            totals[model.zone] = totals.get(model.zone, 0) + count
    return totals


def fingerprints(project: Project) -> dict[str, str]:
    """Fingerprint of every model, upstream first."""
    fps: dict[str, str] = {}
    for name in project.dag.order:
        model = project.models[name]
        upstream = {dep: fps.get(dep, dep) for dep in model.depends_on}
        fps[name] = fingerprint(model.sql_hash, model.config.kind.value, upstream)
    return fps


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
        now: datetime,
        sink: EventSink,
    ):
        self.project, self.stores, self.report = project, stores, report
        self.fps, self.raw_keys, self.now, self.sink = fps, raw_keys, now, sink
        self.physical = {name: physical_name(name, fp) for name, fp in fps.items()}
        self.pointers = stores.catalog.pointers(PROD)

    def build(self, name: str) -> ModelOutcome:
        model = self.project.models[name]
        started = time.perf_counter()
        self.sink(Event("build", name, "start"))
        physical = self.physical[name]
        inputs = {
            dep: self.raw_keys.get(dep) or self.report.models[dep].data_key or ""
            for dep in model.depends_on
        }
        key = data_key(self.fps[name], inputs)
        known = self.stores.catalog.model_version(name, self.fps[name])
        if known and known.data_key == key and self.pointers.get(name) == physical:
            outcome = ModelOutcome(name, "up_to_date", physical, known.rows, data_key=key)
        else:
            outcome = self._write_audit_publish(model, physical, key)
        outcome.seconds = time.perf_counter() - started
        self.sink(
            Event("build", name, outcome.status, {"rows": outcome.rows, "error": outcome.error})
        )
        return outcome

    def _write_audit_publish(self, model: Model, physical: str, key: str) -> ModelOutcome:
        cursor = self.stores.engine.cursor()
        kind = model.config.kind.value
        query = render(model.query, self.physical)
        target = exp.to_table(physical)
        results: list[CheckResult] = []
        try:
            with cursor.transaction():
                cursor.execute(
                    exp.Create(this=target, kind=kind.upper(), replace=True, expression=query)
                )
                rows = (
                    cursor.rows(exp.select(exp.Count(this=exp.Star())).from_(target.copy()))[0][0]
                    if kind == "table"
                    else None
                )
                columns = [
                    f.name
                    for f in cursor.read(
                        exp.select(exp.Star()).from_(target.copy()).limit(0)
                    ).schema
                ]
                results = self._audit(model, physical, cursor, columns)
                if any(r.blocking for r in results):
                    failed = ", ".join(r.rule.name for r in results if r.blocking)
                    raise _Blocked(f"error rule(s) failed: {failed}; nothing was published")
                cursor.execute(publish_view(model.name, physical))
        except _Blocked as blocked:
            return ModelOutcome(model.name, "blocked", physical, error=str(blocked))
        except HeadwaterError as err:
            if err.where is None:
                err.where = Location(model.path)
            return ModelOutcome(model.name, "failed", physical, error=err.render())
        finally:
            self._record_checks(results)
            cursor.close()
        version = ModelVersion(model.name, self.fps[model.name], physical, kind, key, rows)
        self.stores.catalog.publish(
            version, env=PROD, run_id=self.report.run_id, now=_now_after(self.now)
        )
        return ModelOutcome(model.name, "built", physical, rows, data_key=key)

    def _audit(
        self, model: Model, physical: str, cursor: DuckDBEngine, columns: list[str]
    ) -> list[CheckResult]:
        try:
            return evaluate(
                model.rules,
                physical,
                engine=cursor,
                now=self.now,
                columns=columns,
                key=model.config.grain,
                label=model.name,
            )
        except HeadwaterError as err:
            err.where = err.where or Location(model.sidecar_path or model.path)
            raise

    def _record_checks(self, results: list[CheckResult]) -> None:
        self.report.checks.extend(results)
        record_checks(self.stores, self.report.run_id, results, now=self.now)


class _Blocked(Exception):
    """An error rule failed on a new version: roll back and publish nothing."""


def _contract_checks(
    contract: Contract, stores: Stores, report: RunReport, landed: Landed, *, now: datetime
) -> list[CheckResult]:
    scope = exp.EQ(
        this=exp.column("_hw_batch_id"), expression=exp.Literal.string(landed.batch_id or "")
    )
    columns = [f.name for f in stores.lake.schema(contract.table) or []]
    try:
        results = evaluate(
            contract.rules,
            contract.table,
            engine=stores.engine,
            now=now,
            columns=columns,
            scope=scope,
            key=contract.primary_key,
        )
    except HeadwaterError as err:
        err.where = err.where or Location(f"contracts/{contract.name}.yml")
        raise
    report.checks.extend(results)
    record_checks(stores, report.run_id, results, now=now)
    return results


def record_checks(
    stores: Stores, run_id: str, results: list[CheckResult], *, now: datetime
) -> None:
    stores.catalog.record_checks(
        run_id,
        [
            CheckRecord(
                r.target,
                r.rule.name,
                r.rule.type.value,
                r.rule.severity.value,
                r.passed,
                r.metric,
                r.threshold,
                r.sql,
                r.samples,
            )
            for r in results
        ],
        now=now,
    )


def _upstream_problem(model: Model, report: RunReport, blocked: set[str]) -> str | None:
    for dep in model.depends_on:
        if dep in blocked:
            return f"upstream {dep} failed its contract or did not land"
        outcome = report.models.get(dep)
        if outcome is not None and not outcome.ok:
            return f"upstream {dep} {outcome.status}"
    return None


def _task(
    stores: Stores,
    report: RunReport,
    task: str,
    stage: str,
    status: str,
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
            ended_at=_now_after(started),
            **values,
        ),
    )


def _now_after(now: datetime) -> datetime:
    """Wall-clock now, but never before the run's `now` (tests pass a fixed `now`)."""
    wall = datetime.now(now.tzinfo)
    return max(wall, now)
