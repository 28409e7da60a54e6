"""Which columns hold PII: those tagged on contracts and model sidecars, and every model column
whose lineage reaches a tagged one. Rule samples mask them (`quality.rules.mask`).

The small piece of governance rule samples need; masking policies and grants come with their
own issue. Where lineage cannot say, a model column is taken to hold PII (`UNKNOWN`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from headwater.contracts import Contract
from headwater.models.lineage import ROWS, trace
from headwater.project import Project
from headwater.zones.layout import QUARANTINE, RAW_METADATA

UNKNOWN = "unknown"  # a column that may hold PII: its lineage cannot be followed
RECORD = "record"  # a quarantined record as it arrived, with every PII field of it


def contract_pii(contract: Contract) -> dict[str, str]:
    """Column → PII tag of a raw table, as its contract declares them."""
    return {c.name: c.pii for c in contract.columns if c.pii}


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
    """Column → PII tag of each of `columns` (the model's output) that holds PII: tagged in
    its sidecar, or derived from a PII column upstream. Traces only the model's ancestors,
    and nothing when none of them reads PII."""
    order = [m for m in project.dag.order if m in _ancestors(project, name)]
    raw = _raw_pii(project)
    if not any(raw.get(dep) for m in order for dep in project.models[m].depends_on) and not any(
        _declared(project, m) for m in order
    ):
        return {}
    found = trace({m: project.models[m] for m in order}, _raw_schema(project), order=order)
    tags: dict[str, dict[str, str]] = dict(raw)
    opaque: set[str] = set()  # models that cannot be traced: any column may hold PII
    for model in order:
        lineage = found.models.get(model)
        if lineage is None:
            opaque.add(model)
            continue
        tags[model] = {
            column: min(hits)
            for column, upstream in lineage.columns.items()
            if column != ROWS
            and (hits := {_tag(u.table, u.column, tags, opaque) for u in upstream} - {""})
        }
        tags[model].update(_declared(project, model))
    traced = found.models.get(name)
    out: dict[str, str] = {}
    for column in columns:
        if column in tags.get(name, {}):
            out[column] = tags[name][column]
        elif traced is None or column not in traced.columns:  # lineage cannot say
            out[column] = UNKNOWN
    return out


def _tag(table: str, column: str, tags: dict[str, dict[str, str]], opaque: set[str]) -> str:
    """The PII tag of an upstream column ("" for none)."""
    if table in opaque:
        return UNKNOWN
    return tags.get(table, {}).get(column, "")


def _ancestors(project: Project, name: str) -> set[str]:
    seen, stack = {name}, [name]
    while stack:
        for dep in project.models[stack.pop()].depends_on:
            if dep in project.models and dep not in seen:
                seen.add(dep)
                stack.append(dep)
    return seen


def _raw_pii(project: Project) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for contract in project.contracts.values():
        out[contract.table] = contract_pii(contract)
        if contract.history:
            out[contract.history] = out[contract.table]
        if out[contract.table]:
            out[contract.quarantine] = {"_hw_record": RECORD, "_hw_reason": RECORD}
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
    """The PII tags a model's sidecar puts on its columns."""
    docs = project.models[model].sidecar.columns
    return {c: doc.pii for c, doc in docs.items() if not isinstance(doc, str) and doc.pii}
