"""Vector search over the data API: `POST /v1/search/{index}`.

    {"vector": [0.1, …], "k": 10, "where": {"country": "eq.DE"}, "fields": ["id", "title"]}

The candidates are the rows the caller's role may see (row policy) that pass `where` (the
same filters as the rows API, on the values the role sees); the `k` nearest of them come back
nearest first with their distance — or all of them, and `exhausted: true`, when fewer than
`k` exist. The index read is the one of the product snapshot the environment serves now.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from sqlglot import exp

from headwater.change import vectors
from headwater.contracts.specs import Serving, VectorIndex
from headwater.engine.base import FILE_INDEX, FILE_ROW
from headwater.errors import DataError
from headwater.project import Project
from headwater.serve.errors import ApiError
from headwater.serve.query import Columns, filtered, parse
from headwater.serve.reader import Reader, Source

MAX_K = 1000
_SHIFT = 1 << 32  # a row's place as one number: file index * 2^32 + row in file
_ALL = Serving(aggregates=False)
Offsets = np.ndarray[Any, np.dtype[np.int64]]  # the row position each file starts at


def indexes(project: Project) -> dict[str, tuple[str, VectorIndex]]:
    """Every vector index of the project: name → (model, spec)."""
    return {
        name: (model.name, spec)
        for model in project.models.values()
        for name, spec in model.sidecar.vectors.items()
    }


class Search:
    """The searchers of the snapshots served, made on first use and kept per snapshot."""

    def __init__(self, project: Project, reader: Reader):
        self.project, self.reader = project, reader
        self.indexes = indexes(project)
        self._searchers: dict[
            tuple[str, int, str], tuple[vectors.Searcher, np.ndarray[Any, Any]]
        ] = {}
        self._lock = threading.Lock()

    def search(
        self,
        name: str,
        source: Source,
        columns: Columns,
        row_policy: exp.Expr | None,
        *,
        vector: Sequence[float],
        k: int,
        where: Mapping[str, str | Sequence[str]],
        fields: Sequence[str] | None,
    ) -> dict[str, Any]:
        model, spec = self.indexes[name]
        searcher, offsets = self._searcher(name, spec, source)
        if len(vector) != searcher.dimensions:
            raise ApiError(
                400,
                f"the vector has {len(vector)} dimensions; index {name} has {searcher.dimensions}",
            )
        if not 1 <= k <= MAX_K:
            raise ApiError(400, f"k={k} is outside 1..{MAX_K}")
        shown = [c for c in columns.types if c != spec.column]
        asked = list(fields) if fields else shown
        params = [(f"where.{c}", v) for c, vs in where.items() for v in _each(vs)]
        params.append(("fields", ",".join(asked)))
        request = parse(params, columns, _ALL)
        candidates = None
        if request.filters or row_policy is not None:
            candidates = self._candidates(source, request, columns, row_policy, offsets)
        found = searcher.search(np.asarray(vector, np.float32), k, candidates)
        rows = self._rows(source, request, columns, row_policy, offsets, found.rows)
        return {
            "index": name,
            "model": model,
            "release": source.release,
            "snapshot": source.product.snapshot_id,
            "k": k,
            "exact": found.exact,
            "candidates": found.candidates,
            "exhausted": len(found.rows) < k,
            "results": [
                {"distance": d, "row": rows[r]}
                for r, d in zip(found.rows, found.distances, strict=True)
            ],
        }

    def _searcher(
        self, name: str, spec: VectorIndex, source: Source
    ) -> tuple[vectors.Searcher, np.ndarray[Any, Any]]:
        key = (source.product.product, source.product.snapshot_id, name)
        with self._lock:
            found = self._searchers.get(key)
            if found is None:
                engine = self.reader.cursor()
                try:
                    matrix = vectors.read_vectors(
                        engine, source.files, spec.column, model=source.model
                    )
                except DataError as err:
                    raise ApiError(500, err.message, hint=err.hint) from None
                path = vectors.index_path(self.project.root, *key)
                graph = vectors.open_graph(spec, matrix, path)
                found = (vectors.Searcher(spec, matrix, graph), self._offsets(source))
                self._searchers = {
                    k: v for k, v in self._searchers.items() if k[0] != key[0] or k[2] != name
                }
                self._searchers[key] = found
            return found

    def _offsets(self, source: Source) -> np.ndarray[Any, Any]:
        """The row position each file of the snapshot starts at."""
        if not source.files:
            return np.zeros(1, np.int64)
        counts = self.reader.cursor().read(
            exp.select(exp.column(FILE_INDEX), exp.Count(this=exp.Star()).as_("n"))
            .from_(self.reader.scan(source, positions=True))
            .group_by(exp.column(FILE_INDEX))
        )
        sizes = np.zeros(len(source.files) + 1, np.int64)
        for index, n in zip(
            counts.column(0).to_pylist(), counts.column(1).to_pylist(), strict=True
        ):
            sizes[int(index)] = int(n)
        return np.cumsum(sizes)[:-1]  # file i (1-based) starts at offsets[i - 1]

    def _candidates(
        self,
        source: Source,
        request: Any,
        columns: Columns,
        row_policy: exp.Expr | None,
        offsets: np.ndarray[Any, Any],
    ) -> np.ndarray[Any, Any]:
        rows = self._visible(source, request, columns, row_policy).select(
            exp.column(FILE_INDEX), exp.column(FILE_ROW)
        )
        table = self.reader.cursor().read(rows)
        files = table.column(0).to_numpy(zero_copy_only=False).astype(np.int64)
        within = table.column(1).to_numpy(zero_copy_only=False).astype(np.int64)
        positions: np.ndarray[Any, Any] = offsets[files - 1] + within
        return positions

    def _visible(
        self, source: Source, request: Any, columns: Columns, row_policy: exp.Expr | None
    ) -> exp.Select:
        """The rows the role sees that pass the request's filters, with their positions."""
        return filtered(
            request,
            self.reader.scan(source, positions=True),
            columns,
            row_policy=row_policy,
            carry=(FILE_INDEX, FILE_ROW),
        )

    def _rows(
        self,
        source: Source,
        request: Any,
        columns: Columns,
        row_policy: exp.Expr | None,
        offsets: np.ndarray[Any, Any],
        positions: list[int],
    ) -> dict[int, dict[str, Any]]:
        """The fields of the rows found, by position, as the role sees them."""
        if not positions:
            return {}
        starts = offsets.tolist()
        places = {}
        for position in positions:
            file = int(np.searchsorted(offsets, position, side="right"))  # 1-based
            places[file * _SHIFT + (position - starts[file - 1])] = position
        place = exp.Add(
            this=exp.Mul(this=exp.column(FILE_INDEX), expression=exp.Literal.number(_SHIFT)),
            expression=exp.column(FILE_ROW),
        )
        bare = type(request)(fields=request.fields)
        query = (
            self._visible(source, bare, columns, row_policy)
            .select(*[exp.column(f, quoted=True) for f in request.fields])
            .select(place.as_("_hw_place"))
            .where(place.copy().isin(*[exp.Literal.number(p) for p in places]))
        )
        table: pa.Table = self.reader.cursor().read(query)
        out = {}
        for row in table.to_pylist():
            out[places[row.pop("_hw_place")]] = row
        return out


def _each(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)
