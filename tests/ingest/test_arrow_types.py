"""A raw table's Arrow types are the ones DuckDB produces for its declared SQL types, whether
headwater maps them itself (the common ones, without opening a connection) or asks DuckDB."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from headwater.contracts.specs import sql_type
from headwater.ingest import conform

TYPES = [
    "BIGINT",
    "INTEGER",
    "INT",
    "SMALLINT",
    "TINYINT",
    "DOUBLE",
    "FLOAT",
    "REAL",
    "BOOLEAN",
    "VARCHAR",
    "TEXT",
    "STRING",
    "DATE",
    "TIMESTAMP",
    "TIMESTAMPTZ",
    "TIMESTAMP WITH TIME ZONE",
    "DECIMAL(10,2)",
    "NUMERIC(38, 4)",
    "DECIMAL",  # DuckDB's default precision: asked, not guessed
    'STRUCT(a INT, "B c" VARCHAR[], d STRUCT(e DATE))',
    "STRUCT(sku VARCHAR, qty INTEGER)[]",
    "VARCHAR[][]",
    "INT[3]",  # a fixed-size list
    "BLOB",
    "TIME",
    "INTERVAL",
    "UUID",
    "HUGEINT",
    "UBIGINT",
    "MAP(VARCHAR, INT)",
    "TIMESTAMP_MS",
]


def duckdb_types(types: list[str]) -> list[pa.DataType]:
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    listed = ", ".join(f"CAST(NULL AS {t}) AS c{i}" for i, t in enumerate(types))
    return list(conn.sql(f"SELECT {listed} LIMIT 0").to_arrow_table().schema.types)


@pytest.mark.parametrize("declared", TYPES)
def test_each_declared_type_lands_as_duckdb_produces_it(declared: str) -> None:
    assert conform.arrow_types([declared]) == duckdb_types([declared])


def test_the_common_types_are_mapped_without_a_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refused() -> None:
        raise AssertionError("a connection was opened")

    monkeypatch.setattr(conform, "scratch", refused)
    common = ["BIGINT", "TIMESTAMPTZ", "DECIMAL(10,2)", "STRUCT(a INT, b VARCHAR[])[]"]
    assert conform.arrow_types(common) == duckdb_types(common)
    mapped = [conform._arrow_type(sql_type(t)) for t in TYPES]
    assert sum(t is not None for t in mapped) >= 20
