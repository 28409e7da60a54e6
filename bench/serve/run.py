"""Serve benchmark: the data API (`headwater serve`) under load on 127.0.0.1.

    .venv/bin/python bench/serve/run.py [--rows 1000000] [--seconds 10] [--concurrency 8]
                                        [--repeat 1] [--format table|json]

Builds (once, cached in out/project/) a project of three published models that make their
rows themselves, published by one `headwater run`:

- `marts.big` (served; `--rows` rows): the rows API's product;
- `marts.customer_stats` (500,000 rows of 100,000 customers): a feature view, which the run
  puts in the online store (SQLite, `.headwater/online.db`);
- `marts.docs` (100,000 rows, a FLOAT[64] embedding in 256 clusters): a vector index, whose
  HNSW graph the run builds.

It then starts three servers on free ports of 127.0.0.1, each its own process:

- `headwater serve` (response cache on, 256MB),
- `headwater serve --cache 0` (every read of rows is read from the product's Parquet files),
- bare.py: FastAPI routes doing the same work without headwater: the same DuckDB query text
  with the same bound parameters, the same SQLite statements of the online store, the same
  HNSW graph file.

A closed-loop load generator (`--concurrency` threads, each with its own keep-alive
http.client connection: a light client, so that the servers keep the CPU) then drives each
scenario for `--seconds`, in `--rounds` slices:

1. cached reads: four URLs over and over on the cached server (warmed first);
2. uncached reads, two request shapes, on the `--cache 0` server, each against the bare app
   answering the same requests, in slices alternating between the two (A B, B A, ...) so
   that the machine's noise hits both alike:
   - customer filter: `customer_id=eq.<random>&sort=-amount&limit=100` (1,000 of the 1M
     rows match, spread over every row group: DuckDB decodes the whole product);
   - id lookup: `id=eq.<random>` (one row; row-group statistics leave one group to read:
     the query is cheap, so what the API adds shows);
   the ratio of each uncached throughput to the bare app's (goal >= 0.8);
3. online feature lookups: `GET /v1/features/customer_stats?key=<random>` (one key, 5% of
   them unknown) on `headwater serve`, against the bare app's lookup in the same SQLite file;
4. vector search: `POST /v1/search/docs` with a random vector near one of the clusters, k=10,
   unfiltered (the HNSW graph) and with `where: {kind: eq.<one of 10>}` (10,000 candidates,
   compared exactly), against the bare app searching the same graph file (rows from memory).

Reports requests/s, p50 and p99 latency, errors and the server's CPU per request (from
/proc), with the CPU the load generator and other processes used meanwhile; writes
out/latest.json. Before the clock, a sample of requests of each kind is checked to get the
same answers from headwater and the bare app (and the searches' recall against an exact one).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # bench/machine.py
from machine import describe, machine_cpu, run_project, wait_idle  # noqa: E402

OUT = HERE / "out"
PROJECT = OUT / "project"
BARE = HERE / "bare.py"
HEADWATER = Path(sys.executable).parent / "headwater"
MODEL, ROUTE = "marts.big", "/v1/marts/big"
CUSTOMERS = 1000  # customer_id = id % CUSTOMERS: each customer's rows are spread everywhere
SENTINEL = 987654321987  # the filter value the server's query is captured with
GOAL = 0.8  # uncached throughput / bare throughput
MODEL_SQL = """select i as id,
       i % {customers} as customer_id,
       (i * 7) % 100000 / 100.0 as amount,
       'c' || (i % 50) as country,
       date '2024-01-01' + (i % 365)::int as day
from range({rows}) t(i)
"""
SIDECAR = "description: Generated rows of the serve benchmark.\nserve: true\n"

# the feature view: ENTITIES customers, FEATURE_ROWS rows (5 each) over 2025; a TTL of ten
# years keeps every value PRESENT whatever the day the benchmark runs
FEATURE_MODEL, VIEW = "marts.customer_stats", "customer_stats"
FEATURE_ROUTE = f"/v1/features/{VIEW}"
ENTITIES, FEATURE_ROWS = 100_000, 500_000
UNKNOWN = ENTITIES // 20  # keys are drawn from ENTITIES + UNKNOWN: ~5% answered NOT_FOUND
FEATURE_SQL = f"""select i % {ENTITIES} as customer_id,
       timestamp '2025-01-01' + to_seconds(((i * 2654435761) % 28512000)::bigint) as updated_at,
       (i * 7) % 1000 as orders,
       ((i * 13) % 100000) / 100.0 as spend,
       'segment_' || (i % 17) as segment
from range({FEATURE_ROWS}) t(i)
"""
FEATURE_SIDECAR = f"""description: Generated customer features of the serve benchmark.
features:
  {VIEW}:
    entity: customer_id
    event_time: updated_at
    features: [orders, spend, segment]
    ttl: 3650d
"""

# the vector index: VECTOR_ROWS rows, each in one of CLUSTERS clusters (by a hash of its id),
# its embedding the cluster's centre (sin of the cluster and the dimension) plus a uniform
# noise of +-0.25 per dimension (a hash of id and dimension); `kind` is id % KINDS
VECTOR_MODEL, INDEX = "marts.docs", "docs"
SEARCH_ROUTE = f"/v1/search/{INDEX}"
VECTOR_ROWS, DIMENSIONS, CLUSTERS, KINDS, K = 100_000, 64, 256, 10, 10
QUERY_NOISE = 0.1  # a query: a cluster's centre plus a gaussian noise of this sigma
VECTOR_SQL = f"""select i as id,
       'k' || (i % {KINDS}) as kind,
       list_transform(range({DIMENSIONS}), lambda j:
         (sin((hash(i) % {CLUSTERS}) * 12.9898 + j * 78.233)
          + 0.5 * ((hash(i, j) % 10000) / 10000.0 - 0.5))::FLOAT)::FLOAT[{DIMENSIONS}]
         as embedding
from range({VECTOR_ROWS}) t(i)
"""
VECTOR_SIDECAR = f"""description: Generated embeddings of the serve benchmark.
vectors:
  {INDEX}:
    column: embedding
    metric: cos
"""


@dataclass(frozen=True)
class Shape:
    """A request shape: one `column=eq.<whole number>` filter, and a sort and limit (None:
    not given). bare.py answers exactly these."""

    name: str
    column: str
    sort: str | None = None
    limit: int | None = None

    def params(self, value: int) -> list[tuple[str, str]]:
        out = [(self.column, f"eq.{value}")]
        if self.sort is not None:
            out.append(("sort", self.sort))
        if self.limit is not None:
            out.append(("limit", str(self.limit)))
        return out

    def path(self, value: int) -> str:
        return ROUTE + "?" + "&".join(f"{k}={v}" for k, v in self.params(value))

    def draw(self, rng: random.Random, rows: int) -> int:
        return rng.randrange(CUSTOMERS if self.column == "customer_id" else rows)

    def expected(self, value: int, rows: int) -> int:
        """Rows of the page for `value` (customer c has ids c, c + 1000, ...)."""
        if self.column == "id":
            return 1 if 0 <= value < rows else 0
        matching = len(range(value, rows, CUSTOMERS)) if 0 <= value < CUSTOMERS else 0
        return min(matching, self.limit or 100)


# 1,000 rows spread over every row group: DuckDB decodes every column of the whole product
CUSTOMER = Shape("customer", "customer_id", sort="-amount", limit=100)
# one row: the row groups' min/max statistics leave one of them to read
LOOKUP = Shape("lookup", "id")
SHAPES = (CUSTOMER, LOOKUP)


# ---- scenarios ----------------------------------------------------------------------------


# what a client asks: a path to GET, or (method, path, JSON body) — e.g. a POST of a search
Ask = str | tuple[str, str, bytes]


def send(conn: http.client.HTTPConnection, ask: Ask) -> None:
    if isinstance(ask, str):
        conn.request("GET", ask)
    else:
        method, path, body = ask
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})


@dataclass(frozen=True)
class Scenario:
    """One line of the report: the server it loads and `paths(client, round)`, the requests
    a client asks in turn. Scenarios of one `group` are timed in alternating rounds (A B,
    B A, ...), so that the machine's noise hits each alike."""

    key: str
    label: str
    server: str
    paths: Callable[[int, int], list[Ask]]
    group: str


@dataclass(frozen=True)
class Comparison:
    """headwater's scenario `ours` against the bare reference `bare` (goal: `goal` x, if
    any)."""

    label: str
    ours: str
    bare: str
    goal: float | None = None


def varied(shape: Shape, rows: int) -> Callable[[int, int], list[Ask]]:
    """Random values, the same sequence whichever server asks (seeded by client, round)."""

    def paths(client: int, round_: int) -> list[Ask]:
        rng = random.Random(f"{shape.name}-{client}-{round_}")
        return [shape.path(shape.draw(rng, rows)) for _ in range(4096)]

    return paths


def cached_paths(client: int, _round: int) -> list[Ask]:
    """Four URLs, each client starting at another one."""
    return [CUSTOMER.path(1 + (client + i) % 4) for i in range(4)]


def feature_path(key: int) -> str:
    return f"{FEATURE_ROUTE}?key={key}"


def feature_paths(client: int, round_: int) -> list[Ask]:
    """One random key per request (1 in 21 unknown)."""
    rng = random.Random(f"features-{client}-{round_}")
    return [feature_path(rng.randrange(ENTITIES + UNKNOWN)) for _ in range(4096)]


def centre(cluster: int) -> list[float]:
    """A cluster's centre, as VECTOR_SQL makes it."""
    return [math.sin(cluster * 12.9898 + j * 78.233) for j in range(DIMENSIONS)]


def search_body(rng: random.Random, *, where: bool) -> dict[str, Any]:
    """A vector near a random cluster's rows (and, `where`, one kind of row out of KINDS)."""
    vector = [round(x + rng.gauss(0, QUERY_NOISE), 5) for x in centre(rng.randrange(CLUSTERS))]
    body: dict[str, Any] = {"vector": vector, "k": K}
    if where:
        body["where"] = {"kind": f"eq.k{rng.randrange(KINDS)}"}
    return body


def searches(*, where: bool) -> Callable[[int, int], list[Ask]]:
    def asks(client: int, round_: int) -> list[Ask]:
        rng = random.Random(f"search-{where}-{client}-{round_}")
        return [
            ("POST", SEARCH_ROUTE, json.dumps(search_body(rng, where=where)).encode())
            for _ in range(512)  # a few more than a client asks in a slice: then again
        ]

    return asks


def count(rows: int) -> str:
    """1000000 -> 1M, 250000 -> 250k."""
    for size, unit in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if rows >= size:
            return f"{rows / size:.3g}{unit}"
    return str(rows)


def scenarios(rows: int) -> tuple[list[Scenario], list[Comparison]]:
    # to add one: the server it loads (started in servers_up) and the requests to ask; put
    # it in one group with its bare reference (if any) and add a Comparison
    bare = "  bare FastAPI, same query"
    plan = [
        Scenario("cached", "cached reads (4 URLs)", "cached", cached_paths, "cached"),
        Scenario(
            "uncached",
            f"uncached: customer filter, {count(rows)} rows",
            "uncached",
            varied(CUSTOMER, rows),
            "customer",
        ),
        Scenario("bare", bare, "bare", varied(CUSTOMER, rows), "customer"),
        Scenario(
            "uncached_lookup",
            f"uncached: id lookup, {count(rows)} rows",
            "uncached",
            varied(LOOKUP, rows),
            "id",
        ),
        Scenario("bare_lookup", bare, "bare", varied(LOOKUP, rows), "id"),
        Scenario(
            "features",
            f"online features, 1 key of {count(ENTITIES)}",
            "cached",
            feature_paths,
            "features",
        ),
        Scenario(
            "bare_features", "  bare FastAPI, same SQLite reads", "bare", feature_paths, "features"
        ),
        Scenario(
            "vectors",
            f"vector search, {count(VECTOR_ROWS)} x {DIMENSIONS}, k={K}",
            "cached",
            searches(where=False),
            "vectors",
        ),
        Scenario(
            "bare_vectors", "  bare FastAPI, same graph", "bare", searches(where=False), "vectors"
        ),
        Scenario(
            "vectors_where",
            f"vector search, where kind (1 of {KINDS})",
            "cached",
            searches(where=True),
            "vectors",
        ),
    ]
    compared = [
        Comparison("customer filter", "uncached", "bare", GOAL),
        Comparison("id lookup", "uncached_lookup", "bare_lookup", GOAL),
        Comparison("online features", "features", "bare_features"),
        Comparison("vector search", "vectors", "bare_vectors"),
    ]
    return plan, compared


# ---- the project --------------------------------------------------------------------------


def build_project(rows: int, say: Callable[[str], None]) -> None:
    """out/project with its three models, published (kept while `rows` and every model's
    text are the same)."""
    files = {
        "models/marts/big.sql": MODEL_SQL.format(customers=CUSTOMERS, rows=rows),
        "models/marts/big.yml": SIDECAR,
        "models/marts/customer_stats.sql": FEATURE_SQL,
        "models/marts/customer_stats.yml": FEATURE_SIDECAR,
        "models/marts/docs.sql": VECTOR_SQL,
        "models/marts/docs.yml": VECTOR_SIDECAR,
    }
    marker = PROJECT / "bench.json"
    wanted = {"rows": rows, "files": files}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        say(f"project: {PROJECT} (cached, {rows:,} rows)")
        return
    shutil.rmtree(PROJECT, ignore_errors=True)
    (PROJECT / "models/marts").mkdir(parents=True)
    (PROJECT / "headwater.yml").write_text("name: bench\n")
    for name, text in files.items():
        (PROJECT / name).write_text(text)
    say(f"project: building {PROJECT} (the vector index takes a while) ...")
    seconds = run_project(PROJECT)
    marker.write_text(json.dumps(wanted))
    say(f"project: {PROJECT} (built, {rows:,} rows, {seconds:.1f}s)")


@dataclass(frozen=True)
class Query:
    """The data API's query of one request shape: its text, the parameter the filter's value
    is bound to, and what bare.py needs to answer in the same shape."""

    shape: Shape
    sql: str
    param: str  # `f0`: the text says `$f0`
    page_limit: int
    fields: list[str]
    keys: list[str]  # the hidden key columns (the last row's make `next`)


@dataclass(frozen=True)
class Lookup:
    """The SQLite statements of one online lookup, as the server runs them (between a BEGIN
    and a COMMIT): the view's current state, then the records of the keys asked."""

    store: str
    env: str
    pointer: str
    records: str
    features: list[str]
    ttl_us: int | None


@dataclass(frozen=True)
class Graph:
    """The vector index of the product snapshot served: its file and its settings."""

    file: str
    snapshot: int
    dimensions: int
    metric: str
    connectivity: int
    expansion: int
    column: str
    fields: list[str]
    files: list[str]


@dataclass(frozen=True)
class Served:
    """What the servers serve: the rows product's snapshot and the query of every shape, the
    online lookup, the vector index."""

    release: int | None
    snapshot: int
    files: list[str]
    queries: list[Query]
    lookup: Lookup
    graph: Graph

    def bare_config(self) -> dict[str, Any]:
        return {
            "path": ROUTE,
            "model": MODEL,
            "release": self.release,
            "snapshot": self.snapshot,
            "shapes": [
                {
                    "column": q.shape.column,
                    "sort": q.shape.sort,
                    "limit": q.shape.limit,
                    "page_limit": q.page_limit,
                    "sql": q.sql,
                    "param": q.param,
                    "fields": q.fields,
                    "keys": q.keys,
                }
                for q in self.queries
            ],
            "features": {
                "path": FEATURE_ROUTE,
                "view": VIEW,
                "model": FEATURE_MODEL,
                "release": self.release,
                **vars(self.lookup),
            },
            "search": {
                "path": SEARCH_ROUTE,
                "index": INDEX,
                "model": VECTOR_MODEL,
                "release": self.release,
                **vars(self.graph),
            },
        }


class _Recording:
    """An engine (or a cursor of it) that keeps the text and parameters of every query it
    reads; its cursors record into the same list."""

    def __init__(self, inner: Any, seen: list[tuple[str, dict[str, Any]]]):
        self.inner, self.seen = inner, seen

    def read(self, statement: Any, params: Any = None) -> Any:
        self.seen.append((self.inner.render(statement), dict(params or {})))
        return self.inner.read(statement, params)

    def cursor(self) -> _Recording:
        return _Recording(self.inner.cursor(), self.seen)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _RecordingSqlite:
    """A sqlite3 connection that keeps every statement it executes, with its parameters."""

    def __init__(self, inner: Any, seen: list[tuple[str, tuple[Any, ...]]]):
        self.inner, self.seen = inner, seen

    def execute(self, sql: str, params: Any = ()) -> Any:
        self.seen.append((sql, tuple(params)))
        return self.inner.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def served_state() -> Served:
    """What `headwater serve` runs, from its own code: for each shape of rows request, the
    request parsed and checked as the app does (anonymous caller, its columns and row policy)
    and read with `Reader.page` (with the app's `view`), on an engine that records the text
    and the parameters; one online lookup through the online store's own class, recording
    its SQLite statements; the vector index file of the snapshot served."""
    from headwater.change.online import OnlineStore, SqliteOnline, feature_view, ttl_micros
    from headwater.change.vectors import index_path
    from headwater.change.versions import PROD
    from headwater.project import load_project
    from headwater.serve.access import Access
    from headwater.serve.features import online_features
    from headwater.serve.query import KEY, key_names, parse
    from headwater.serve.reader import TIEBREAK, Reader

    project = load_project(PROJECT)
    reader = Reader(project)
    seen: list[tuple[str, dict[str, Any]]] = []
    reader.engine = _Recording(reader.engine, seen)
    queries = []
    try:
        source = reader.source(MODEL)
        access = Access(project, reader.catalog)
        caller = access.caller(None)
        columns, policy = access.view(caller, MODEL, source.schema)
        serving = project.models[MODEL].sidecar.serve
        assert serving is not None
        for shape in SHAPES:
            texts = []
            for value in (SENTINEL, SENTINEL + 1):  # built, then from the kept text
                asked = parse(shape.params(value), columns, serving)
                seen.clear()
                view = (MODEL, caller.role_name)
                reader.page(source, asked, columns, row_policy=policy, view=view)
                if len(seen) != 1:
                    raise SystemExit(f"expected one query of {shape.path(value)}, saw {seen}")
                sql, params = seen[0]
                bound = [name for name, v in params.items() if v == value]
                if str(value) in sql or len(params) != 1 or len(bound) != 1:
                    raise SystemExit(
                        f"expected the value of {shape.path(value)} bound as the query's one "
                        f"parameter, saw {sql!r} with {params}"
                    )
                texts.append((sql, bound[0]))
            if texts[0] != texts[1]:
                raise SystemExit(f"two values of {shape.name} gave two texts: {texts}")
            assert asked.limit is not None
            keys = [f"{KEY}{i}" for i in range(len(key_names(asked, TIEBREAK)))]
            queries.append(Query(shape, *texts[0], asked.limit, list(asked.fields), keys))
        docs = reader.source(VECTOR_MODEL)
    finally:
        reader.close()

    store = OnlineStore.open(project)
    statements: list[tuple[str, tuple[Any, ...]]] = []
    try:
        if not isinstance(store, SqliteOnline):
            raise SystemExit("the benchmark reads a SQLite online store (headwater.yml: online)")
        store._conn = _RecordingSqlite(store._conn, statements)  # type: ignore[assignment]
        found = online_features(project, VIEW, ["42"], now=datetime.now(UTC), store=store)
    finally:
        store.close()
    kinds = [s.split()[0].upper() for s, _ in statements]
    if kinds != ["BEGIN", "SELECT", "SELECT", "COMMIT"] or statements[1][1] != (PROD, VIEW):
        raise SystemExit(f"the online lookup is not the one bare.py repeats: {statements}")
    if statements[2][1][1:] != (json.dumps(["42"]),):
        raise SystemExit(
            f"the online lookup's keys are not bound as bare.py binds them: {statements}"
        )
    lookup = Lookup(
        store=str(store.path),
        env=PROD,
        pointer=statements[1][0],
        records=statements[2][0],
        features=list(found[0]["features"]),
        ttl_us=ttl_micros(feature_view(project, VIEW).spec),
    )

    spec = project.models[VECTOR_MODEL].sidecar.vectors[INDEX]
    path = index_path(project.root, docs.product.product, docs.product.snapshot_id, INDEX)
    if not path.exists():
        raise SystemExit(f"no vector index at {path}: `headwater run` builds it when it publishes")
    graph = Graph(
        file=str(path),
        snapshot=docs.product.snapshot_id,
        dimensions=DIMENSIONS,
        metric=spec.metric,
        connectivity=spec.connectivity,
        expansion=spec.expansion,
        column=spec.column,
        fields=[c for c in docs.schema.names if c != spec.column],
        files=list(docs.files),
    )
    return Served(
        source.release, source.product.snapshot_id, list(source.files), queries, lookup, graph
    )


# ---- servers ------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    ready_path: str

    def cpu(self) -> float:
        """CPU seconds the server process has used (all its threads)."""
        text = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = text[text.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(name: str, command: list[str], port: int, ready_path: str) -> Server:
    log = OUT / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    return Server(name, port, process, log, ready_path)


def wait_ready(server: Server, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"{server.name} exited:\n{server.log.read_text()}")
        try:
            if fetch(server.port, server.ready_path)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{server.name} did not answer within {timeout:g}s:\n{server.log.read_text()}")


def stop(servers: list[Server]) -> None:
    """Ask each server started here to shut down (SIGINT), then kill it if it lingers."""
    for server in servers:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGINT)
    for server in servers:
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@contextmanager
def servers_up(served: Served, threads: int) -> Iterator[dict[str, Server]]:
    config = OUT / "bare.json"
    config.write_text(json.dumps(served.bare_config(), indent=1))
    started: list[Server] = []
    try:
        for name, cache in (("cached", "256MB"), ("uncached", "0")):
            port = free_port()
            command = [str(HEADWATER), "serve", "-p", str(PROJECT), "--port", str(port)]
            command += ["--cache", cache, "--threads", str(threads)]
            started.append(start(name, command, port, "/v1/health"))
        port = free_port()
        command = [sys.executable, str(BARE), str(config), "--port", str(port)]
        command += ["--threads", str(threads)]
        started.append(start("bare", command, port, CUSTOMER.path(0)))
        for server in started:
            wait_ready(server)
        yield {s.name: s for s in started}
    finally:
        stop(started)


def fetch(port: int, ask: Ask) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        send(conn, ask)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# ---- the load generator -------------------------------------------------------------------


@dataclass
class Sample:
    """One timed slice of one scenario. Each client asks from the start until `seconds` have
    passed and its last request is answered; `rate` sums each client's answers over the time
    it was busy (a closed loop: no edge effect, however long a request)."""

    rate: float
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    body_bytes: int
    server_cpu: float
    client_cpu: float
    other_cpu: float


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load(
    server: Server,
    paths: Callable[[int], list[Ask]],
    seconds: float,
    concurrency: int,
    everyone: list[Server],
) -> Sample:
    """`concurrency` clients, each asking its next URL as soon as its last answer is read,
    for `seconds` (connections opened and used once before the clock)."""
    clock: list[float] = []  # the start, then the deadline: set once every client is ready
    cpu: list[Any] = []

    def go() -> None:  # run by the barrier once all are there, before any is let go
        cpu.extend([[s.cpu() for s in everyone], own_cpu(), machine_cpu()])
        clock.extend([now := time.perf_counter(), now + seconds])

    ready = threading.Barrier(concurrency + 1, action=go, timeout=120)
    results: list[tuple[list[float], int, int, float]] = [([], 0, 0, 0.0)] * concurrency

    def connect() -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)

    def client(index: int) -> None:
        mine = paths(index)
        conn = connect()
        try:
            send(conn, mine[0])
            conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = connect()
        latencies: list[float] = []
        errors = size = n = 0
        ready.wait()
        done, end = clock
        while True:
            begun = time.perf_counter()
            if begun >= end:
                break
            try:
                send(conn, mine[n % len(mine)])
                response = conn.getresponse()
                body = response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok, body = False, b""
                conn.close()
                conn = connect()
            done = time.perf_counter()
            if ok:
                latencies.append(done - begun)
                size += len(body)
            else:
                errors += 1
            n += 1
        results[index] = (latencies, errors, size, done)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    ready.wait()
    for thread in threads:
        thread.join()
    servers = sum(s.cpu() for s in everyone) - sum(cpu[0])
    mine = own_cpu() - cpu[1]
    total = machine_cpu() - cpu[2]
    latencies = [x for r in results for x in r[0]]
    start = clock[0]
    return Sample(
        rate=sum(len(r[0]) / (r[3] - start) for r in results if r[3] > start),
        requests=len(latencies),
        errors=sum(r[1] for r in results),
        seconds=seconds,
        latencies=latencies,
        body_bytes=sum(r[2] for r in results),
        server_cpu=server.cpu() - cpu[0][everyone.index(server)],
        client_cpu=mine,
        other_cpu=max(0.0, total - servers - mine),
    )


def summary(samples: list[Sample]) -> dict[str, Any]:
    """The rounds of one scenario in one repeat, merged."""
    latencies = sorted(x for s in samples for x in s.latencies)
    requests = len(latencies)
    seconds = sum(s.seconds for s in samples)

    def quantile(q: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(requests - 1, int(q * requests))] * 1000, 3)

    return {
        "requests": requests,
        "errors": sum(s.errors for s in samples),
        "seconds": round(seconds, 3),
        "rps": round(sum(s.rate * s.seconds for s in samples) / seconds, 1),
        "p50_ms": quantile(0.50),
        "p99_ms": quantile(0.99),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 3) if latencies else None,
        "body_bytes": round(sum(s.body_bytes for s in samples) / requests) if requests else None,
        "server_cpu_ms_per_request": (
            round(sum(s.server_cpu for s in samples) / requests * 1000, 3) if requests else None
        ),
        "client_cpu_s": round(sum(s.client_cpu for s in samples), 2),
        "other_cpu_s": round(sum(s.other_cpu for s in samples), 2),
    }


def median_of(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the repeats (one repeat: itself)."""
    out: dict[str, Any] = {}
    for name, first in repeats[0].items():
        values = [r[name] for r in repeats if r[name] is not None]
        if values and all(isinstance(v, int) for v in values):
            out[name] = statistics.median_low(values)
        elif isinstance(first, int | float) and values:
            out[name] = round(statistics.median(values), 3)
        else:
            out[name] = first
    return out


# ---- checks -------------------------------------------------------------------------------


def answer(server: Server, ask: Ask) -> Any:
    status, body = fetch(server.port, ask)
    if status != 200:
        path = ask if isinstance(ask, str) else f"{ask[0]} {ask[1]}"
        raise SystemExit(f"{server.name}: {path} answered {status}: {body[:300]!r}")
    return json.loads(body)


def check_rows(servers: dict[str, Server], rows: int, rng: random.Random) -> int:
    """The three servers give the same page for a sample of requests of every shape (values
    without rows among them), with the rows expected; how many requests were compared."""
    asked = []
    for shape in SHAPES:
        edges = [0, 1, CUSTOMERS - 1, CUSTOMERS + 5] if shape is CUSTOMER else [0, rows - 1, rows]
        asked += [(shape, v) for v in [*edges, *(shape.draw(rng, rows) for _ in range(12))]]
    for shape, value in asked:
        path = shape.path(value)
        answers = {name: answer(server, path) for name, server in servers.items()}
        reference = answers["uncached"]
        for name, got in answers.items():
            same = (
                got["data"] == reference["data"]
                and got["count"] == reference["count"]
                and (got["next"] is None) == (reference["next"] is None)
                and [got[k] for k in ("model", "release", "snapshot")]
                == [reference[k] for k in ("model", "release", "snapshot")]
            )
            if not same:
                raise SystemExit(f"{name} and uncached answer {path} differently")
        want = shape.expected(value, rows)
        if reference["count"] != want or len(reference["data"]) != want:
            raise SystemExit(f"{path}: {reference['count']} rows, not {want}")
    return len(asked)


def check_features(servers: dict[str, Server], rng: random.Random) -> int:
    """headwater and bare.py give the same answer for a sample of keys: every feature
    PRESENT for a known customer, NOT_FOUND for an unknown one."""
    edges = [0, 42, ENTITIES - 1, ENTITIES, ENTITIES + UNKNOWN - 1]
    keys = [*edges, *(rng.randrange(ENTITIES + UNKNOWN) for _ in range(15))]
    for key in keys:
        path = feature_path(key)
        ours, bare = answer(servers["cached"], path), answer(servers["bare"], path)
        if ours != bare:
            raise SystemExit(f"headwater and bare.py answer {path} differently:\n{ours}\n{bare}")
        want = "PRESENT" if key < ENTITIES else "NOT_FOUND"
        statuses = {f["status"] for r in ours["results"] for f in r["features"].values()}
        if len(ours["results"]) != 1 or statuses != {want}:
            raise SystemExit(f"{path}: {ours['results']}, not one key with every feature {want}")
    return len(keys)


def check_vectors(servers: dict[str, Server], graph: Graph, rng: random.Random) -> dict[str, Any]:
    """Searches of headwater and bare.py against an exact search (numpy, every row compared)
    over the same embeddings: each answer has K rows (of the kind asked, filtered), the same
    stamps from both; recall@K of each."""
    import duckdb
    import numpy as np

    conn = duckdb.connect()
    table = conn.sql(
        f'SELECT id, kind, "{graph.column}" FROM read_parquet($files, filename = true, '
        "file_row_number = true) ORDER BY list_position($files, filename), file_row_number",
        params={"files": graph.files},
    ).to_arrow_table()
    conn.close()
    ids = np.asarray(table.column(0).to_pylist())
    kinds = np.asarray(table.column(1).to_pylist())
    flat = table.column(2).combine_chunks().flatten().to_numpy(zero_copy_only=False)
    matrix = flat.astype(np.float32).reshape(-1, graph.dimensions)
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)

    def exact(vector: list[float], kind: str | None) -> set[int]:
        query = np.asarray(vector, np.float32)
        similar = unit @ (query / np.linalg.norm(query))
        if kind is not None:
            similar = np.where(kinds == kind, similar, -np.inf)
        return set(ids[np.argsort(-similar, kind="stable")[:K]].tolist())

    recall: dict[str, list[float]] = {"headwater": [], "bare": [], "headwater_where": []}
    same = 0
    plain, where = 20, 10
    for i in range(plain + where):
        body = search_body(rng, where=i >= plain)
        ask: Ask = ("POST", SEARCH_ROUTE, json.dumps(body).encode())
        kind = body.get("where", {}).get("kind", "eq.").removeprefix("eq.") or None
        truth = exact(body["vector"], kind)
        answers = {
            "headwater" if kind is None else "headwater_where": answer(servers["cached"], ask)
        }
        if kind is None:
            answers["bare"] = answer(servers["bare"], ask)
        for name, got in answers.items():
            rows = [r["row"] for r in got["results"]]
            if len(rows) != K or any(kind is not None and r["kind"] != kind for r in rows):
                raise SystemExit(f"{name}: a search got {rows}, not {K} rows of kind {kind}")
            recall[name].append(len(truth & {r["id"] for r in rows}) / K)
        if kind is None:
            ours, bare = answers["headwater"], answers["bare"]
            stamps = [k for k in ours if k != "results"]
            if [ours[k] for k in stamps] != [bare.get(k) for k in stamps]:
                raise SystemExit(f"headwater and bare.py stamp a search differently: {ours} {bare}")
            same += [r["row"] for r in ours["results"]] == [r["row"] for r in bare["results"]]
    out = {f"recall_{name}": round(statistics.fmean(v), 3) for name, v in recall.items()}
    if min(out.values()) < 0.8:
        raise SystemExit(f"searches far from the exact ones: recall@{K} {out}")
    return {"searches": plain + where, "same_rows_as_bare": f"{same}/{plain}", **out}


def cache_figures(server: Server) -> dict[str, Any]:
    status, body = fetch(server.port, "/v1/health")
    return dict(json.loads(body)["cache"]) if status == 200 else {}


# ---- the run ------------------------------------------------------------------------------


def at_round(paths: Callable[[int, int], list[Ask]], round_: int) -> Callable[[int], list[Ask]]:
    return lambda client: paths(client, round_)


def rounds_order(group: list[Scenario], rounds: int) -> list[tuple[int, Scenario]]:
    """A B, B A, A B, ...: each scenario of the group once per round, the order flipping."""
    out = []
    for r in range(rounds):
        members = group if r % 2 == 0 else list(reversed(group))
        out += [(r, s) for s in members]
    return out


def measure(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    OUT.mkdir(parents=True, exist_ok=True)
    build_project(args.rows, say)
    served = served_state()
    for query in served.queries:
        asked = query.shape.path(0).replace("eq.0", "eq.<value>")
        say(
            f"the data API's query of {asked} (bare.py runs the same text, the value bound to "
            f"${query.param}):\n  {query.sql}"
        )
    say(
        f"the online lookup's statements (bare.py runs the same):\n  {served.lookup.pointer}\n"
        f"  {served.lookup.records}\nthe vector index: {served.graph.file}"
    )
    plan, compared = scenarios(args.rows)
    groups: dict[str, list[Scenario]] = {}
    for s in plan:
        groups.setdefault(s.group, []).append(s)
    repeats: dict[str, list[dict[str, Any]]] = {s.key: [] for s in plan}
    cache: dict[str, Any] = {}
    slice_s = args.seconds / args.rounds
    with servers_up(served, args.threads) as servers:
        everyone = list(servers.values())
        rng = random.Random(7)
        checked = {
            "rows": check_rows(servers, args.rows, rng),
            "features": check_features(servers, rng),
            **check_vectors(servers, served.graph, rng),
        }
        say(f"checked: the same answers from headwater and bare.py: {checked}")
        for s in plan:  # warm: each scenario's server with its requests, no clock
            load(servers[s.server], at_round(s.paths, -1), 1.0, args.concurrency, everyone)
        with redirect_stdout(sys.stderr):  # its note, off a JSON stdout
            wait_idle(limit=0.25, timeout=args.idle_timeout)
        for repeat in range(args.repeat):
            for group in groups.values():
                samples: dict[str, list[Sample]] = {s.key: [] for s in group}
                before = cache_figures(servers["cached"])
                for r, s in rounds_order(group, args.rounds):
                    paths = at_round(s.paths, r + 100 * repeat)
                    taken = load(servers[s.server], paths, slice_s, args.concurrency, everyone)
                    samples[s.key].append(taken)
                for key, taken_all in samples.items():
                    got = summary(taken_all)
                    repeats[key].append(got)
                    say(
                        f"  {repeat + 1}/{args.repeat} {key:<16} {got['rps']:>8.1f} req/s  "
                        f"p50 {got['p50_ms']} ms  p99 {got['p99_ms']} ms  "
                        f"errors {got['errors']}  other CPU {got['other_cpu_s']} s"
                    )
                if "cached" in samples:
                    after = cache_figures(servers["cached"])
                    cache = {
                        "hits": after.get("hits", 0) - before.get("hits", 0),
                        "misses": after.get("misses", 0) - before.get("misses", 0),
                        "entries": after.get("entries"),
                    }
    figures: dict[str, Any] = {
        s.key: {"label": s.label, "server": s.server, **median_of(repeats[s.key])}
        | {"repeats": repeats[s.key]}
        for s in plan
    }
    figures["cached"]["cache"] = cache
    ratios = {}
    for c in compared:  # per repeat (its rounds alternated the two), then the median
        pairs = list(zip(repeats[c.ours], repeats[c.bare], strict=True))
        speed = [o["rps"] / b["rps"] for o, b in pairs if b["rps"]]
        cpu = [
            (o["server_cpu_ms_per_request"], b["server_cpu_ms_per_request"])
            for o, b in pairs
            if o["server_cpu_ms_per_request"] and b["server_cpu_ms_per_request"]
        ]
        ratio = statistics.median(speed) if speed else None
        ratios[c.ours] = {
            "label": c.label,
            "bare": c.bare,
            "throughput_ratio": None if ratio is None else round(ratio, 3),
            "throughput_ratios": [round(x, 3) for x in speed],
            "goal": c.goal,
            "met": None if c.goal is None else ratio is not None and ratio >= c.goal,
            "server_cpu_per_request_ratio": (
                round(statistics.median(o / b for o, b in cpu), 3) if cpu else None
            ),
            "extra_server_cpu_ms_per_request": (
                round(statistics.median(o - b for o, b in cpu), 3) if cpu else None
            ),
        }
    return {
        "benchmark": "serve",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe(
            duckdb=version("duckdb"),
            fastapi=version("fastapi"),
            uvicorn=version("uvicorn"),
            usearch=version("usearch"),
        ),
        "settings": {
            "rows": args.rows,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "concurrency": args.concurrency,
            "threads": args.threads,
            "repeat": args.repeat,
        },
        "product": {
            "model": MODEL,
            "release": served.release,
            "snapshot": served.snapshot,
            "files": len(served.files),
        },
        "queries": {q.shape.name: {"sql": q.sql, "param": q.param} for q in served.queries},
        "online_lookup": {"pointer": served.lookup.pointer, "records": served.lookup.records},
        "features": {"entities": ENTITIES, "rows": FEATURE_ROWS, "unknown_keys": UNKNOWN},
        "vectors": {
            "rows": VECTOR_ROWS,
            "dimensions": DIMENSIONS,
            "clusters": CLUSTERS,
            "k": K,
            "metric": served.graph.metric,
            "connectivity": served.graph.connectivity,
            "expansion": served.graph.expansion,
        },
        "checked": checked,
        "scenarios": figures,
        "vs_bare": ratios,
    }


def _ms(value: float | None, sign: str = "") -> str:
    return "-" if value is None else f"{value:{sign}.2f}"


def table(result: dict[str, Any]) -> str:
    settings = result["settings"]
    lines = [
        f"serve benchmark: {settings['rows']:,} rows, {settings['concurrency']} clients, "
        f"{settings['seconds']:g} s per scenario in {settings['rounds']} rounds, "
        f"--threads {settings['threads']}, {result['machine']['cpus']} CPUs"
        + (f", medians of {settings['repeat']}" if settings["repeat"] > 1 else ""),
        "",
        f"{'scenario':<40} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
        f"{'server CPU ms/req':>18}",
    ]
    for figures in result["scenarios"].values():
        lines.append(
            f"{figures['label']:<40} {figures['rps']:>9.1f} {_ms(figures['p50_ms']):>8} "
            f"{_ms(figures['p99_ms']):>8} {figures['errors']:>7} "
            f"{_ms(figures['server_cpu_ms_per_request']):>18}"
        )
    lines.append("")
    for c in result["vs_bare"].values():
        ratio, cpu = c["throughput_ratio"], c["server_cpu_per_request_ratio"]
        goal = "" if c["goal"] is None else f" (goal >= {c['goal']}: "
        goal += "" if c["goal"] is None else ("met)" if c["met"] else "NOT met)")
        lines.append(
            f"headwater / bare, {c['label']}: throughput "
            f"{'-' if ratio is None else f'{ratio:.2f}x'}{goal}; server CPU per request "
            f"{'-' if cpu is None else f'{cpu:.2f}x'} "
            f"({_ms(c['extra_server_cpu_ms_per_request'], '+')} ms)"
            + (
                f"; per repeat {', '.join(f'{x:.2f}' for x in c['throughput_ratios'])}"
                if len(c["throughput_ratios"]) > 1
                else ""
            )
        )
    cache = result["scenarios"]["cached"].get("cache", {})
    measured = list(result["scenarios"].values())
    slice_ms = settings["seconds"] / settings["rounds"] * 1000
    for f in measured:
        if f["p50_ms"] is not None and f["p50_ms"] * 5 > slice_ms:
            lines.append(
                f"note: {f['label'].strip()}: under 5 requests per client in a "
                f"{slice_ms / 1000:g} s slice; coarse figures (more --seconds, fewer --rounds)"
            )
    checked = result["checked"]
    lines += [
        f"searches' recall@{result['vectors']['k']} against an exact search: headwater "
        f"{checked['recall_headwater']}, filtered {checked['recall_headwater_where']}, bare "
        f"{checked['recall_bare']} (the same rows as bare.py: {checked['same_rows_as_bare']})",
        f"cached server while timed (last repeat): {cache.get('hits', 0):,} hits, "
        f"{cache.get('misses', 0):,} misses",
        f"CPU while timed{' (medians)' if settings['repeat'] > 1 else ''}: load generator "
        f"{sum(f['client_cpu_s'] for f in measured):.1f} s, other processes "
        f"{sum(f['other_cpu_s'] for f in measured):.1f} s of "
        f"{settings['seconds'] * len(measured) * result['machine']['cpus']:g} CPU-s",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the product (1M)")
    parser.add_argument("--seconds", type=float, default=10, help="per scenario (10)")
    parser.add_argument(
        "--rounds", type=int, default=4, help="slices of --seconds, alternating servers (4)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument(
        "--threads", type=int, default=16, help="the servers' --threads (16, serve's default)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="times each figure (median; 1)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=20,
        help="seconds to wait at most for other processes to go idle before timing (20)",
    )
    args = parser.parse_args()
    if min(args.rows, args.seconds, args.rounds, args.concurrency, args.repeat) <= 0:
        parser.error("--rows, --seconds, --rounds, --concurrency and --repeat must be positive")

    def say(text: str) -> None:
        print(text, file=sys.stderr if args.format == "json" else sys.stdout, flush=True)

    result = measure(args, say)
    (OUT / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        print("\n" + table(result))
        print(f"\nwritten: {OUT / 'latest.json'}")


if __name__ == "__main__":
    main()
