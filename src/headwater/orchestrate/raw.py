"""The raw zone as the warehouse sees it: one view per raw table over its current files."""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from headwater.contracts import Contract
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
        files = stores.lake.files(table)
        engine.execute(exp.Drop(tables=[target.copy()], kind="VIEW", exists=True))
        engine.execute(exp.Drop(tables=[target.copy()], kind="TABLE", exists=True))
        if files:
            scan = exp.func(
                "read_parquet",
                exp.Array(expressions=[exp.Literal.string(f) for f in files]),
                exp.EQ(this=exp.column("union_by_name"), expression=exp.true()),
            )
            select = exp.select(exp.Star()).from_(scan)
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
