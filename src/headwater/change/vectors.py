"""Vector indexes: nearest neighbours over a published model's embedding column.

An index is a file beside the project's state (`.headwater/indexes/<product>/<snapshot>-<name>
.usearch`), one per product snapshot — so one per data state a release serves, never inside
the warehouse file, and rebuildable from the product whenever it is missing. It is built when
the product is published (a run pays for it once, not the first reader) with usearch's HNSW
graph; a row's key in it is its position in the snapshot (files in order, rows in file order).

A search asks for `k` rows among candidates (the rows a filter and the caller's row policy
let through). Few candidates (`exact_below`): every candidate is compared, exactly. Many: the
graph is asked for more than `k` neighbours, as many more as the filter is selective, and
asked again for more until `k` candidates are among them — and compared exactly once that
would be most of the graph. So a filtered search returns `k` rows whenever `k` exist
(pgvector's filtered HNSW can return fewer: pgvector#259), and says when fewer exist.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from headwater.contracts.specs import VectorIndex
from headwater.engine.base import FILE_INDEX, FILE_ROW, Engine
from headwater.errors import DataError

if TYPE_CHECKING:
    from usearch.index import Index

INDEXES = Path(".headwater", "indexes")
SUFFIX = ".usearch"


def index_path(root: Path, product: str, snapshot_id: int, name: str) -> Path:
    """Where the index `name` of one product snapshot lives."""
    return root / INDEXES / product / f"{snapshot_id}-{name}{SUFFIX}"


@dataclass(frozen=True)
class Vectors:
    """The embeddings of one snapshot, by row position; a row without one is not `valid`."""

    matrix: np.ndarray[Any, np.dtype[np.float32]]  # (rows, dimensions)
    valid: np.ndarray[Any, np.dtype[np.bool_]]

    @property
    def rows(self) -> int:
        return int(self.matrix.shape[0])


def read_vectors(engine: Engine, files: Sequence[str], column: str, *, model: str) -> Vectors:
    """The column's vectors in row-position order.

    Raises:
        DataError: the column is not a list of numbers, or its lists differ in length.
    """
    if not files:
        return Vectors(np.zeros((0, 0), np.float32), np.zeros(0, np.bool_))
    scan = engine.scan(files, positions=True)
    query = (
        exp.select(exp.column(column, quoted=True))
        .from_(scan)
        .order_by(exp.column(FILE_INDEX), exp.column(FILE_ROW))
    )
    data = engine.read(query).column(0).combine_chunks()
    kind = data.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and not (
        pa.types.is_fixed_size_list(kind)
    ):
        raise DataError(
            f"{model}.{column} is {kind}, not an embedding (a list of numbers)",
            hint="index a FLOAT[] or DOUBLE[] column, e.g. `embedding::FLOAT[384]`",
        )
    valid = data.is_valid().to_numpy(zero_copy_only=False)
    lengths = pc.list_value_length(data).to_numpy(zero_copy_only=False)
    present = lengths[valid]
    if present.size == 0:
        return Vectors(np.zeros((len(data), 0), np.float32), np.zeros(len(data), np.bool_))
    dim = int(present[0])
    if (present != dim).any() or dim == 0:
        raise DataError(
            f"{model}.{column}: embeddings of {sorted(set(present.tolist()))[:5]} dimensions; "
            "an index needs every one of the same length",
            hint="fix the model so every row's vector has one length (or NULL)",
        )
    matrix = np.zeros((len(data), dim), np.float32)
    flat = pc.list_flatten(data.filter(pa.array(valid))).to_numpy(zero_copy_only=False)
    matrix[valid] = flat.astype(np.float32).reshape(-1, dim)
    return Vectors(matrix, valid.astype(np.bool_))


def build(spec: VectorIndex, vectors: Vectors, path: Path | None) -> Index | None:
    """The HNSW graph of the valid vectors (None below `exact_below`: search is exact), saved
    at `path` (written aside, then renamed: a reader never opens half a file)."""
    keys = np.flatnonzero(vectors.valid).astype(np.uint64)
    if len(keys) <= spec.exact_below:
        return None
    graph = _graph(spec, vectors.matrix.shape[1])
    graph.add(keys, vectors.matrix[keys], threads=0)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        graph.save(str(partial))
        partial.replace(path)
    return graph


def open_graph(spec: VectorIndex, vectors: Vectors, path: Path) -> Index | None:
    """The saved graph at `path` (memory-mapped), or built again if it is missing."""
    if int(vectors.valid.sum()) <= spec.exact_below:
        return None
    if path.exists():
        graph = _graph(spec, vectors.matrix.shape[1])
        try:
            graph.view(str(path))  # memory-mapped: no copy of the graph in this process
        except (RuntimeError, ValueError):
            pass  # unreadable (cut short, another version's): made again below
        else:
            if graph.size == int(vectors.valid.sum()):
                return graph
    return build(spec, vectors, path)


def _graph(spec: VectorIndex, dimensions: int) -> Index:
    from usearch.index import Index

    return Index(
        ndim=dimensions,
        metric=spec.metric,
        dtype="f32",
        connectivity=spec.connectivity,
        expansion_add=min(spec.expansion, 64),  # building is the slow half: 64 keeps recall
        expansion_search=spec.expansion,
    )


@dataclass(frozen=True)
class Found:
    rows: list[int]  # row positions, nearest first
    distances: list[float]
    exact: bool  # every candidate was compared
    candidates: int  # how many rows could be returned


class Searcher:
    """Searches of one index over one snapshot."""

    def __init__(self, spec: VectorIndex, vectors: Vectors, graph: Index | None):
        self.spec, self.vectors, self.graph = spec, vectors, graph
        self._lock = threading.Lock()  # usearch's search is not documented as thread-safe

    @property
    def dimensions(self) -> int:
        return int(self.vectors.matrix.shape[1])

    def search(
        self, query: np.ndarray[Any, Any], k: int, candidates: np.ndarray[Any, Any] | None
    ) -> Found:
        """The `k` nearest rows among `candidates` (row positions; None: every row)."""
        valid = self.vectors.valid
        pool = np.flatnonzero(valid) if candidates is None else candidates[valid[candidates]]
        query = np.asarray(query, np.float32)
        if self.graph is None or len(pool) <= self.spec.exact_below:
            return self._exact(query, k, pool)
        allowed = None
        if candidates is not None:
            allowed = np.zeros(len(valid), np.bool_)
            allowed[pool] = True
        total = int(valid.sum())
        # ask for as many more neighbours as the filter is selective, and twice that again
        count = min(total, max(k, math.ceil(k * total / len(pool) * 2)))
        while True:
            with self._lock:
                matches = self.graph.search(query, count)
            keys = np.asarray(matches.keys, np.int64)
            distances = np.asarray(matches.distances, np.float64)
            if allowed is not None:
                keep = allowed[keys]
                keys, distances = keys[keep], distances[keep]
            if len(keys) >= k or count >= total:
                return Found(keys[:k].tolist(), distances[:k].tolist(), False, len(pool))
            if count * 4 >= total // 2:  # most of the graph: compare every candidate instead
                return self._exact(query, k, pool)
            count *= 4

    def _exact(self, query: np.ndarray[Any, Any], k: int, pool: np.ndarray[Any, Any]) -> Found:
        if len(pool) == 0:
            return Found([], [], True, 0)
        distances = distance(self.spec.metric, self.vectors.matrix[pool], query)
        take = min(k, len(pool))
        nearest = (
            np.argpartition(distances, take - 1)[:take]
            if take < len(pool)
            else np.arange(len(pool))
        )
        order = nearest[np.lexsort((pool[nearest], distances[nearest]))]
        return Found(pool[order].tolist(), distances[order].astype(float).tolist(), True, len(pool))


def distance(
    metric: str, matrix: np.ndarray[Any, Any], query: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """The distances usearch computes for `metric`, of each row of `matrix` to `query`."""
    out: np.ndarray[Any, Any]
    if metric == "l2sq":
        diff = matrix - query
        out = np.einsum("ij,ij->i", diff, diff).astype(np.float64)
        return out
    dots = (matrix @ query).astype(np.float64)
    if metric == "ip":
        out = 1.0 - dots
        return out
    norms = np.linalg.norm(matrix, axis=1) * float(np.linalg.norm(query))
    with np.errstate(divide="ignore", invalid="ignore"):
        similarity = np.where(norms > 0, dots / norms, 0.0)
    return 1.0 - similarity
