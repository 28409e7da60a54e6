"""What the ingest tests share: a contract for `raw.orders`, and reading a lake table back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from headwater.contracts import Contract
from headwater.zones.lake import Lake


def orders_contract(connector: dict[str, Any], **fields: Any) -> Contract:
    """The contract `orders` (batch, internal, schema 1) reading from `connector`."""
    return Contract.model_validate(
        {
            "name": "orders",
            "source": "shop.orders",
            "schema_version": "1",
            "delivery": "batch",
            "privacy_level": "internal",
            "connector": connector,
            **fields,
        }
    )


def rows(lake: Lake, table: str, columns: str = "*") -> list[tuple[Any, ...]]:
    """Every row of a lake table's current snapshot (DuckDB over its files), sorted."""
    files = lake.files(table)
    if not files:
        return []
    query = f"select {columns} from read_parquet($f, union_by_name=true) order by all"
    return duckdb.sql(query, params={"f": files}).fetchall()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
