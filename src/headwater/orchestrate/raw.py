"""The raw zone as the warehouse sees it: one view per raw table over its current files."""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from headwater.contracts import Contract
from headwater.engine.duckdb import DuckDBEngine
from headwater.orchestrate.stores import Stores
from headwater.project import Project


def refresh_raw_views(project: Project, stores: Stores) -> None:
    for contract in project.contracts.values():
        refresh_raw_view(contract, stores)


def refresh_raw_view(contract: Contract, stores: Stores) -> None:
    """Point `raw.<name>` (and its quarantine) at the files of the current Iceberg snapshot."""
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
        kind = "VIEW" if files else "TABLE"
        engine.execute(
            exp.Comment(this=target.copy(), kind=kind, expression=exp.Literal.string(version))
        )


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
