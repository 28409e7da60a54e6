"""The Engine protocol: the handful of operations every stage needs from a SQL engine."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

import pyarrow as pa
from sqlglot import exp

Statement = exp.Expression | str


class Engine(Protocol):
    """What stages ask of an engine. DuckDB is the reference; an in-memory DuckDB is the double.

    Statements are sqlglot ASTs (rendered in the engine's dialect at the edge) or SQL text
    already in that dialect; parameters are bound, never formatted in.
    """

    dialect: str

    def execute(self, statement: Statement, params: Mapping[str, Any] | None = None) -> None: ...

    def read(self, statement: Statement, params: Mapping[str, Any] | None = None) -> pa.Table: ...

    def stream(
        self, statement: Statement, *, batch_rows: int = 100_000
    ) -> pa.RecordBatchReader: ...

    def register(self, name: str, data: pa.Table | pa.RecordBatchReader) -> None: ...

    def unregister(self, name: str) -> None: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    def cursor(self) -> Engine: ...

    def close(self) -> None: ...
