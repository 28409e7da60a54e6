"""The raw zone as the warehouse sees it: one view per raw table over its current files."""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from headwater.contracts import Contract, Load
from headwater.engine import Engine
from headwater.engine.base import FILE_INDEX, FILE_ROW, ObjectKind
from headwater.orchestrate.stores import Stores
from headwater.project import Project
from headwater.zones.layout import QUARANTINE, RAW_METADATA


def refresh_raw_views(project: Project, stores: Stores) -> dict[str, str]:
    """Refresh every raw view; returns the raw tables no view can show yet, with why."""
    missing = {}
    for contract in project.contracts.values():
        why = refresh_raw_view(contract, stores)
        if why:
            missing[contract.table] = why
    return missing


def refresh_raw_view(contract: Contract, stores: Stores) -> str | None:
    """Point `raw.<name>` (and its quarantine) at the files of the current Iceberg snapshot.

    What the view shows follows the contract's `load:` — every batch (append), the latest
    batch (snapshot) or each key's newest version (merge); the latter two get a
    `raw.<name>__history` view of every batch. Batches held by a blocking rule (or
    discarded) are never shown. A table nothing has landed in yet is an empty table of the
    contract's declared columns; returns why there is no view when the contract declares none
    (they are inferred when data first lands), else None.
    """
    engine = stores.engine
    engine.execute(exp.Create(this=exp.to_identifier(contract.zone), kind="SCHEMA", exists=True))
    # batches a blocking rule failed on stay in the lake, out of the readers' view (those held
    # awaiting a decision, and those an operator discarded)
    held = sorted(stores.catalog.withheld(contract.table))
    landed: list[str] | None = None  # the shown batches in landing order, read when needed
    changed = False
    for table in contract.views:
        source = contract.table if table == contract.history else table
        kept = held if source == contract.table else []
        version = (stores.lake.version(source) or "none") + "".join(f" -{b}" for b in kept)
        if contract.history:  # what they show depends on the batches of the table too
            version += f" {stores.lake.version(contract.table)} {_shape(contract)}"
        stored = engine.stored(table)
        existing = stored.kind if stored else None
        # the comment names the snapshot a view shows; an engine that keeps none refreshes
        if engine.capabilities.comments and stored is not None and stored.comment == version:
            continue  # the view already shows this snapshot: nothing to plan or replace
        changed = True
        files = stores.lake.files(source)
        schema = None if files else stores.lake.schema(source) or _declared(contract, table)
        if not files and schema is None:
            return (
                "has no data yet, and its contract declares no columns (they are inferred "
                "from the first data landed): run `headwater ingest` first"
            )
        # a view replaced in place (one commit on Spark, not two); a table dropped first
        # (DuckDB refuses DROP VIEW on a table, even with IF EXISTS)
        replace = existing is ObjectKind.VIEW and bool(files)
        if existing is not None and not replace:
            engine.execute(exp.Drop(tables=[exp.to_table(table)], kind=existing.value))
        if files:
            if landed is None and contract.history:
                landed = _landed(contract, stores, held)
            select = _shown(contract, table, engine, files, kept, landed or [])
            engine.execute(
                exp.Create(
                    this=exp.to_table(table), kind="VIEW", expression=select, replace=replace
                )
            )
        else:
            assert schema is not None
            engine.register("_hw_empty", schema.empty_table())
            try:
                engine.execute(
                    exp.Create(
                        this=exp.to_table(table),
                        kind="TABLE",
                        expression=exp.select(exp.Star()).from_("_hw_empty"),
                    )
                )
            finally:
                engine.unregister("_hw_empty")
        if engine.capabilities.comments:
            kind = "VIEW" if files else "TABLE"
            comment = exp.Literal.string(version)
            engine.execute(exp.Comment(this=exp.to_table(table), kind=kind, expression=comment))
    if changed:  # a contract back on append has had its views made again
        _drop_stale_history(contract, engine)
    return None


def _shape(contract: Contract) -> str:
    """What decides a snapshot or merge view besides the files: a change rebuilds it."""
    return f"{contract.load.value}({','.join(contract.primary_key)};{contract.newest_by or ''})"


def _landed(contract: Contract, stores: Stores, held: list[str]) -> list[str]:
    """The batches of a raw table the views may show, oldest first."""
    snapshots = stores.lake.snapshots(contract.table)
    return [s.batch_id for s in snapshots if s.batch_id and s.batch_id not in held]


def _shown(
    contract: Contract,
    table: str,
    engine: Engine,
    files: list[str],
    held: list[str],
    landed: list[str],
) -> exp.Select:
    """What the view of `table` selects: every batch not held; for `load: snapshot` only
    the latest (and its quarantine); for `load: merge` each key's newest version."""
    batch = exp.column("_hw_batch_id")
    if table == contract.table and contract.load is Load.MERGE:
        return _newest_per_key(contract, engine, files, held, landed)
    select = exp.select(exp.Star()).from_(engine.scan(files))
    if held:
        select = select.where(exp.not_(batch.isin(*[exp.Literal.string(b) for b in held])))
    if contract.load is Load.SNAPSHOT and table != contract.history:
        latest = exp.Literal.string(landed[-1]) if landed else exp.null()
        select = select.where(exp.EQ(this=batch.copy(), expression=latest))
    return select


def _newest_per_key(
    contract: Contract, engine: Engine, files: list[str], held: list[str], landed: list[str]
) -> exp.Select:
    """Each key's newest version: highest `newest_by` (when set), then landed last — so a
    late-arriving older version never wins."""
    batch = exp.Case(
        this=exp.column("_hw_batch_id"),
        ifs=[
            exp.If(this=exp.Literal.string(b), true=exp.Literal.number(i))
            for i, b in enumerate(landed, 1)
        ],
    )
    order = [
        exp.Ordered(this=batch, desc=True),
        exp.Ordered(this=exp.column(FILE_INDEX), desc=True),
        exp.Ordered(this=exp.column(FILE_ROW), desc=True),
    ]
    if contract.newest_by:
        newest = exp.column(contract.newest_by, quoted=True)
        order.insert(0, exp.Ordered(this=newest, desc=True, nulls_first=False))
    rank = exp.Window(
        this=exp.RowNumber(),
        partition_by=[exp.column(k, quoted=True) for k in contract.primary_key],
        order=exp.Order(expressions=order),
    )
    inner = exp.select(exp.Star()).from_(engine.scan(files, positions=True))
    shown = [b for b in landed if b not in held]
    inner = inner.where(exp.column("_hw_batch_id").isin(*[exp.Literal.string(b) for b in shown]))
    inner = inner.qualify(exp.EQ(this=rank, expression=exp.Literal.number(1)))
    hidden = [exp.column(FILE_INDEX), exp.column(FILE_ROW)]
    return exp.select(exp.Star(except_=hidden)).from_(inner.subquery("_hw_newest"))


def _drop_stale_history(contract: Contract, engine: Engine) -> None:
    """A contract back on `load: append` has no history view."""
    if contract.history:
        return
    stale = f"{contract.table}__history"
    stored = engine.stored(stale)
    if stored is not None:
        engine.execute(exp.Drop(tables=[exp.to_table(stale)], kind=stored.kind.value))


def _declared(contract: Contract, table: str) -> pa.Schema | None:
    """The shape of a raw table (or its quarantine) nothing has landed in yet: the declared
    columns and the metadata landing adds; None when the contract declares no columns."""
    if table == contract.quarantine:
        columns = dict(QUARANTINE)
    elif contract.columns:
        columns = {**{c.name: c.type for c in contract.columns}, **RAW_METADATA}
    else:
        return None
    from headwater.ingest.conform import arrow_types

    return pa.schema(list(zip(columns, arrow_types(list(columns.values())), strict=True)))
