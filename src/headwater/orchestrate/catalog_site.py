"""What `headwater docs` shows, gathered into one JSON-able dict (`govern.site` renders it):
every contract, seed and model by zone with its owners, docs, columns, tags, freshness, rule
results, runs, profile and column lineage.

It reads the project's files, the catalog and the lake when there are any, and the warehouse
when given one (one profile query per table). What it never holds, so the site never shows:
a value of a PII-tagged column (nor of one whose lineage cannot tell), a quarantined record,
a rule's sample rows, an error's text (a failed load may quote a record in it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from headwater.contracts import Contract, Rule
from headwater.contracts.orchestration import Sla
from headwater.engine import Engine
from headwater.errors import HeadwaterError
from headwater.govern.pii import Tag, Tags, project_tags
from headwater.models import Model
from headwater.models.lineage import Lineage, trace
from headwater.orchestrate.lineage import raw_schema, record_lineage
from headwater.orchestrate.sla import Freshness, freshness
from headwater.orchestrate.stores import pinned_columns, project_catalog_url, project_secrets
from headwater.project import Project
from headwater.quality.profile import ColumnProfile, Profile, profile
from headwater.zones.catalog import Catalog
from headwater.zones.lake import Lake

FORMAT = 1  # of the data the site's app.js reads
RUNS = 20  # the recent runs shown, and each table's outcomes in them
BOUND_CHARS = 80  # a longer minimum or maximum is cut
METADATA = "_hw_"
EPOCH = datetime.min.replace(tzinfo=UTC)
METADATA_DOCS = {
    "_hw_batch_id": "The landing batch that wrote the row (headwater).",
    "_hw_ingested_at": "When the row's batch landed (headwater).",
    "_hw_source": "Where the record came from: file and record, offset or LSN (headwater).",
    "_hw_late": "Older than the watermark allowed when it landed (headwater).",
}


@dataclass
class _Catalogued:
    """What the catalog and the lake say of the tables (all empty for a project never run)."""

    built: bool = False
    freshness: dict[str, Freshness] = field(default_factory=dict)
    results: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    newest: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Context:
    project: Project
    catalogued: _Catalogued
    pii: Tags
    lineage: Lineage
    raw: dict[str, dict[str, str]]  # the columns of the raw tables, as lineage read them
    engine: Engine | None
    objects: set[str]
    readers: dict[str, list[str]] = field(default_factory=dict)  # table → models reading it
    notes: list[str] = field(default_factory=list)


def collect(
    project: Project,
    *,
    now: datetime,
    catalog: Catalog | None = None,
    lake: Lake | None = None,
    engine: Engine | None = None,
    runs: int = RUNS,
) -> dict[str, Any]:
    """Everything the catalog site shows of `project`, as plain JSON data.

    Without a catalog and lake (a project never run) it documents the specs, every table
    "never built"; without an `engine` (the warehouse, read-only) it profiles nothing.
    Lineage is traced from the files (the catalog keeps what it traced, as `headwater lineage`
    does); a column's PII tag is what `govern.pii` says of it (`model_pii` for a model).
    """
    tags = project_tags(project)
    found, raw = _lineage(project, catalog, tags.lineage)
    ctx = _Context(
        project=project,
        catalogued=_catalogued(project, catalog, lake, now, runs),
        pii=tags,
        lineage=found,
        raw=raw,
        engine=engine,
        objects=set(engine.objects()) if engine is not None else set(),
    )
    for name in project.dag.order:
        for table in project.models[name].depends_on:
            ctx.readers.setdefault(table, []).append(name)
    tables = [_contract_table(ctx, c) for c in project.contracts.values()]
    tables += [_model_table(ctx, project.models[name]) for name in project.dag.order]
    data = {
        "format": FORMAT,
        "project": project.settings.name,
        "generated_at": now.astimezone(UTC).isoformat(),
        "built": ctx.catalogued.built,
        "profiled": engine is not None,
        "zones": _zones(project),
        "tables": tables,
        "runs": ctx.catalogued.runs,
        "lineage": _edges(found),
        "notes": ctx.notes,
    }
    scrub = project_secrets(project).scrub
    return {key: _scrubbed(value, scrub) for key, value in data.items()}


def _lineage(
    project: Project, catalog: Catalog | None, traced: Lineage
) -> tuple[Lineage, dict[str, dict[str, str]]]:
    """Column lineage as `headwater lineage` sees it, and the raw tables' columns it was traced
    against: those pinned when a table first landed, where its contract declares none (and
    kept in the catalog when there is one). Without a catalog, what `traced` (the PII tags')
    traced already is reused."""
    if catalog is None:
        schema = raw_schema(project)
        return trace(project.models, schema, order=project.dag.order, known=traced.models), schema
    pinned = pinned_columns(project, project_catalog_url(project))
    return record_lineage(project, catalog, pinned), raw_schema(project, pinned)


# the catalog -------------------------------------------------------------------------------


def _catalogued(
    project: Project, catalog: Catalog | None, lake: Lake | None, now: datetime, limit: int
) -> _Catalogued:
    if catalog is None or lake is None:
        return _Catalogued()
    out = _Catalogued(built=True)
    out.freshness = {f.table: f for f in freshness(project, catalog, lake, now)}
    for result in catalog.newest_check_results():
        out.results[(result["target"], result["rule"])] = _result(result)
    out.newest = {
        table: _task(task)
        for stage in ("ingest", "build")
        for table, task in catalog.newest_tasks(stage).items()
    }
    out.runs = [_run(r) for r in catalog.run_history(limit)]
    for run in out.runs:
        _add_history(out.history, run, catalog.run_tasks(run["run_id"]))
    return out


def _add_history(
    history: dict[str, list[dict[str, Any]]], run: dict[str, Any], tasks: list[dict[str, Any]]
) -> None:
    """Each table's newest task of `run` (a stream's run records one task per batch)."""
    newest: dict[str, dict[str, Any]] = {}
    for task in sorted(tasks, key=lambda t: _utc(t["ended_at"]) or EPOCH):
        if task["stage"] in ("ingest", "build"):
            newest[task["task"]] = task
    for table, task in newest.items():
        history.setdefault(table, []).append({**_task(task), "run_id": run["run_id"]})


def _task(task: dict[str, Any]) -> dict[str, Any]:
    """A task's outcome; not its error, whose text may quote a record."""
    ended = task.get("run_ended_at") or task.get("ended_at")
    return {
        "run_id": task["run_id"],
        "status": task["status"],
        "rows": task["rows"],
        "quarantined": task["quarantined"],
        "attempts": task["attempts"],
        "ended_at": _iso(ended),
        "failed": task["error"] is not None,
    }


def _run(run: dict[str, Any]) -> dict[str, Any]:
    builds = run["tasks"].get("build", {})
    started, ended = _utc(run["started_at"]), _utc(run["ended_at"])
    return {
        "run_id": run["run_id"],
        "command": run["command"],
        "status": run["status"],
        "started_at": _iso(started),
        "ended_at": _iso(ended),
        "seconds": None if started is None or ended is None else (ended - started).total_seconds(),
        "landed": run["landed"],
        "quarantined": run["quarantined"],
        "models_built": builds.get("built", 0),
        "models_failed": builds.get("failed", 0) + builds.get("blocked", 0),
        "rules_failed": sum(run["rules_failed"].values()),
    }


def _result(result: dict[str, Any]) -> dict[str, Any]:
    """A rule's newest result: its verdict and metric, never its sample rows or SQL."""
    return {
        "passed": bool(result["passed"]),
        "metric": result["metric"],
        "threshold": result["threshold"],
        "checked_at": _iso(result["checked_at"]),
        "run_id": result["run_id"],
    }


# tables ------------------------------------------------------------------------------------


def _contract_table(ctx: _Context, contract: Contract) -> dict[str, Any]:
    table = contract.table
    shape = _shape(ctx, table) or ctx.raw[table]
    docs = {c.name: c.description for c in contract.columns}
    keys = {*contract.primary_key}
    return {
        **_identity(table, contract.zone, contract.description, [contract.owner]),
        "kind": contract.zone,
        "materialization": contract.load.value,
        "file": ctx.project.contract_file(contract),
        "details": {
            "source": contract.source,
            "connector": contract.connector.kind,
            "delivery": contract.delivery.value,
            "privacy_level": contract.privacy_level.value,
            "schema_version": contract.schema_version,
            "evolution": contract.evolution.value,
            "primary_key": ", ".join(contract.primary_key) or None,
            "schedule": contract.schedule.cron if contract.schedule else None,
        },
        "tags": [],
        "depends_on": [],
        "used_by": ctx.readers.get(table, []),
        **_state(ctx, table, contract.sla, "ingest"),
        **_body(ctx, table, shape, docs, keys),
        "rules": _rules(ctx, table, contract.rules),
        "lineage_issue": None,
    }


def _model_table(ctx: _Context, model: Model) -> dict[str, Any]:
    sidecar, config = model.sidecar, model.config
    shape = _shape(ctx, model.name) or _spec_shape(ctx, model)
    docs = {
        c: doc if isinstance(doc, str) else doc.description for c, doc in sidecar.columns.items()
    }
    keys = {*config.grain, *config.unique_key}
    description = sidecar.description or config.description
    return {
        **_identity(model.name, model.zone, description, [sidecar.owner, config.owner]),
        "kind": "model",
        "materialization": config.kind.value,
        "file": model.path,
        "details": {
            "sidecar": model.sidecar_path,
            "grain": ", ".join(config.grain) or None,
            "unique_key": ", ".join(config.unique_key) or None,
            "time_column": config.time_column,
            "schedule": config.schedule.cron if config.schedule else None,
            "served": sidecar.published,
        },
        "tags": model.tags,
        "depends_on": list(model.depends_on),
        "used_by": ctx.readers.get(model.name, []),
        **_state(ctx, model.name, config.sla, "build"),
        **_body(ctx, model.name, shape, docs, keys, time=config.time_column),
        "rules": _rules(ctx, model.name, model.rules),
        "lineage_issue": _issue(ctx.lineage, model),
    }


def _identity(
    name: str, zone: str, description: str | None, owners: list[str | None]
) -> dict[str, Any]:
    shown = list(dict.fromkeys(o for o in owners if o))
    return {"name": name, "zone": zone, "description": description, "owners": shown}


def _state(ctx: _Context, table: str, sla: Sla | None, stage: str) -> dict[str, Any]:
    """Freshness, newest outcome and recent outcomes of one table."""
    catalogued = ctx.catalogued
    state = catalogued.freshness.get(table)
    never = "never landed" if stage == "ingest" else "never built"
    updated = None if state is None else state.updated_at
    verdict = never if state is None or (updated is None and not state.late) else state.why
    return {
        "built": table in ctx.objects,
        "freshness": {
            "sla": None if sla is None else sla.model_dump(exclude_none=True),
            "updated_at": _iso(updated),
            "late": bool(state and state.late),
            "verdict": verdict,
        },
        "last_run": catalogued.newest.get(table),
        "history": catalogued.history.get(table, []),
    }


def _shape(ctx: _Context, table: str) -> dict[str, str] | None:
    """The columns and types the warehouse holds for `table`, when it holds it."""
    if ctx.engine is None or table not in ctx.objects:
        return None
    try:
        return ctx.engine.columns(table)
    except HeadwaterError as err:
        ctx.notes.append(f"{table}: its columns could not be read: {err.message}")
        return None


def _spec_shape(ctx: _Context, model: Model) -> dict[str, str]:
    """A model's columns as its SQL, lineage and sidecar say them (it is not built)."""
    found = ctx.lineage.models.get(model.name)
    names = found.outputs if found else [c for c in model.outputs or () if c != "*"]
    declared = model.sidecar.declared
    return {name: declared.get(name) or "" for name in [*names, *declared]}


def _body(
    ctx: _Context,
    table: str,
    shape: Mapping[str, str],
    docs: Mapping[str, str | None],
    keys: set[str],
    *,
    time: str | None = None,
) -> dict[str, Any]:
    """A table's row count and its columns, each with its docs, tags and profile."""
    tags = _tags(ctx, table, shape)
    found = _profile(ctx, table, shape, tags)
    columns = []
    for name, kind in shape.items():
        tag = tags.get(name)
        flags = [] if tag is None else [f"pii:{tag.tag}"]
        flags += ["key"] * (name in keys) + ["time"] * (name == time)
        flags += ["metadata"] * name.startswith(METADATA)
        columns.append(
            {
                "name": name,
                "type": kind.lower() or None,
                "description": docs.get(name) or METADATA_DOCS.get(name),
                "pii": None if tag is None else tag.tag,
                "pii_why": None if tag is None else _why(tag),
                "tags": flags,
                "profile": None if found is None else _column_profile(found.columns[name]),
            }
        )
    return {"rows": None if found is None else found.rows, "columns": columns}


def _tags(ctx: _Context, table: str, shape: Mapping[str, str]) -> dict[str, Tag]:
    """Column → PII tag: a raw table's as its contract declares them (`contract_pii`), a
    model's as `model_pii` says (`UNKNOWN` where lineage cannot tell)."""
    if table in ctx.project.models:
        return ctx.pii.of(table, list(shape))
    declared = ctx.pii.tables.get(table, {})
    return {c: declared[c] for c in shape if c in declared}


def _why(tag: Tag) -> str:
    """Where a column's tag comes from, in column names (never a value)."""
    return f"{tag.shown_path()} ({tag.how})" if len(tag.path) > 1 else tag.how


def _profile(
    ctx: _Context, table: str, shape: Mapping[str, str], tags: Mapping[str, Tag]
) -> Profile | None:
    """The table's profile (one query): bounds only of the user's untagged columns that no
    role of policies.yml masks by name (the site is read by every role)."""
    if ctx.engine is None or table not in ctx.objects or not shape:
        return None
    masked = _masked_by_a_role(ctx.project, table)
    ranged = [c for c in shape if c not in tags and c not in masked and not c.startswith(METADATA)]
    try:
        return profile(ctx.engine, table, shape, ranged=ranged)
    except HeadwaterError as err:
        ctx.notes.append(f"{table}: not profiled: {err.message.splitlines()[0]}")
        return None


def _column_profile(found: ColumnProfile) -> dict[str, Any]:
    bounds = {"min": _bound(found.min), "max": _bound(found.max)} if found.ranged else {}
    return {"nulls": found.nulls, "distinct": found.distinct, **bounds}


def _bound(value: Any) -> Any:
    if isinstance(value, str) and len(value) > BOUND_CHARS:
        return value[: BOUND_CHARS - 1] + "…"
    return value


def _rules(ctx: _Context, table: str, rules: list[Rule]) -> list[dict[str, Any]]:
    out = []
    for rule in rules:
        result = ctx.catalogued.results.get((table, rule.name))
        out.append(
            {
                "name": rule.name,
                "type": rule.type.value,
                "target": rule.target,
                "columns": rule.columns,
                "severity": rule.severity.value,
                "on_fail": rule.action.value,
                "threshold": None if rule.threshold is None else str(rule.threshold),
                "status": "not run" if result is None else "pass" if result["passed"] else "fail",
                "result": result,
            }
        )
    return out


def _issue(found: Lineage, model: Model) -> str | None:
    """Why a model's lineage cannot be traced (or a column of it followed)."""
    for issue in found.issues:
        if issue.where is not None and issue.where.file == model.path:
            return issue.message
    return None


def _zones(project: Project) -> list[str]:
    zones: list[str] = [c.zone for c in project.contracts.values()]
    zones += [project.models[name].zone for name in project.dag.order]
    return sorted(dict.fromkeys(zones), key=lambda z: (z not in ("raw", "seed"), z != "raw"))


def _edges(found: Lineage) -> dict[str, list[Any]]:
    """Column lineage as node names (`table.column`) and edges (upstream → downstream)."""
    nodes: dict[str, int] = {}
    edges = []
    for model, lineage in found.models.items():
        for column, upstream in lineage.columns.items():
            target = nodes.setdefault(f"{model}.{column}", len(nodes))
            for up in upstream:
                edges.append([nodes.setdefault(f"{up.table}.{up.column}", len(nodes)), target])
    return {"nodes": list(nodes), "edges": edges}


# values ------------------------------------------------------------------------------------


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back what it stored without its zone; the catalog keeps UTC."""
    if moment is None:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str | None:
    moment = _utc(moment)
    return None if moment is None else moment.isoformat()


def _scrubbed(value: Any, scrub: Callable[[str], str]) -> Any:
    """Every text of `value` with the project's secret values scrubbed out."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrubbed(v, scrub) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, scrub) for v in value]
    return value


def _masked_by_a_role(project: Project, table: str) -> set[str]:
    """The columns of `table` some role's policies mask or deny by name."""
    if project.policies is None:
        return set()
    return {c for role in project.policies.roles.values() for c in role.column_masks(table)}
