"""A run's plan: typed tasks with explicit dependencies, made before anything runs.

One task per contract to land (`ingest:raw.orders`), per model to build
(`build:marts.daily`) and one to publish the build (`publish:prod`). A model's task waits
for the models it reads, and — as a run has always done — for every ingest of the run, so
models read what this run landed; publishing waits for every build (and ingest). The executor
(`orchestrate.executor`) runs the plan; a scheduler or a backfill makes plans of its own
(per interval, per batch) from the same tasks. A task's pool (headwater.yml's `pools:`) caps
how many tasks of that pool work at once.
"""

from __future__ import annotations

import graphlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from headwater.models import Model
from headwater.project import Project


class TaskKind(StrEnum):
    INGEST = "ingest"
    BUILD = "build"
    PUBLISH = "publish"


@dataclass(frozen=True)
class Task:
    kind: TaskKind
    subject: str  # a table (ingest), a model (build), an environment (publish)
    after: frozenset[str] = frozenset()  # ids of the tasks it waits for
    pool: str | None = None  # at most headwater.yml's pools[pool] such tasks work at once

    @cached_property  # the executor reads it a few times per task
    def id(self) -> str:
        return f"{self.kind.value}:{self.subject}"


@dataclass
class Plan:
    """Tasks by id, in the order they were planned (ties run in this order)."""

    tasks: dict[str, Task] = field(default_factory=dict)

    def add(self, task: Task) -> Task:
        self.tasks[task.id] = task
        return task

    def of(self, kind: TaskKind) -> list[Task]:
        return [t for t in self.tasks.values() if t.kind is kind]

    def sorter(self) -> graphlib.TopologicalSorter[str]:
        """A ready-to-run topological sorter over the task ids."""
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter(
            {t.id: [a for a in t.after if a in self.tasks] for t in self.tasks.values()}
        )
        sorter.prepare()
        return sorter


def plan_run(
    project: Project,
    *,
    ingest: Iterable[str] = (),
    build: Collection[str] = (),
    publish: str | None = None,
) -> Plan:
    """The plan of a run that lands the contracts `ingest` (tables, in this order), builds the
    models `build` and publishes them to the environment `publish`.

    A contract's task runs in the contract's `pool:`; a model's in its `pool:`, else in the
    first of its tags (header, then sidecar) that names one of headwater.yml's `pools:`."""
    plan = Plan()
    landed: list[str] = []
    contracts = project.raw_tables
    for table in ingest:
        # one at a time, as they are listed: landing shares the lake's catalog
        pool = contracts[table].pool if table in contracts else None
        task = plan.add(Task(TaskKind.INGEST, table, frozenset(landed[-1:]), pool))
        landed.append(task.id)
    chosen = set(build)
    built = []
    for name in project.dag.order:
        if name not in chosen:
            continue
        reads = {f"{TaskKind.BUILD.value}:{d}" for d in project.dag.upstream[name] if d in chosen}
        after = frozenset({*reads, *landed})
        pool = model_pool(project.models[name], project.settings.pools)
        built.append(plan.add(Task(TaskKind.BUILD, name, after, pool)).id)
    if publish is not None:
        plan.add(Task(TaskKind.PUBLISH, publish, frozenset({*built, *landed})))
    return plan


def model_pool(model: Model, pools: Collection[str]) -> str | None:
    """The pool a model's build runs in: its `pool:`, else its first tag naming a pool."""
    if model.config.pool is not None:
        return model.config.pool
    return next((t for t in (*model.config.tags, *model.sidecar.tags) if t in pools), None)
