"""Materializations: one strategy per model kind, each built as ASTs the engine runs."""

from __future__ import annotations

from headwater.contracts import ModelKind
from headwater.models import Model
from headwater.orchestrate.materialize.append import Append
from headwater.orchestrate.materialize.base import Job, Materialization
from headwater.orchestrate.materialize.by_key import ByKey
from headwater.orchestrate.materialize.by_time import ByTime
from headwater.orchestrate.materialize.ephemeral import Ephemeral
from headwater.orchestrate.materialize.mview import MaterializedView
from headwater.orchestrate.materialize.python import Python
from headwater.orchestrate.materialize.quarantine import route
from headwater.orchestrate.materialize.scd2 import Scd2
from headwater.orchestrate.materialize.table import Table
from headwater.orchestrate.materialize.view import View

STRATEGIES: dict[ModelKind, Materialization] = {
    ModelKind.TABLE: Table(),
    ModelKind.VIEW: View(),
    ModelKind.EPHEMERAL: Ephemeral(),
    ModelKind.INCREMENTAL_BY_TIME: ByTime(),
    ModelKind.APPEND: Append(),
    ModelKind.INCREMENTAL_BY_KEY: ByKey(),
    ModelKind.SCD2: Scd2(),
    ModelKind.MATERIALIZED_VIEW: MaterializedView(),
}
PYTHON = Python()


def strategy(model: Model) -> Materialization:
    """How `model` is stored: a Python model by its function, any other by its kind."""
    return PYTHON if model.function is not None else STRATEGIES[model.config.kind]


__all__ = ["Job", "Materialization", "route", "strategy"]
