"""What every materialization gets: one version of one model to write, as a `Job`.

A materialization turns a model's query into a stored version — replace it whole, insert the
new intervals, merge new versions by key, restate a history — as sqlglot ASTs the engine
renders and runs. It neither plans (which intervals or batches: `orchestrate.incremental`,
`build._Builder`) nor audits nor publishes: the build does that around it, in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sqlglot import exp

from headwater.engine import Engine
from headwater.models import Model
from headwater.orchestrate.incremental import IntervalPlan

if TYPE_CHECKING:
    from headwater.orchestrate.materialize.mview import Refresh


@dataclass
class Job:
    """One version of one model to write, on one engine cursor."""

    cursor: Engine
    model: Model
    physical: str  # the version's table (or view): `hw_<zone>.<name>__<fingerprint>`
    # the model's query over the versions it reads, in the engine's dialect: a finished AST,
    # or the text the template made of it (`verbatim`), on the hot path of small models
    query: exp.Expr
    # append family: the query over every batch of its raw tables, and over the new ones only
    everything: Callable[[], exp.Query]
    over_new: Callable[[], exp.Query]
    upstream: Mapping[str, str]  # what it reads → the physical table it reads it from
    new: dict[str, list[str]] | None = None  # append family: unseen batches (None: all)
    intervals: IntervalPlan | None = None  # incremental_by_time: what to write
    continued_rows: int | None = None  # rows of the version an incremental write continues
    refresh: Refresh | None = None  # materialized_view: the buckets to refresh (None: all)

    @property
    def target(self) -> exp.Table:
        """The version's table as an AST, made from its parts (parsing the name costs more
        than the statement's other nodes)."""
        schema, table = self.physical.split(".")
        return exp.table_(table, schema, quoted=True)

    def count(self) -> int:
        return self.cursor.row_counts([self.physical])[self.physical]


class Materialization(Protocol):
    """How one model kind stores a version."""

    def write(self, job: Job) -> int | None:
        """Write the version; its row count (None: a view, counted by nobody)."""
        ...

    def one_statement(self, job: Job) -> bool:
        """Whether `write` is a single statement, which commits alone (no transaction
        needed when nothing audits it afterwards)."""
        ...


def replace_table(target: exp.Table, query: exp.Expr) -> exp.Create:
    """`CREATE OR REPLACE TABLE target AS query`."""
    return exp.Create(this=target, kind="TABLE", replace=True, expression=query)


def count_star(table: exp.Table) -> exp.Select:
    return exp.select(exp.Count(this=exp.Star())).from_(table)
