"""A run's plan: typed tasks with explicit dependencies, made before anything runs.

One task per contract to land (`ingest:raw.orders`), per model to build
(`build:marts.daily`) and one to publish the build (`publish:prod`). A model's task waits
for the models it reads, and — as a run has always done — for every ingest of the run, so
models read what this run landed; publishing waits for every build (and ingest). The executor
(`orchestrate.executor`) runs the plan; a scheduler or a backfill makes plans of its own
(per interval, per batch) from the same tasks.
"""

from __future__ import annotations

import graphlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

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

    @property
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
    models `build` and publishes them to the environment `publish`."""
    plan = Plan()
    landed: list[str] = []
    for table in ingest:
        # one at a time, as they are listed: landing shares the lake's catalog
        task = plan.add(Task(TaskKind.INGEST, table, frozenset(landed[-1:])))
        landed.append(task.id)
    chosen = set(build)
    built = []
    for name in project.dag.order:
        if name not in chosen:
            continue
        reads = {f"{TaskKind.BUILD.value}:{d}" for d in project.dag.upstream[name] if d in chosen}
        built.append(plan.add(Task(TaskKind.BUILD, name, frozenset({*reads, *landed}))).id)
    if publish is not None:
        plan.add(Task(TaskKind.PUBLISH, publish, frozenset({*built, *landed})))
    return plan
