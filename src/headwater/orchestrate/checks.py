"""Rules in a run: on each landed batch, and on demand against what is published."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from headwater.change.versions import (
    PROD,
)
from headwater.contracts import Contract, Rule, RuleType
from headwater.contracts.load import locate
from headwater.contracts.specs import METADATA_PREFIX
from headwater.contracts.thresholds import parse_duration
from headwater.engine.base import Engine
from headwater.errors import HeadwaterError, Location
from headwater.govern.pii import ModelPii, contract_pii
from headwater.observe import RunStatus, TaskStatus
from headwater.orchestrate.judged import (
    JUDGED,
    Judging,
    check_targets,
    evaluate_judged,
    nothing,
)
from headwater.orchestrate.raw import refresh_raw_view, refresh_raw_views
from headwater.orchestrate.report import RunReport, now_after
from headwater.orchestrate.stores import Stores
from headwater.project import Project
from headwater.quality import CheckResult
from headwater.quality.drift import Relation
from headwater.quality.profile import TableProfile
from headwater.quality.rules import evaluate_profiled
from headwater.zones.catalog import CheckRecord, StoredProfile
from headwater.zones.lake import Snapshot
from headwater.zones.layout import RAW_METADATA

if TYPE_CHECKING:
    from headwater.ingest import Landed


def check_all(
    project: Project, stores: Stores, *, now: datetime, targets: set[str] | None = None
) -> list[CheckResult]:
    """Evaluate every rule against what is published now (raw tables and prod views)."""
    refresh_raw_views(project, stores)
    report_run = stores.catalog.start_run("check", now=now)
    results: list[CheckResult] = []
    for contract in project.contracts.values():
        if contract.rules and (targets is None or contract.table in targets):
            results += evaluate_contract(contract, project, stores, now=now)
    pointers = stores.catalog.pointers(PROD)
    for model in project.models.values():
        if model.rules and model.name in pointers and (targets is None or model.name in targets):
            columns = list(stores.engine.columns(model.name))
            results += evaluate_in(
                model.sidecar_path or model.path,
                model.rules,
                model.name,
                stores=stores,
                root=project.root,
                engine=stores.engine,
                now=now,
                columns=columns,
                key=model.config.grain,
                declared=model.sidecar.declared,
                pii=ModelPii(project, model.name, columns),
            )
    record_checks(stores, report_run, results, now=now)
    failed = any(r.blocking for r in results)
    stores.catalog.end_run(
        report_run,
        status=RunStatus.FAILED if failed else RunStatus.SUCCESS,
        summary={"checks": len(results), "failed": sum(not r.passed for r in results)},
        now=now_after(now),
    )
    return results


def unpublished(project: Project, stores: Stores) -> dict[str, str]:
    """Models whose newest build did not publish (blocked, failed or skipped), or that were
    never built, each with why: what `check` cannot vouch for, since prod does not show it."""
    pointers = stores.catalog.pointers(PROD)
    last = stores.catalog.last_outcomes("build")
    out = {}
    for name in project.dag.order:
        status, error = last.get(name, (None, None))
        if status in (TaskStatus.BLOCKED, TaskStatus.FAILED, TaskStatus.SKIPPED):
            served = "prod serves its previous version" if name in pointers else "never published"
            out[name] = f"{status} in the last build ({error}); {served}"
        elif name not in pointers and project.models[name].config.kind.value != "ephemeral":
            out[name] = "never built: run `headwater run` (or `headwater build`)"
    return out


def contract_checks(
    contract: Contract,
    project: Project,
    stores: Stores,
    report: RunReport,
    landed: Landed,
    *,
    now: datetime,
) -> list[CheckResult]:
    scope = exp.EQ(
        this=exp.column("_hw_batch_id"), expression=exp.Literal.string(landed.batch_id or "")
    )
    columns = stores.engine.columns(contract.table)
    batch = landed.batch_id or ""
    results = evaluate_contract(
        contract,
        project,
        stores,
        now=now,
        scope=scope,
        # the batch's manifests answer counts, nulls, freshness and ranges without a scan
        stats=stores.lake.batch_stats(contract.table, landed.batch_id or "")
        if contract.rules
        else None,
        profile_rows=landed.rows + landed.quarantined,
        keep=Profiled(
            contract.table,
            "batch",
            landed.batch_id or "",
            report.run_id,
            now,
            {c: t for c, t in columns.items() if not c.startswith(METADATA_PREFIX)},
        )
        if project.settings.defaults.profile
        else None,
        judging=Judging(
            contract.table,
            Relation(contract.table, scope),
            lambda reference: earlier_batches(stores, contract.table, batch, reference, now),
            columns,
        ),
    )
    report.checks.extend(results)
    record_checks(stores, report.run_id, results, now=now)
    return results


def earlier_batches(
    stores: Stores, table: str, batch: str, reference: str, now: datetime
) -> Relation | None:
    """The rows a drift rule compares batch `batch` of `table` with: the batch that landed
    rows before it (`previous`), or every batch of the window before it (`7d`); None when
    there is none."""
    snapshots = [s for s in stores.lake.snapshots(table) if s.batch_id and s.properties.get("rows")]
    before = []
    for snap in snapshots:
        if snap.batch_id == batch:
            break
        before.append(snap)
    if reference == "previous":
        chosen = [s.batch_id for s in before[-1:]]
    else:
        since = now - timedelta(seconds=parse_duration(reference))
        chosen = [s.batch_id for s in before if _landed(s) >= since]
    if not chosen:
        return None
    ids = exp.In(
        this=exp.column("_hw_batch_id"),
        expressions=[exp.Literal.string(b) for b in chosen if b],
    )
    return Relation(table, ids)


def _landed(snapshot: Snapshot) -> datetime:
    landed = snapshot.properties.get("landed_at")
    if isinstance(landed, str):
        return datetime.fromisoformat(landed)
    return datetime.fromtimestamp(snapshot.timestamp_ms / 1000, UTC)


def recheck_held(contract: Contract, project: Project, stores: Stores, *, now: datetime) -> None:
    """Evaluate the contract's rules again on each batch held back from `raw.<name>` awaiting
    a decision, and release the batches they now pass (the rule was fixed, or made a
    warning). A batch an operator discarded is never checked again."""
    held = stores.catalog.held(contract.table)
    if not held:
        return
    files = stores.lake.files(contract.table)
    for batch in held:
        rows = exp.select(exp.Star()).from_(stores.engine.scan(files))
        rows = rows.where(exp.column("_hw_batch_id").eq(exp.Literal.string(batch)))
        stores.engine.execute(
            exp.Create(this=exp.to_table(_HELD), kind="VIEW", replace=True, expression=rows)
        )
        try:
            results = evaluate_contract(contract, project, stores, now=now, table=_HELD)
        finally:
            stores.engine.execute(exp.Drop(tables=[exp.to_table(_HELD)], kind="VIEW", exists=True))
        if not any(r.blocking for r in results):
            stores.catalog.release(contract.table, batch, now=now, note="its rules pass now")
    refresh_raw_view(contract, stores)


_HELD = "_hw_held_batch"


def evaluate_contract(
    contract: Contract,
    project: Project,
    stores: Stores,
    *,
    now: datetime,
    table: str | None = None,
    **options: Any,
) -> list[CheckResult]:
    """The contract's rules on its raw table (or on `table`, rows of it), errors located in
    the contract's file; `options` go to `quality.evaluate` (scope, stats)."""
    return evaluate_in(
        project.contract_file(contract),
        contract.rules,
        table or contract.table,
        stores=stores,
        root=project.root,
        engine=stores.engine,
        now=now,
        columns=_raw_columns(contract, stores),
        key=contract.primary_key,
        declared=contract.declared,
        label=contract.table,
        pii=contract_pii(contract),
        **options,
    )


def _raw_columns(contract: Contract, stores: Stores) -> list[str]:
    """The raw table's columns: as landed, else as declared (nothing has landed yet)."""
    schema = stores.lake.schema(contract.table)
    if schema is not None:
        return list(schema.names)
    return [*(c.name for c in contract.columns), *RAW_METADATA]


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


def evaluate_in(
    file: str,
    rules: list[Rule],
    table: str,
    *,
    stores: Stores,
    root: Path,
    keep: Profiled | None = None,
    judging: Judging | None = None,
    **options: Any,
) -> list[CheckResult]:
    """`quality.evaluate` with the history of volume rules from the catalog, and its errors
    pointed at the file (and line) that declares the rules; with `keep`, the rows are also
    profiled in the rules' scan and the profile recorded. Drift and anomaly rules are judged
    against history (`judging`: the rows and what drift compares them with)."""
    judged = [(i, r) for i, r in enumerate(rules) if r.type in JUDGED]
    if judged and judging is None:
        engine: Engine = options["engine"]
        judging = Judging(
            options.get("label") or table, Relation(table), nothing, engine.columns(table)
        )
    rules = [r for r in rules if r.type not in JUDGED]
    columns = keep.columns if keep else None
    if (
        columns is None
        and judging is not None
        and any(r.type is RuleType.ANOMALY for _, r in judged)
    ):
        columns = judging.columns  # anomaly rules judge the profile's metrics
    volume = [r for r in rules if r.type is RuleType.VOLUME]
    if volume:
        options["history"] = stores.catalog.metric_history(
            options.get("label") or table,
            [r.name for r in volume],
            limit=max(r.runs for r in volume),
        )
    try:
        if judging is not None:
            check_targets(judged, judging)
        results, profile = evaluate_profiled(rules, table, profile=columns, **options)
        if judging is not None and judged:
            results += evaluate_judged(
                [r for _, r in judged],
                judging,
                engine=options["engine"],
                catalog=stores.catalog,
                profile=profile,
                now=options["now"],
                pii=set(options.get("pii") or {}),
            )
    except HeadwaterError as err:
        field = err.where.field if err.where and not err.where.file else None
        if err.where is None or field:
            line = locate(root / file, _key_path(field)) if field else None
            err.where = Location(file, line, field)
        raise
    if profile is not None and keep is not None:
        keep.record(stores, profile)
    return results


@dataclass(frozen=True)
class Profiled:
    """What to profile in a rules' scan, and where its profile is recorded."""

    target: str  # the logical name: raw.orders, marts.revenue
    kind: str  # batch | version
    ref: str  # the batch id or the version's fingerprint
    run_id: str
    at: datetime
    columns: dict[str, str]  # name → engine type

    def record(self, stores: Stores, profile: TableProfile) -> None:
        stores.catalog.record_profile(
            StoredProfile(
                self.target,
                self.kind,
                self.ref,
                self.run_id,
                self.at,
                profile.rows,
                profile.to_json(),
            )
        )


def _key_path(field: str) -> tuple[str | int, ...]:
    """`rules[2].target` → `("rules", 2, "target")`."""
    return tuple(int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", field))
