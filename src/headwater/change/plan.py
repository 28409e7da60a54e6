"""`headwater plan`: what applying the project would change in an environment, and how much
each change matters, before anything is built.

Each model is compared with the version the environment points at (its fingerprint, the
normalized query and docs hash recorded with it):

    added          no version yet: built
    removed        in the environment, no longer in the project: its view is dropped
                   (destructive; its table is kept, as every version's is)
    breaking       a column removed or computed differently, or a changed filter, join,
                   grouping, aggregation, ordering or limit: built, and what reads it too
    non-breaking   only columns added: built
    indirect       its own query is the same, but something it reads changes: built
    metadata-only  only docs, owners or tags changed: recorded, nothing rebuilt
    unchanged      reused

SQLMesh's categorizer makes the same breaking/non-breaking cut from the query alone; the
reasons here name the clause or column, so a reviewer sees why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import sqlglot
from sqlglot import exp

import headwater.engine.dialect as authored
from headwater.change.contracts import ContractChange, compare
from headwater.change.versions import PROD, fingerprints
from headwater.models import Model
from headwater.project import Project
from headwater.zones.catalog import Catalog, ModelVersion
from headwater.zones.lake import Lake


class Change(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    BREAKING = "breaking"
    NON_BREAKING = "non-breaking"
    INDIRECT = "indirect"
    METADATA = "metadata-only"
    UNCHANGED = "unchanged"

    @property
    def builds(self) -> bool:
        return self in (Change.ADDED, Change.BREAKING, Change.NON_BREAKING, Change.INDIRECT)


# the parts of a SELECT besides its columns, as a reviewer names them
CLAUSES = {
    "with": "common table expressions",
    "from": "source table",
    "joins": "joins",
    "laterals": "lateral joins",
    "where": "filter (where)",
    "group": "grain (group by)",
    "having": "filter on aggregates (having)",
    "qualify": "filter on windows (qualify)",
    "distinct": "distinct",
    "order": "ordering",
    "limit": "limit",
    "offset": "offset",
}


@dataclass(frozen=True)
class ModelPlan:
    name: str
    change: Change
    reasons: list[str] = field(default_factory=list)
    downstream: list[str] = field(default_factory=list)  # models reading it, at any depth

    @property
    def destructive(self) -> bool:
        """Whether readers lose something: a model removed, or a column removed or changed."""
        return self.change is Change.REMOVED or any(
            r.startswith(("column ", "its query")) and "added" not in r for r in self.reasons
        )


@dataclass(frozen=True)
class Plan:
    env: str
    models: list[ModelPlan]
    contracts: list[ContractChange] = field(default_factory=list)

    @property
    def refused(self) -> list[ContractChange]:
        """Breaking contract changes without a new schema_version: nothing may land."""
        return [c for c in self.contracts if c.refused]

    @property
    def to_build(self) -> list[str]:
        return [m.name for m in self.models if m.change.builds]

    @property
    def reused(self) -> list[str]:
        return [m.name for m in self.models if m.change in (Change.UNCHANGED, Change.METADATA)]

    def of(self, change: Change) -> list[ModelPlan]:
        return [m for m in self.models if m.change is change]


def plan(project: Project, catalog: Catalog, env: str = PROD, lake: Lake | None = None) -> Plan:
    """Compare `project` with what `env` points at (and, given the lake, each contract with
    what its raw table recorded)."""
    # a new environment starts as a copy of prod's pointers: compare with those
    pointers = catalog.pointers(env) or (catalog.pointers(PROD) if env != PROD else {})
    versions = {(v.name, v.fingerprint): v for v in catalog.model_versions().values()}
    by_physical = {v.physical: v for v in versions.values()}
    readers = _readers(project)
    fps = fingerprints(project)
    out: list[ModelPlan] = []
    for name in project.dag.order:
        model = project.models[name]
        published = by_physical.get(pointers.get(name, ""))
        change, reasons = _compare(model, fps[name], published)
        out.append(ModelPlan(name, change, reasons, readers.get(name, [])))
    for name in sorted(set(pointers) - set(project.models)):
        reasons = ["no longer in the project: its view is dropped (its table is kept)"]
        out.append(ModelPlan(name, Change.REMOVED, reasons))
    _indirect(out, project)
    contracts = [] if lake is None else [compare(c, lake) for c in project.raw_tables.values()]
    changed = [c for c in contracts if c is not None and (c.breaking or c.compatible)]
    return Plan(env, out, changed)


def _compare(model: Model, fp: str, published: ModelVersion | None) -> tuple[Change, list[str]]:
    if published is None:
        return Change.ADDED, ["not in the environment yet"]
    forward = model.config.forward_only and published.fingerprint == fp
    if forward and published.sql is not None and published.sql != model.normalized_sql:
        change, reasons = classify(published.sql, model.normalized_sql)
        return change, [*reasons, *forward_only(reasons)]
    if published.fingerprint == fp:
        if published.meta is not None and published.meta != model.meta_key:
            return Change.METADATA, ["its docs, owner or tags changed; nothing is rebuilt"]
        return Change.UNCHANGED, []
    if published.kind != model.config.kind.value:
        return Change.BREAKING, [f"its kind changed from {published.kind} to {model.config.kind}"]
    if published.sql is None:
        return Change.BREAKING, [
            "its published version predates plans (its query was not recorded): treated as breaking"
        ]
    if published.sql == model.normalized_sql:
        return Change.INDIRECT, []  # filled in below: what it reads changed
    return classify(published.sql, model.normalized_sql)


def forward_only(reasons: list[str]) -> list[str]:
    """What applying a forward-only model's change does, given why it changed."""
    added = [
        r.removeprefix("column ").removesuffix(" added") for r in reasons if r.endswith(" added")
    ]
    out = [
        "forward-only: applied to its table in place"
        + (f" (ALTER TABLE ADD COLUMN {', '.join(added)})" if added else "")
        + "; the intervals already written are kept as the old query wrote them, only new "
        "ones use the new query"
    ]
    if any("computed differently" in r or "removed" in r for r in reasons):
        out.append(
            "a removed column stays in the table (NULL from now on); a retyped one cannot "
            "change in place: `headwater run --full-refresh -s <model>` rebuilds it whole"
        )
    return out


def classify(old_sql: str, new_sql: str) -> tuple[Change, list[str]]:
    """Breaking or non-breaking, with why, for a query that changed from `old_sql` to
    `new_sql` (both normalized, in the authored dialect)."""
    if not old_sql or not new_sql:  # a Python model: its code changed
        return Change.BREAKING, ["its Python code changed"]
    old = sqlglot.parse_one(old_sql, read=authored.AUTHORED)
    new = sqlglot.parse_one(new_sql, read=authored.AUTHORED)
    if not isinstance(old, exp.Select) or not isinstance(new, exp.Select):
        return Change.BREAKING, ["its query changed (a set operation or other non-SELECT)"]
    reasons = [
        f"its {label} changed"
        for key, label in CLAUSES.items()
        if _part(old, key) != _part(new, key)
    ]
    before, after = _columns(old), _columns(new)
    if before is None or after is None:
        return Change.BREAKING, [*reasons, "its query changed (a column without a name)"]
    reasons += [f"column {c} removed" for c in before if c not in after]
    reasons += [
        f"column {c} computed differently: {after[c]}"
        for c in before
        if c in after and before[c] != after[c]
    ]
    added = [f"column {c} added" for c in after if c not in before]
    if reasons:
        return Change.BREAKING, reasons + added
    if list(after)[: len(before)] != list(before):
        return Change.BREAKING, ["its columns were reordered", *added]
    return Change.NON_BREAKING, added or ["its query changed without changing its result"]


def _part(select: exp.Select, key: str) -> str:
    value = select.args.get(key)
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(v.sql(dialect=authored.AUTHORED) for v in value)
    return str(value.sql(dialect=authored.AUTHORED))


def _columns(select: exp.Select) -> dict[str, str] | None:
    """Output name → its expression, in order; None if one has no name."""
    out: dict[str, str] = {}
    for projection in select.expressions:
        name = projection.alias_or_name
        if not name:
            return None
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        out[name] = inner.sql(dialect=authored.AUTHORED)
    return out


def _readers(project: Project) -> dict[str, list[str]]:
    """Model → the models that read it, at any depth, in DAG order."""
    out: dict[str, set[str]] = {}
    for name in reversed(project.dag.order):
        for dep in project.models[name].depends_on:
            out.setdefault(dep, set()).update({name, *out.get(name, set())})
    order = {n: i for i, n in enumerate(project.dag.order)}
    return {n: sorted(found, key=order.__getitem__) for n, found in out.items()}


def _indirect(models: list[ModelPlan], project: Project) -> None:
    """Say why a model whose own query is unchanged is built: what it reads changes."""
    built = {m.name for m in models if m.change.builds}
    for i, m in enumerate(models):
        if m.change is Change.INDIRECT:
            reads = [d for d in project.models[m.name].depends_on if d in built]
            why = f"it reads {', '.join(reads)}, which change" if reads else "its inputs change"
            models[i] = ModelPlan(m.name, m.change, [why], m.downstream)
