"""Which columns hold PII, and why: tags declared on contracts and model sidecars (`pii:`),
followed through column lineage into every column built from a tagged one.

A column keeps the tag of each upstream value it passes on. A hash or a short prefix or suffix
of a tagged value (`sha256(email)`, `right(phone, 4)`) makes it `pseudonymous`; a count or sum
(`count(distinct email)`) drops the tag (`models/lineage.py` says which). A sidecar may declare
a column's tag itself, or `pii: none` to say a column holds none whatever its lineage. Where
lineage cannot say (a Python model, SQL sqlglot cannot trace) a column below a tagged one is
taken to hold PII (`UNKNOWN`). A quarantined record holds every PII field of its contract
(`RECORD`).

Rule samples mask tagged columns (`quality.rules.mask`); policies mask them for roles
(`govern/masking.py`); the gate refuses a public model that would show one (`govern/gate.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from headwater.contracts import Contract
from headwater.models.lineage import DROPPED, PSEUDONYMOUS, ROWS, Effect, Lineage, Upstream, trace
from headwater.project import Project
from headwater.zones.layout import QUARANTINE, RAW_METADATA

UNKNOWN = "unknown"  # a column that may hold PII: its lineage cannot be followed
RECORD = "record"  # a quarantined record as it arrived, with every PII field of it
NONE = "none"  # `pii: none` in a sidecar: the column holds no PII, whatever its lineage
__all__ = ["NONE", "PSEUDONYMOUS", "RECORD", "UNKNOWN", "Tag", "Tags", "project_tags"]


@dataclass(frozen=True)
class Tag:
    """A column's PII tag and where it comes from: `path` runs from the column that declares
    it to this one (`raw.customers.email → clean.customers.email → marts.leads.contact`);
    `how` says what the last step did; `covers` are a quarantined record's tags."""

    tag: str
    path: tuple[str, ...]
    how: str
    covers: tuple[str, ...] = ()

    @property
    def identifying(self) -> bool:
        """Whether the column shows the person's value (a pseudonymous one does not)."""
        return self.tag != PSEUDONYMOUS

    def shown_path(self) -> str:
        return " → ".join(self.path)


@dataclass(frozen=True)
class Step:
    """How one upstream column's tag fared in a column: kept, made pseudonymous or dropped."""

    upstream: str
    tag: Tag
    effect: Effect | None  # None: passed on as it is


@dataclass
class Tags:
    """The tags of every column of the tables traced, and the lineage they followed."""

    tables: dict[str, dict[str, Tag]]
    lineage: Lineage
    opaque: set[str] = field(default_factory=set)  # models lineage cannot follow
    tainted: set[str] = field(default_factory=set)  # tables at or below a tagged column

    def of(self, table: str, columns: Sequence[str] = ()) -> dict[str, Tag]:
        """Column → tag of `table`, and for the `columns` lineage cannot say, `UNKNOWN` when
        anything above the table holds PII."""
        found = dict(self.tables.get(table, {}))
        if table not in self.opaque and table not in self.lineage.models:
            return found  # a raw table: its contract says it all
        traced = None if table in self.opaque else self.lineage.models.get(table)
        if table in self.tainted and traced is None:
            for column in columns:
                found.setdefault(column, Tag(UNKNOWN, (f"{table}.{column}",), _OPAQUE))
        elif traced is not None and table in self.tainted:
            for column in columns:
                if column not in traced.columns and column not in found:
                    found[column] = Tag(UNKNOWN, (f"{table}.{column}",), _UNTRACED)
        return found

    def steps(self, table: str, column: str) -> list[Step]:
        """Each tagged upstream column of `table.column`, and what the column did to it."""
        traced = self.lineage.models.get(table)
        if traced is None:
            return []
        effects = traced.effects.get(column, {})
        out = []
        for upstream in traced.columns.get(column, ()):
            tag = self.tables.get(upstream.table, {}).get(upstream.column)
            if tag is not None:
                out.append(Step(str(upstream), tag, effects.get(upstream)))
        return out


_OPAQUE = "lineage cannot follow this model (Python, or SQL that cannot be traced)"
_UNTRACED = "lineage cannot follow this column"


def contract_pii(contract: Contract) -> dict[str, str]:
    """Column → PII tag of a raw table, as its contract declares them."""
    return {c.name: c.pii for c in contract.columns if c.pii}


def project_tags(project: Project, names: Iterable[str] | None = None) -> Tags:
    """The tags of the raw tables and of `names` (every model when None) and their ancestors,
    traced through lineage; nothing is traced when none of them reads a tagged column."""
    wanted = set(project.models) if names is None else _ancestors(project, names)
    order = [m for m in project.dag.order if m in wanted]
    tables = _raw_tags(project)
    tainted = {t for t, tags in tables.items() if tags}
    if not any(dep in tainted for m in order for dep in project.models[m].depends_on) and not any(
        _declared(project, m) for m in order
    ):
        return Tags(tables, Lineage(models={}))
    found = trace({m: project.models[m] for m in order}, _raw_schema(project), order=order)
    tags = Tags(tables, found, tainted=tainted)
    for model in order:
        _propagate(project, model, tags)
    return tags


def _propagate(project: Project, model: str, tags: Tags) -> None:
    lineage = tags.lineage.models.get(model)
    if project.models[model].function is not None:  # Python: its SQL is a stand-in
        lineage = None
    if any(dep in tags.tainted for dep in project.models[model].depends_on):
        tags.tainted.add(model)
    own: dict[str, Tag] = {}
    if lineage is None:
        tags.opaque.add(model)
    else:
        for column, upstream in lineage.columns.items():
            effects = lineage.effects.get(column, {})
            tag = None if column == ROWS else _inherited(model, column, upstream, effects, tags)
            if tag is not None:
                own[column] = tag
    for column, declared in _declared(project, model).items():
        own.pop(column, None)
        if declared != NONE:
            own[column] = Tag(declared, (f"{model}.{column}",), _sidecar(project, model))
    tags.tables[model] = own
    if own:
        tags.tainted.add(model)


def _inherited(
    model: str,
    column: str,
    upstream: Iterable[Upstream],
    effects: Mapping[Upstream, Effect],
    tags: Tags,
) -> Tag | None:
    """The tag a column takes from its upstream: an identifying one before a pseudonymous
    one, a named tag before `UNKNOWN`; the first by name among equals."""
    here = f"{model}.{column}"
    found: list[Tag] = []
    for up in upstream:
        effect = effects.get(up)
        if up.table in tags.opaque and up.table in tags.tainted:
            source = Tag(UNKNOWN, (str(up),), _OPAQUE)
        else:
            source = tags.tables.get(up.table, {}).get(up.column)  # type: ignore[assignment]
        if source is None or (effect is not None and effect.kind == DROPPED):
            continue
        if effect is not None or not source.identifying:
            how = f"made pseudonymous by {effect.via}" if effect else f"from {up}"
            found.append(Tag(PSEUDONYMOUS, (*source.path, here), how))
        else:
            found.append(Tag(source.tag, (*source.path, here), f"from {up}", source.covers))
    if not found:
        return None
    return min(found, key=lambda t: (not t.identifying, t.tag == UNKNOWN, t.tag, t.path))


def _sidecar(project: Project, model: str) -> str:
    where = project.models[model].sidecar_path or project.models[model].path
    return f"declared in {where}"


class ModelPii(Mapping[str, str]):
    """Column → PII tag of one model's output, traced when first read (a rule's samples are
    masked only when the rule fails, so a run that fails none traces nothing)."""

    def __init__(self, project: Project, name: str, columns: Sequence[str]):
        self._project, self._name, self._columns = project, name, list(columns)
        self._found: dict[str, str] | None = None

    def __getitem__(self, column: str) -> str:
        return self._tags()[column]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tags())

    def __len__(self) -> int:
        return len(self._tags())

    def _tags(self) -> dict[str, str]:
        if self._found is None:
            self._found = model_pii(self._project, self._name, self._columns)
        return self._found


def model_pii(project: Project, name: str, columns: Sequence[str]) -> dict[str, str]:
    """Column → PII tag of each of `columns` (the model's output) that holds PII, pseudonymous
    ones included. Traces only the model's ancestors."""
    tags = project_tags(project, [name]).of(name, columns)
    return {c: tags[c].tag for c in columns if c in tags}


def _ancestors(project: Project, names: Iterable[str]) -> set[str]:
    seen = {n for n in names if n in project.models}
    stack = list(seen)
    while stack:
        for dep in project.models[stack.pop()].depends_on:
            if dep in project.models and dep not in seen:
                seen.add(dep)
                stack.append(dep)
    return seen


def _raw_tags(project: Project) -> dict[str, dict[str, Tag]]:
    out: dict[str, dict[str, Tag]] = {}
    for contract in project.contracts.values():
        where = f"declared in {project.contract_file(contract)}"
        own = {
            column: Tag(tag, (f"{contract.table}.{column}",), where)
            for column, tag in contract_pii(contract).items()
        }
        out[contract.table] = own
        if contract.history:
            out[contract.history] = own
        if own:
            covers = tuple(sorted(set(contract_pii(contract).values())))
            out[contract.quarantine] = {
                column: Tag(RECORD, (f"{contract.quarantine}.{column}",), where, covers)
                for column in ("_hw_record", "_hw_reason")
            }
    return out


def _raw_schema(project: Project) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for contract in project.contracts.values():
        out[contract.table] = {**{c.name: c.type for c in contract.columns}, **RAW_METADATA}
        out[contract.quarantine] = dict(QUARANTINE)
        if contract.history:
            out[contract.history] = out[contract.table]
    return out


def _declared(project: Project, model: str) -> dict[str, str]:
    """The PII tags a model's sidecar puts on its columns (`NONE`: declared free of PII)."""
    docs = project.models[model].sidecar.columns
    return {c: doc.pii for c, doc in docs.items() if not isinstance(doc, str) and doc.pii}
