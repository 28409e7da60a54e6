"""The bare reference of the serve benchmark: FastAPI routes doing the work of the data API's
requests that run.py times, without headwater, and answering in the same JSON shapes.

    .venv/bin/python bench/serve/bare.py CONFIG.json --port P --threads N

CONFIG.json (written by run.py as out/bare.json, from what the server's own code runs) gives:

- `GET /v1/marts/big?<column>=eq.<whole number>` (with each shape's sort and limit): the
  SAME DuckDB query text the data API runs over the same Parquet files, the value bound to
  the same parameter (`$f0`), read as the data API reads it (a relation to an Arrow table,
  one more row than the limit telling whether a page follows); `next` is the last row's
  keys, unsigned. Answers `model`, `release`, `snapshot`, `count`, `next`, `data`.
- `GET /v1/features/<view>?key=K`: the SAME two SQLite statements of the online store (the
  view's current state, then the keys' records, in one read transaction) on the same file,
  with a connection per worker thread; each feature's status by the same TTL rule.
- `POST /v1/search/<index>` `{"vector": [...], "k": 10}`: the same HNSW graph file (usearch,
  memory-mapped, the same settings) searched for k; the rows' fields (every column but the
  embedding) held in memory, read once at start from the product's Parquet files.

What headwater does on top (API keys and roles, parsing and checking every parameter against
the schema, building the query with sqlglot, the cache key and ETag, a signed cursor, the
audit trail; for searches, reading the rows found from the Parquet files) is left out: that
is what the benchmark prices.

Served like `headwater serve` serves: uvicorn, log_level warning, no access log, and the same
anyio thread limit (a sync route runs on anyio's worker threads; each has its own cursor of
one in-memory DuckDB database and its own SQLite connection).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio.to_thread
import duckdb
import numpy as np
import orjson
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def create_app(config: dict[str, Any]) -> FastAPI:
    app = FastAPI()
    conn = duckdb.connect(":memory:")
    conn.execute("SET GLOBAL TimeZone = 'UTC'")  # as headwater's engine does
    local = threading.local()

    def cursor() -> duckdb.DuckDBPyConnection:
        found = getattr(local, "cursor", None)
        if found is None:
            found = local.cursor = conn.cursor()
        return found

    rows_route(app, config, cursor)
    features_route(app, config["features"], local)
    search_route(app, config["search"], conn)
    return app


def rows_route(app: FastAPI, config: dict[str, Any], cursor: Any) -> None:
    stamp = {k: config[k] for k in ("model", "release", "snapshot")}
    shapes = config["shapes"]
    for shape in shapes:
        if f"${shape['param']}" not in shape["sql"]:
            raise SystemExit(f"the query of {shape['column']} lacks ${shape['param']}")

    def read(request: Request) -> Response:
        params = request.query_params
        shape = next((s for s in shapes if s["column"] in params), None)
        if shape is None or any(
            params.get(name) != (None if shape[name] is None else str(shape[name]))
            for name in ("sort", "limit")
        ):
            raise HTTPException(400, "not a request shape of this benchmark")
        op, _, raw = params[shape["column"]].partition(".")
        try:
            if op != "eq":
                raise ValueError(op)
            value = int(raw)
        except ValueError:
            raise HTTPException(400, f"{shape['column']}: not eq.<whole number>") from None
        table = cursor().sql(shape["sql"], params={shape["param"]: value}).to_arrow_table()
        limit, following = shape["page_limit"], None
        if table.num_rows > limit:
            table = table.slice(0, limit)
            last = [table.column(k)[limit - 1].as_py() for k in shape["keys"]]
            following = base64.urlsafe_b64encode(orjson.dumps(last, default=str)).decode()
        body = {
            **stamp,
            "count": table.num_rows,
            "next": following,
            "data": table.select(shape["fields"]).to_pylist(),
        }
        return Response(orjson.dumps(body, default=str), media_type="application/json")

    app.add_api_route(config["path"], read, methods=["GET"])


def features_route(app: FastAPI, config: dict[str, Any], local: threading.local) -> None:
    head = {"view": config["view"], "model": config["model"], "release": config["release"]}
    names, ttl = config["features"], config["ttl_us"]

    def sqlite() -> sqlite3.Connection:
        found = getattr(local, "sqlite", None)
        if found is None:
            found = sqlite3.connect(config["store"], isolation_level=None)
            found.execute("PRAGMA busy_timeout = 60000")
            local.sqlite = found
        return found

    def lookup(request: Request) -> Response:
        keys = request.query_params.getlist("key")
        if not 1 <= len(keys) <= 1000:
            raise HTTPException(400, "give 1 to 1000 `key=` parameters")
        db = sqlite()
        db.execute("BEGIN")
        try:
            pointer = db.execute(config["pointer"], (config["env"], config["view"])).fetchone()
            if pointer is None:
                raise HTTPException(503, "the online store holds no such view")
            found = db.execute(config["records"], (pointer[0], json.dumps(keys))).fetchall()
        finally:
            db.execute("COMMIT")
        records = dict(found)
        now = (datetime.now(UTC) - EPOCH) // timedelta(microseconds=1)
        results = []
        for key in keys:
            record = records.get(key)
            event_us, values = orjson.loads(record) if record is not None else (None, [])
            if event_us is None or event_us > now:
                status, event = "NOT_FOUND", None
            else:
                status = "EXPIRED" if ttl is not None and event_us < now - ttl else "PRESENT"
                event = EPOCH + timedelta(microseconds=event_us)
            shown = values if status == "PRESENT" else [None] * len(names)
            results.append(
                {
                    "key": key,
                    "event_time": event,
                    "features": {
                        n: {"value": v, "status": status} for n, v in zip(names, shown, strict=True)
                    },
                }
            )
        body = orjson.dumps({**head, "results": results})
        return Response(body, media_type="application/json")

    app.add_api_route(config["path"], lookup, methods=["GET"])


class SearchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vector: list[float]
    k: int = 10


def search_route(app: FastAPI, config: dict[str, Any], conn: duckdb.DuckDBPyConnection) -> None:
    from usearch.index import Index

    graph = Index(
        ndim=config["dimensions"],
        metric=config["metric"],
        dtype="f32",
        connectivity=config["connectivity"],
        expansion_search=config["expansion"],
    )
    graph.view(config["file"])
    fields = ", ".join(f'"{f}"' for f in config["fields"])
    # a row's key in the graph is its place in the snapshot: files in order, rows in order
    rows = (
        conn.sql(
            f"SELECT {fields} FROM read_parquet($files, filename = true, file_row_number = true)"
            " ORDER BY list_position($files, filename), file_row_number",
            params={"files": config["files"]},
        )
        .to_arrow_table()
        .to_pylist()
    )
    head = {k: config[k] for k in ("index", "model", "release", "snapshot")}
    lock = threading.Lock()  # as headwater searches: one search of a graph at a time

    def find(body: SearchBody) -> Response:
        if len(body.vector) != config["dimensions"]:
            raise HTTPException(400, f"a vector has {config['dimensions']} dimensions")
        with lock:
            matches = graph.search(np.asarray(body.vector, np.float32), body.k)
        keys = np.asarray(matches.keys, np.int64).tolist()
        distances = np.asarray(matches.distances, np.float64).tolist()
        answer = {
            **head,
            "k": body.k,
            "exact": False,
            "candidates": len(rows),
            "exhausted": len(keys) < body.k,
            "results": [
                {"distance": d, "row": rows[key]} for key, d in zip(keys, distances, strict=True)
            ],
        }
        return Response(orjson.dumps(answer), media_type="application/json")

    app.add_api_route(config["path"], find, methods=["POST"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    app = create_app(json.loads(args.config.read_text()))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = args.threads
        await server.serve()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
