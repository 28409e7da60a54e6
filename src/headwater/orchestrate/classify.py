"""PII classification against the warehouse: a sample of each table's untagged columns through
the explainable detectors of `govern/classify.py`.

`headwater classify` proposes tags for whole tables; after a run lands new batches, each
batch is classified again and a proposal that was not there before (its profile changed: a
column that never held emails now does) becomes a run note. What a table last looked like is
kept in the catalog (`classify:<table>`), so an unchanged profile says nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from headwater.engine import Engine
from headwater.engine.dialect import AUTHORED
from headwater.errors import UsageError
from headwater.govern.classify import Proposal, classify
from headwater.govern.pii import project_tags
from headwater.project import Project
from headwater.zones.catalog import Catalog
from headwater.zones.layout import RAW_METADATA

SAMPLE_ROWS = 1000
_SEED = 7  # a repeatable sample: the same data gives the same proposals
_SAMPLE = "SELECT * FROM t USING SAMPLE RESERVOIR (1000 ROWS) REPEATABLE (7)"
FACT = "classify:"


@dataclass(frozen=True)
class Proposed:
    """A proposal for one table's column, with the column's type."""

    table: str
    type: str
    proposal: Proposal


def tables_to_classify(project: Project, table: str | None = None) -> list[str]:
    """The raw tables and models `headwater classify` looks at (one, when named)."""
    known = [c.table for c in project.contracts.values()] + list(project.models)
    if table is None:
        return known
    if table not in known:
        raise UsageError(f"{table!r} is not a raw table or model of the project")
    return [table]


def propose(
    project: Project,
    engine: Engine,
    tables: Iterable[str],
    *,
    rows: int = SAMPLE_ROWS,
    where: exp.Expr | None = None,
) -> list[Proposed]:
    """Proposals for every column of `tables` that no tag covers yet (declared, or followed
    through lineage), from a repeatable sample of `rows` rows (`where`: of these rows)."""
    chosen = list(tables)
    tags = project_tags(project, [t for t in chosen if t in project.models])
    out: list[Proposed] = []
    built = engine.objects()
    for table in chosen:
        if table not in built:
            continue  # not built yet: nothing to look at
        types = engine.columns(table)
        tagged = tags.of(table, list(types))
        open_columns = {c: t for c, t in types.items() if c not in tagged and c not in RAW_METADATA}
        if not open_columns:
            continue
        sample = engine.read(_sample_query(table, list(open_columns), rows, where))
        values = {name: sample.column(name).to_pylist() for name in open_columns}
        for proposal in classify(values, types=open_columns):
            out.append(Proposed(table, open_columns[proposal.column], proposal))
    return out


def _sample_query(table: str, columns: list[str], rows: int, where: exp.Expr | None) -> exp.Query:
    query = sqlglot.parse_one(_SAMPLE, dialect=AUTHORED)
    assert isinstance(query, exp.Select)
    sample = query.find(exp.TableSample)
    assert sample is not None
    sample.set("size", exp.Literal.number(rows))
    sample.set("seed", exp.Literal.number(_SEED))
    source = exp.to_table(table)
    if where is not None:
        inner = exp.select(*[exp.column(c, quoted=True) for c in columns]).from_(source)
        source = inner.where(where).subquery("_hw_rows")  # type: ignore[assignment]
    found = query.find(exp.Table)
    assert found is not None
    found.replace(source)
    return query.select(*[exp.column(c, quoted=True) for c in columns], append=False)


def reclassify_batches(
    project: Project, engine: Engine, catalog: Catalog, batches: dict[str, str]
) -> list[str]:
    """Run notes for the proposals new batches (table → batch id) bring that the table's
    previous batches did not: a column whose values changed what they look like."""
    notes = []
    for table, batch in sorted(batches.items()):
        where = exp.column("_hw_batch_id").eq(exp.Literal.string(batch))
        try:
            proposed = propose(project, engine, [table], where=where)
        except Exception as err:  # a note, never a failed run: what landed stands
            notes.append(f"{table}: the new batch was not classified ({type(err).__name__})")
            continue
        found = {p.proposal.column: p for p in proposed}
        seen = {c: p.proposal.tag for c, p in found.items()}
        before = json.loads(catalog.fact(FACT + table) or "{}")
        if seen != before:
            catalog.put_fact(FACT + table, json.dumps(seen, sort_keys=True))
        for column, new in sorted(found.items()):
            if before.get(column) != new.proposal.tag:
                notes.append(
                    f"{table}.{column} now looks like {new.proposal.tag}: "
                    f"{new.proposal.explain()}; `headwater classify {table} --accept` tags it"
                )
    return notes
