"""The raw zone as the warehouse sees it: one view per raw table over its current files."""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from headwater.contracts import Contract
from headwater.engine.duckdb import DuckDBEngine
from headwater.ingest.conform import arrow_types
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

    A table nothing has landed in yet is an empty table of the contract's declared columns;
    returns why there is no view when the contract declares none (they are inferred when
    data first lands), else None.
    """
    engine = stores.engine
    engine.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for table in (contract.table, f"{contract.table}__quarantine"):
        target = exp.to_table(table)
        # batches a blocking rule failed on stay in the lake, out of the readers' view
        held = sorted(stores.catalog.held(table)) if table == contract.table else []
        version = (stores.lake.version(table) or "none") + "".join(f" -{b}" for b in held)
        existing, comment = _existing(engine, table)
        if existing is not None and comment == version:
            continue  # the view already shows this snapshot: nothing to plan or replace
        files = stores.lake.files(table)
        schema = None if files else stores.lake.schema(table) or _declared(contract, table)
        if not files and schema is None:
            return (
                "has no data yet, and its contract declares no columns (they are inferred "
                "from the first data landed): run `headwater ingest` first"
            )
        if existing is not None:  # DuckDB refuses DROP VIEW on a table, even with IF EXISTS
            engine.execute(exp.Drop(tables=[target.copy()], kind=existing))
        if files:
            select = exp.select(exp.Star()).from_(parquet_scan(files))
            if held:
                select = select.where(
                    exp.not_(
                        exp.column("_hw_batch_id").isin(*[exp.Literal.string(b) for b in held])
                    )
                )
            engine.execute(exp.Create(this=target, kind="VIEW", expression=select))
        else:
            assert schema is not None
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
        kind = "VIEW" if files else "TABLE"
        engine.execute(
            exp.Comment(this=target.copy(), kind=kind, expression=exp.Literal.string(version))
        )
    return None


def _declared(contract: Contract, table: str) -> pa.Schema | None:
    """The shape of a raw table (or its quarantine) nothing has landed in yet: the declared
    columns and the metadata landing adds; None when the contract declares no columns."""
    if table != contract.table:
        columns = dict(QUARANTINE)
    elif contract.columns:
        columns = {**{c.name: c.type for c in contract.columns}, **RAW_METADATA}
    else:
        return None
    return pa.schema(list(zip(columns, arrow_types(list(columns.values())), strict=True)))


def parquet_scan(files: list[str]) -> exp.Expression:
    """`read_parquet([...], union_by_name = true)`: a raw table's files as DuckDB reads them."""
    return exp.func(
        "read_parquet",
        exp.Array(expressions=[exp.Literal.string(f) for f in files]),
        exp.EQ(this=exp.column("union_by_name"), expression=exp.true()),
    )


def _existing(engine: DuckDBEngine, table: str) -> tuple[str | None, str | None]:
    """Whether `table` is a TABLE or a VIEW now, and the snapshot it was made for."""
    schema, name = table.split(".")
    query = (
        "select 'TABLE', comment from duckdb_tables() where schema_name = $s and table_name = $t "
        "union all select 'VIEW', comment from duckdb_views() "
        "where schema_name = $s and view_name = $t"
    )
    rows = engine.rows(query, {"s": schema, "t": name})
    return (str(rows[0][0]), rows[0][1]) if rows else (None, None)
