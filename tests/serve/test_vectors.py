"""Vector search: an index per product snapshot, recall against exact search, and filtered
searches that return k rows whenever k exist — in the searcher, and through real HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn

from headwater.change.vectors import INDEXES, Searcher, Vectors, build
from headwater.contracts.specs import VectorIndex
from headwater.project import load_project
from headwater.serve.app import create_app
from tests.badinput.harness import write
from tests.change.test_releases import ok


def clustered(rows: int, dim: int, *, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings as models make them: points around 100 topics; queries drawn alike."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(100, dim)).astype(np.float32)
    data = centers[rng.integers(0, 100, rows)] + 0.5 * rng.normal(size=(rows, dim))
    queries = centers[rng.integers(0, 100, 100)] + 0.5 * rng.normal(size=(100, dim))
    return data.astype(np.float32), queries.astype(np.float32)


@pytest.fixture(scope="module")
def hundred_thousand() -> tuple[Searcher, np.ndarray]:
    data, queries = clustered(100_000, 48)
    spec = VectorIndex(column="e")
    vectors = Vectors(data, np.ones(len(data), np.bool_))
    return Searcher(spec, vectors, build(spec, vectors, None)), queries


@pytest.mark.slow
def test_recall_at_10_against_exact_search_on_100000_vectors(
    hundred_thousand: tuple[Searcher, np.ndarray],
) -> None:
    searcher, queries = hundred_thousand
    assert searcher.graph is not None
    everything = np.arange(searcher.vectors.rows)
    hits = 0
    for query in queries:
        found = searcher.search(query, 10, None)
        assert not found.exact and len(found.rows) == 10
        assert found.distances == sorted(found.distances)
        truth = searcher._exact(query, 10, everything)
        hits += len(set(found.rows) & set(truth.rows))
    recall = hits / (10 * len(queries))
    assert recall >= 0.95, recall


@pytest.mark.slow
@pytest.mark.parametrize("share", [0.5, 0.05, 0.002])
def test_a_filtered_search_returns_k_rows_whenever_k_exist(
    hundred_thousand: tuple[Searcher, np.ndarray], share: float
) -> None:
    searcher, queries = hundred_thousand
    rng = np.random.default_rng(3)
    rows = searcher.vectors.rows
    candidates = np.sort(rng.choice(rows, size=int(rows * share), replace=False))
    # a graph search even for the rarest filter (below it every candidate is compared)
    graph_searcher = Searcher(
        VectorIndex(column="e", exact_below=50), searcher.vectors, searcher.graph
    )
    allowed = set(candidates.tolist())
    hits = 0
    for query in queries[:40]:
        found = graph_searcher.search(query, 10, candidates)
        assert len(found.rows) == 10 and set(found.rows) <= allowed  # k, and only candidates
        truth = searcher._exact(query, 10, candidates)
        hits += len(set(found.rows) & set(truth.rows))
    assert hits / 400 >= 0.9  # the nearest candidates, not just any 10 (HNSW is approximate)
    few = candidates[:3]
    found = graph_searcher.search(queries[0], 10, few)
    assert sorted(found.rows) == sorted(few.tolist()) and found.candidates == 3


def test_exact_search_orders_by_the_metric_and_skips_rows_without_a_vector() -> None:
    matrix = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [-1, 0]], np.float32)
    valid = np.array([True, True, True, False, True])
    for metric, nearest in (("cos", [0, 2, 1, 4]), ("l2sq", [0, 2, 1, 4]), ("ip", [2, 0, 1, 4])):
        searcher = Searcher(VectorIndex(column="e", metric=metric), Vectors(matrix, valid), None)
        found = searcher.search(np.array([1, 0.1], np.float32), 10, None)
        assert found.rows == nearest and found.exact and found.candidates == 4


SQL = """select i as id, 'c' || (i % 5) as cat,
       [sin(i), cos(i), sin(i * 0.5), cos(i * 0.3)]::float[4] as embedding
from range(400) t(i)
"""


@contextmanager
def serving(root: Path) -> Iterator[str]:
    app = create_app(load_project(root))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{base}/v1/health")
            break
        except httpx.TransportError:
            time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_search_over_http_with_filters_fields_and_exhaustion(tmp_path: Path) -> None:
    root = tmp_path
    write(root, "headwater.yml", "name: v\n")
    write(root, "models/marts/items.sql", SQL)
    write(
        root,
        "models/marts/items.yml",
        "serve: true\nvectors:\n  items_near: {column: embedding, exact_below: 50}\n",
    )
    ok(root, "run")
    [index] = list((root / INDEXES).rglob("*.usearch"))  # built by the run, beside the lake
    assert index.name.endswith("-items_near.usearch")
    query = [float(np.sin(7)), float(np.cos(7)), float(np.sin(3.5)), float(np.cos(2.1))]
    with serving(root) as base:
        answer = httpx.post(f"{base}/v1/search/items_near", json={"vector": query, "k": 5})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["release"] == 1 and len(body["results"]) == 5 and not body["exhausted"]
        assert body["results"][0]["row"] == {"id": 7, "cat": "c2"}  # itself, nearest
        distances = [r["distance"] for r in body["results"]]
        assert distances == sorted(distances) and distances[0] < 1e-5
        only = httpx.post(
            f"{base}/v1/search/items_near",
            json={"vector": query, "k": 7, "where": {"cat": "eq.c3"}, "fields": ["id"]},
        ).json()
        assert len(only["results"]) == 7 and all(r["row"]["id"] % 5 == 3 for r in only["results"])
        scarce = httpx.post(
            f"{base}/v1/search/items_near",
            json={"vector": query, "k": 10, "where": {"id": "in.(1,2,3)"}},
        ).json()
        assert scarce["exhausted"] and sorted(r["row"]["id"] for r in scarce["results"]) == [
            1,
            2,
            3,
        ]
        for bad, says in (
            ({"vector": [1.0, 2.0], "k": 5}, "2 dimensions"),
            ({"vector": query, "k": 0}, "k"),
            ({"vector": query, "where": {"nope": "eq.1"}}, "nope"),
            ({"vector": query, "where": {"id": "eq.1; drop table x"}}, "not a whole number"),
            ({"vector": "abc"}, "vector"),
            ({"vector": query, "extra": 1}, "extra"),
        ):
            refused = httpx.post(f"{base}/v1/search/items_near", json=bad)
            assert refused.status_code == 400 and says in refused.text, (bad, refused.text)
        index.unlink()  # rebuildable: a searcher made afresh builds it again
    with serving(root) as base:
        again = httpx.post(f"{base}/v1/search/items_near", json={"vector": query, "k": 5})
        assert again.json()["results"] == body["results"]
    assert index.exists()
