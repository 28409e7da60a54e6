"""A run is a plan of typed tasks run by an executor; its events say which run and task."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from headwater.observe import Event, TaskStatus
from headwater.orchestrate import Stores, run
from headwater.orchestrate.executor import Executor
from headwater.orchestrate.plan import Plan, Task, TaskKind, plan_run
from headwater.project import load_project
from tests.conftest import NOW


def test_a_run_plans_ingests_in_order_then_models_after_what_they_read(shop: Path) -> None:
    project = load_project(shop)
    tables = [c.table for c in project.contracts.values()]
    plan = plan_run(project, ingest=tables, build=project.dag.order, publish="prod")

    ingests = plan.of(TaskKind.INGEST)
    assert [t.subject for t in ingests] == tables
    assert all(t.after == {ingests[i - 1].id} for i, t in enumerate(ingests) if i)
    for task in plan.of(TaskKind.BUILD):
        reads = {f"build:{d}" for d in project.dag.upstream[task.subject]}
        assert task.after == reads | {t.id for t in ingests}
    (publish,) = plan.of(TaskKind.PUBLISH)
    assert publish.after == {t.id for t in plan.tasks.values() if t is not publish}


def test_a_selection_plans_only_its_models(shop: Path) -> None:
    project = load_project(shop)
    plan = plan_run(project, build=["clean.orders"], publish="prod")
    assert [t.id for t in plan.tasks.values()] == ["build:clean.orders", "publish:prod"]


def test_a_task_runs_in_the_pool_its_contract_its_model_or_a_model_tag_names(shop: Path) -> None:
    settings = shop / "headwater.yml"
    settings.write_text(settings.read_text() + "pools: {postgres: 1, heavy: 2}\n")
    with (shop / "contracts" / "orders.yml").open("a") as contract:
        contract.write("pool: postgres\n")
    _header(shop / "models" / "clean" / "orders.sql", "pool: heavy\ntags: [postgres]")
    _header(shop / "models" / "marts" / "revenue_daily.sql", "tags: [daily, heavy, postgres]")
    _header(shop / "models" / "clean" / "customers.sql", "tags: [nightly]")
    project = load_project(shop)
    tables = [c.table for c in project.contracts.values()]
    plan = plan_run(project, ingest=tables, build=project.dag.order, publish="prod")

    pools = {t.id: t.pool for t in plan.tasks.values() if t.pool}
    assert pools == {
        "ingest:raw.orders": "postgres",  # the contract's pool:
        "build:clean.orders": "heavy",  # the model's pool: wins over its tags
        "build:marts.revenue_daily": "heavy",  # its first tag naming a pool
    }


def _header(model: Path, lines: str) -> None:
    """Add `lines` to the header of a model's SQL file."""
    model.write_text(model.read_text().replace("/* headwater\n", f"/* headwater\n{lines}\n", 1))


class _Recorder:
    """Tasks whose subject starts with "now" settle at once; the others wait at a barrier
    of two, so they finish only if two run at the same time."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2, timeout=10)
        self.finished: list[str] = []
        self.threads: dict[str, str] = {}

    def settle(self, task: Task) -> str | None:
        self.threads[task.id] = threading.current_thread().name
        return "settled" if task.subject.startswith("now") else None

    def work(self, task: Task) -> str:
        self.threads[task.id] = threading.current_thread().name
        self.barrier.wait()
        return "worked"

    def done(self, task: Task, result: str) -> None:
        self.finished.append(task.id)


def test_the_executor_runs_independent_tasks_side_by_side_and_settles_the_rest_inline() -> None:
    plan = Plan()
    first = plan.add(Task(TaskKind.BUILD, "now.first"))
    a = plan.add(Task(TaskKind.BUILD, "a", frozenset({first.id})))
    b = plan.add(Task(TaskKind.BUILD, "b", frozenset({first.id})))
    plan.add(Task(TaskKind.PUBLISH, "now.prod", frozenset({a.id, b.id})))

    handler = _Recorder()
    results = Executor[str](2).run(plan, handler)

    # a and b met at the barrier: they ran at once, on two workers
    assert results == {
        "build:now.first": "settled",
        "build:a": "worked",
        "build:b": "worked",
        "publish:now.prod": "settled",
    }
    assert handler.finished[0] == "build:now.first"
    assert handler.finished[-1] == "publish:now.prod"
    assert handler.threads["build:a"] != handler.threads["build:b"]
    assert handler.threads["build:now.first"] == threading.current_thread().name


def test_every_event_of_a_run_names_the_run_and_its_task(shop: Path) -> None:
    project = load_project(shop)
    events: list[Event] = []
    stores = Stores.open(project)
    try:
        report = run(project, stores, now=NOW + timedelta(minutes=1), sink=events.append)
    finally:
        stores.close()
    assert report.ok, report.summary()
    assert events and {e.run_id for e in events} == {report.run_id}
    built = [e for e in events if e.stage == "build" and e.status is TaskStatus.BUILT]
    assert {e.task for e in built} == {f"build:{n}" for n in project.dag.order} - {
        f"build:{n}" for n, m in project.models.items() if m.config.kind.value == "ephemeral"
    }
    for event in built:
        model = project.models[event.subject]
        assert set(event.inputs) == set(model.depends_on)
        assert event.outputs and event.outputs[0].startswith(f"hw_{model.zone}.")
    landed = [e for e in events if e.stage == "ingest" and e.status is TaskStatus.LANDED]
    assert {e.outputs for e in landed} == {(c.table,) for c in project.contracts.values()}
