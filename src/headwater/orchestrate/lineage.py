"""Column lineage of a loaded project: traced in DAG order, kept in the catalog, walked as chains.

Recording is cheap enough for every build: a model whose SQL and upstream columns are unchanged
reuses the lineage the catalog holds, so only what changed is traced again.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from headwater.errors import UsageError
from headwater.models.lineage import ROWS, Lineage, ModelLineage, Upstream, trace
from headwater.orchestrate.stores import pinned_columns, project_catalog_url
from headwater.project import Project
from headwater.zones.catalog import Catalog, LineageRecord
from headwater.zones.layout import QUARANTINE, RAW_METADATA


@dataclass
class ColumnNode:
    """One column in a lineage chain; `column` is `ROWS` for a table's rows."""

    table: str
    column: str
    raw: bool
    children: list[ColumnNode] = field(default_factory=list)
    repeated: bool = False  # its chain is shown in full elsewhere in the tree

    @property
    def rows(self) -> bool:
        return self.column == ROWS

    def walk(self) -> Iterator[ColumnNode]:
        yield self
        for child in self.children:
            yield from child.walk()


def raw_schema(
    project: Project, pinned: dict[str, dict[str, str]] | None = None
) -> dict[str, dict[str, str]]:
    """Columns of every raw table and its quarantine, as models read them: the contract's
    columns (or those `pinned` when it first landed), then the metadata columns landing adds."""
    out: dict[str, dict[str, str]] = {}
    for contract in project.contracts.values():
        declared = {c.name: c.type for c in contract.columns}
        declared = declared or (pinned or {}).get(contract.table, {})
        out[contract.table] = {**declared, **RAW_METADATA}
        out[contract.quarantine] = dict(QUARANTINE)
        if contract.history:
            out[contract.history] = out[contract.table]
    return out


def record_lineage(
    project: Project, catalog: Catalog, pinned: dict[str, dict[str, str]] | None = None
) -> Lineage:
    """Trace the column lineage of every model and store what changed in the catalog
    (`pinned`: the columns of landed tables whose contracts declare none).

    Models that are gone, or whose lineage cannot be traced now (see `Lineage.issues`), keep
    nothing in the catalog, so no chain shows stale columns.
    """
    stored = _stored(catalog.column_lineage())
    schema = raw_schema(project, pinned)
    found = trace(project.models, schema, order=project.dag.order, known=stored)
    changed = [name for name in found.traced if name in found.models]
    stale = [name for name in stored if name not in found.models]
    if changed or stale:
        records = [r for name in changed for r in _records(found.models[name])]
        catalog.replace_column_lineage([*changed, *stale], records)
    return found


def lineage_of(
    project: Project, target: str, *, downstream: bool = False
) -> tuple[ColumnNode, Lineage]:
    """Record the project's lineage, then follow `target` (`TABLE.COLUMN`) to raw columns
    (upstream) or out to every column that derives from it (downstream).

    Raises:
        UsageError: `target` names no known table or column (with a did-you-mean).
    """
    url = project_catalog_url(project)
    catalog = Catalog(url)
    try:
        pinned = pinned_columns(project, url)
        found = record_lineage(project, catalog, pinned)
        table, column = _target(target, project, found, pinned)
        return column_tree(catalog, table, column, project, downstream=downstream), found
    finally:
        catalog.close()


def column_tree(
    catalog: Catalog, table: str, column: str, project: Project, *, downstream: bool = False
) -> ColumnNode:
    """The chain of `table.column` as the catalog stores it, each column expanded once."""
    raw = set(raw_schema(project))
    hops = _hops(catalog.column_lineage(), downstream=downstream)
    root = ColumnNode(table, column, raw=table in raw)
    expanded: dict[tuple[str, str], bool] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        key = (node.table, node.column)
        if key in expanded:
            node.repeated = expanded[key]
            continue
        node.children = [ColumnNode(t, c, raw=t in raw) for t, c in hops.get(key, [])]
        expanded[key] = bool(node.children)
        stack.extend(reversed(node.children))
    return root


def _hops(
    records: Iterable[LineageRecord], *, downstream: bool
) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """One read of the catalog as an index: column → the columns one hop up (or down)."""
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for r in records:
        if r.upstream_table is None or r.upstream_column is None:
            continue
        model, upstream = (r.model, r.output_column), (r.upstream_table, r.upstream_column)
        source, target = (upstream, model) if downstream else (model, upstream)
        out.setdefault(source, []).append(target)
    return {key: sorted(set(found)) for key, found in out.items()}


def _target(
    target: str, project: Project, found: Lineage, pinned: dict[str, dict[str, str]]
) -> tuple[str, str]:
    """`marts.events_daily.event_count` → (`marts.events_daily`, `event_count`), checked."""
    schema = raw_schema(project, pinned)
    columns: dict[str, list[str]] = {t: list(cols) for t, cols in schema.items()}
    columns.update({name: m.outputs for name, m in found.models.items()})
    if target in columns or target in project.models:
        raise UsageError(
            f"{target!r} is a table; name one of its columns",
            hint=f"e.g. {target}.{(columns.get(target) or ['<column>'])[0]}",
        )
    table, _, column = target.rpartition(".")
    if not table:
        raise UsageError(
            f"{target!r} is not TABLE.COLUMN", hint="e.g. marts.events_daily.event_count"
        )
    if table in project.models and table not in found.models:
        raise UsageError(
            f"the lineage of {table!r} cannot be traced",
            hint=f"see the warning about {project.models[table].path}",
        )
    if table not in columns:
        raise UsageError(f"unknown table {table!r}", hint=_did_you_mean(table, columns))
    if column != ROWS and column not in columns[table]:
        close = _closest(column, columns[table])
        hint = (
            f"did you mean {table}.{close}?"
            if close
            else f"its columns: {', '.join(columns[table])}"
        )
        raise UsageError(f"{table!r} has no column {column!r}", hint=hint)
    return table, column


def _did_you_mean(table: str, known: Iterable[str]) -> str:
    short = table.rsplit(".", 1)[-1]
    same = sorted(k for k in known if k.rsplit(".", 1)[-1] == short)
    close = same[0] if same else _closest(table, known)
    if close:
        return f"did you mean {close!r}?"
    return "a table is a model (zone.name) or a raw table (raw.<contract>)"


def _closest(name: str, options: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(name, sorted(options), n=1, cutoff=0.6)
    return found[0] if found else None


def _stored(records: Iterable[LineageRecord]) -> dict[str, ModelLineage]:
    """What the catalog holds, back as lineage by model (a column in its output position)."""
    by_model: dict[str, tuple[str, dict[str, list[Upstream]]]] = {}
    for r in sorted(records, key=lambda r: (r.model, r.position)):
        _, columns = by_model.setdefault(r.model, (r.lineage_key, {}))
        ups = columns.setdefault(r.output_column, [])
        if r.upstream_table is not None and r.upstream_column is not None:
            ups.append(Upstream(r.upstream_table, r.upstream_column))
    return {
        name: ModelLineage(name, key, {c: tuple(sorted(u)) for c, u in columns.items()})
        for name, (key, columns) in by_model.items()
    }


def _records(lineage: ModelLineage) -> list[LineageRecord]:
    out = []
    for position, (column, upstream) in enumerate(lineage.columns.items()):
        # a column with no upstream at all (`select 1 as x`) is kept, with a NULL upstream
        pairs: list[tuple[str | None, str | None]] = [(u.table, u.column) for u in upstream]
        for table, up_column in pairs or [(None, None)]:
            out.append(
                LineageRecord(
                    model=lineage.model,
                    output_column=column,
                    position=position,
                    upstream_table=table,
                    upstream_column=up_column,
                    lineage_key=lineage.key,
                )
            )
    return out
