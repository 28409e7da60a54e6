"""Engine adapters (band 1): DuckDB now; Spark and PostgreSQL implement the same protocol."""

from headwater.engine.base import Engine

__all__ = ["Engine"]
