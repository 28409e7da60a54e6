"""Python models: the function gets its inputs as Arrow; what it returns is the version."""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from headwater.errors import EngineError
from headwater.models.python import call
from headwater.orchestrate.materialize.base import Job, replace_table

RESULT = "_hw_python_result"


class Python:
    def write(self, job: Job) -> int | None:
        cursor = job.cursor
        if not (cursor.capabilities.arrow_tables or cursor.capabilities.dataframes):
            raise EngineError(
                f"engine {cursor.dialect!r} cannot take Arrow data, which Python models return",
                hint="run Python models on the embedded engine (engine: duckdb)",
            )
        tables = {dep: job.upstream.get(dep) or dep for dep in job.model.depends_on}
        if cursor.capabilities.dataframes:
            # the engine's own DataFrames in (Spark's stay on the cluster); one of those, or
            # Arrow, out
            frames = {dep: cursor.frame(table) for dep, table in tables.items()}
            cursor.register(RESULT, call(job.model, frames, native=_native(frames)))
        else:
            inputs = {
                dep: cursor.read(exp.select(exp.Star()).from_(exp.to_table(table)))
                for dep, table in tables.items()
            }
            cursor.register(RESULT, call(job.model, inputs))
        try:
            return cursor.execute(replace_table(job.target, exp.select(exp.Star()).from_(RESULT)))
        finally:
            cursor.unregister(RESULT)

    def one_statement(self, job: Job) -> bool:
        return True


def _native(frames: dict[str, Any]) -> type | None:
    """The type of the engine's DataFrames (what a model may return as it is)."""
    return type(next(iter(frames.values()))) if frames else None
