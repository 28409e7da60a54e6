"""One timed contender of the ingest benchmark, in a fresh process: prints one JSON line.

    measure.py duckdb-parquet DATA_DIR OUT_DIR   read_json of the files, COPY to Parquet
    measure.py duckdb-table DATA_DIR OUT_DIR     read_json of the files into an in-memory table
    measure.py headwater-jsonl DATA_DIR OUT_DIR  ingest() with a files connector, into raw
    measure.py httpx-arrow URL OUT_DIR           httpx page loop, from_pylist, ParquetWriter
    measure.py headwater-http URL OUT_DIR        ingest() with an http connector, into raw

The first three read DATA_DIR/jsonl/; with `-sparse` after their name (`duckdb-parquet-sparse`,
`duckdb-table-sparse`, `headwater-jsonl-sparse`) they do the same with DATA_DIR/jsonl-sparse/,
the same records with null-valued keys left out. The headwater contenders also return the
direct lane's tier of each file (`direct`: files per tier) and how many files went the careful
lane (`careful`).

Imports happen before the clock starts, headwater's lazy ones too (pyiceberg's catalog, about
0.3 s, is imported when a lake first opens its catalog, its Arrow I/O (0.1 s) when it first
writes, and the DuckDB engine when one opens);
wall time is `perf_counter`, CPU time `process_time` (every thread of this process, DuckDB's
included), peak memory this process's `ru_maxrss`, read when the work is done. Then the output
is checked with `data.CHECKS_SQL` (untimed). Parquet is written with zstd, the codec pyiceberg
writes raw tables with. A fourth argument names a file to write a cProfile of the contender to.
"""

from __future__ import annotations

import cProfile
import importlib
import json
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import data
import duckdb
import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from headwater.contracts import Contract
from headwater.ingest import ingest
from headwater.zones.lake import Lake

# headwater imports these on first use; imported here, before the clock, as duckdb itself is
for _lazy in (
    "headwater.engine.duckdb_files",
    "pyarrow.json",
    "pyiceberg.catalog.sql",
    "pyiceberg.io.pyarrow",
    "sqlalchemy.dialects.sqlite",
):
    importlib.import_module(_lazy)

READ_JSON = "select * from read_json($files, format := 'newline_delimited', columns := $columns)"
CURSOR = {"kind": "cursor", "path": "meta.next", "param": "cursor"}


def duckdb_parquet(source: str, out: Path, *, sparse: bool = False) -> dict[str, Any]:
    conn = duckdb.connect()
    target = out / "orders.parquet"
    clock = Clock()
    _read_json(conn, source, sparse=sparse).write_parquet(str(target), compression="zstd")
    result = clock.stop()
    return result | {"checks": checks(conn.read_parquet([str(target)]))}


def duckdb_table(source: str, out: Path, *, sparse: bool = False) -> dict[str, Any]:
    conn = duckdb.connect()
    clock = Clock()
    _read_json(conn, source, sparse=sparse).create("orders")
    result = clock.stop()
    return result | {"checks": checks(conn.table("orders"))}


def headwater_jsonl(source: str, out: Path, *, sparse: bool = False) -> dict[str, Any]:
    path = str(Path(source).resolve() / data.LAYOUTS[int(sparse)] / "*.jsonl")
    return _headwater({"kind": "files", "path": path}, out)


def httpx_arrow(url: str, out: Path) -> dict[str, Any]:
    target = out / "orders.parquet"
    # from_pylist does not parse timestamps: take the ISO text, then cast it
    text_schema = data.ARROW_SCHEMA.set(1, pa.field("updated_at", pa.string(), nullable=False))
    stamp = data.ARROW_SCHEMA.field("updated_at")
    clock = Clock()
    with (
        httpx.Client(timeout=30) as client,
        pq.ParquetWriter(target, data.ARROW_SCHEMA, compression="zstd") as writer,
    ):
        params: dict[str, str] = {}
        while True:
            response = client.get(f"{url}/orders", params=params)
            response.raise_for_status()
            page = response.json()
            table = pa.Table.from_pylist(page["data"], schema=text_schema)
            table = table.set_column(1, stamp, pc.cast(table.column(1), stamp.type))
            writer.write_table(table)
            cursor = page["meta"]["next"]
            if cursor is None:
                break
            params = {"cursor": cursor}
    result = clock.stop()
    return result | {"checks": checks(duckdb.connect().read_parquet([str(target)]))}


def headwater_http(url: str, out: Path) -> dict[str, Any]:
    connector = {"kind": "http", "url": f"{url}/orders", "records": "data", "pagination": CURSOR}
    return _headwater(connector, out)


def _headwater(connector: dict[str, Any], work: Path) -> dict[str, Any]:
    """The public API as the brief's user calls it: a contract, a lake, `ingest`."""
    contract = Contract.model_validate(
        {
            "name": "orders",
            "source": "bench.orders",
            "schema_version": "1",
            "delivery": "batch",
            "privacy_level": "internal",
            "connector": connector,
            "columns": data.COLUMNS,
        }
    )
    clock = Clock()
    lake = Lake(f"sqlite:///{work}/catalog.db", "lake", work)
    landed = ingest(contract, root=work, lake=lake, now=datetime.now(UTC))
    result = clock.stop()
    files = lake.files("raw.orders")
    return result | {
        "landed_rows": landed.rows,
        "quarantined": landed.quarantined,
        "reasons": landed.reasons,
        "data_files": len(files),
        # the direct lane's files per tier ("exact", "read_json"); the careful lane's file count
        "direct": dict(sorted(Counter(landed.direct.values()).items())),
        "careful": len(landed.careful),
        "checks": checks(duckdb.connect().read_parquet(files)),
    }


def _read_json(
    conn: duckdb.DuckDBPyConnection, source: str, *, sparse: bool
) -> duckdb.DuckDBPyRelation:
    files = [str(p) for p in data.jsonl_files(Path(source), sparse=sparse)]
    columns = {c["name"]: c["type"] for c in data.COLUMNS}
    return conn.sql(READ_JSON, params={"files": files, "columns": columns})


def checks(rel: duckdb.DuckDBPyRelation) -> dict[str, Any]:
    out = rel.query("t", data.CHECKS_SQL)
    return {
        k: (float(v) if k == "amount_sum" else int(v or 0))
        for k, v in zip(out.columns, out.fetchall()[0], strict=True)
    }


class Clock:
    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> dict[str, Any]:
        return {
            "wall_s": time.perf_counter() - self.wall,
            "cpu_s": time.process_time() - self.cpu,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


CONTENDERS: dict[str, Callable[[str, Path], dict[str, Any]]] = {
    "duckdb-parquet": duckdb_parquet,
    "duckdb-table": duckdb_table,
    "headwater-jsonl": headwater_jsonl,
    "httpx-arrow": httpx_arrow,
    "headwater-http": headwater_http,
    "duckdb-parquet-sparse": partial(duckdb_parquet, sparse=True),
    "duckdb-table-sparse": partial(duckdb_table, sparse=True),
    "headwater-jsonl-sparse": partial(headwater_jsonl, sparse=True),
}


def main(kind: str, source: str, out: str, profile: str | None = None) -> None:
    """Run one contender; with `profile`, under cProfile (imports and checks excluded)."""
    Path(out).mkdir(parents=True, exist_ok=True)
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    result = CONTENDERS[kind](source, Path(out).resolve())
    if profiler and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main(*sys.argv[1:5])
