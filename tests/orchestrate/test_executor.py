"""The executor runs a plan within its limits: `workers` tasks at once, `pools[p]` of pool p,
a full pool holding back only its own tasks, and says why a ready task waits."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import pytest

from headwater.orchestrate.executor import Executor
from headwater.orchestrate.plan import Plan, Task, TaskKind

TIMEOUT = 10  # seconds: only a guard against a hang, never what a test measures


class _Gated:
    """A handler whose tasks settle at once when their subject starts with "now"; the others
    work until the test opens their gate, and record who was working at the same time."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.gates: dict[str, threading.Event] = {}
        self.entered: list[str] = []
        self.finished: list[str] = []
        self.working = 0
        self.most = 0  # the most tasks working at once

    def settle(self, task: Task) -> str | None:
        return "settled" if task.subject.startswith("now") else None

    def work(self, task: Task) -> str:
        with self.changed:
            self.entered.append(task.id)
            self.working += 1
            self.most = max(self.most, self.working)
            gate = self.gates.setdefault(task.id, threading.Event())
            self.changed.notify_all()
        if task.subject.startswith("fail"):
            raise ValueError(f"{task.id} failed")
        assert gate.wait(TIMEOUT), f"{task.id}: its gate never opened"
        with self.changed:
            self.working -= 1
        return "worked"

    def done(self, task: Task, result: str) -> None:
        with self.changed:
            self.finished.append(task.id)
            self.changed.notify_all()

    def open(self, *task_ids: str) -> None:
        with self.changed:
            for task_id in task_ids:
                self.gates.setdefault(task_id, threading.Event()).set()

    def open_all(self, plan: Plan) -> None:
        self.open(*plan.tasks)

    def until(self, condition: Callable[[], bool]) -> None:
        with self.changed:
            assert self.changed.wait_for(condition, TIMEOUT), "the executor stopped short"


class _Waits:
    """What `on_wait` was told, in order."""

    def __init__(self, handler: _Gated) -> None:
        self.handler = handler
        self.told: list[tuple[str, str]] = []

    def __call__(self, task: Task, why: str) -> None:
        with self.handler.changed:
            self.told.append((task.id, why))
            self.handler.changed.notify_all()


@contextmanager
def running(
    plan: Plan, handler: _Gated, workers: int, pools: Mapping[str, int] | None = None
) -> Iterator[tuple[_Waits, dict[str, dict[str, str]]]]:
    """Run `plan` on a thread of its own while the test opens gates; then every gate opens
    and the run's results are there."""
    waits = _Waits(handler)
    out: dict[str, dict[str, str]] = {}
    executor = Executor[str](workers, pools=pools or {}, on_wait=waits)
    thread = threading.Thread(target=lambda: out.update(results=executor.run(plan, handler)))
    thread.start()
    try:
        yield waits, out
    finally:
        handler.open_all(plan)
        thread.join(TIMEOUT)
    assert not thread.is_alive()


def _plan(*tasks: tuple[str, str | None] | tuple[str, str | None, set[str]]) -> Plan:
    """Build tasks (subject, pool[, subjects it waits for]), in this order."""
    plan = Plan()
    for subject, pool, *after in tasks:
        waits = frozenset(f"build:{a}" for a in (after[0] if after else ()))
        plan.add(Task(TaskKind.BUILD, subject, waits, pool))
    return plan


def test_a_pool_runs_at_most_its_size_and_its_next_task_when_one_finishes() -> None:
    plan = _plan(("h1", "heavy"), ("h2", "heavy"), ("h3", "heavy"), ("h4", "heavy"))
    handler = _Gated()
    with running(plan, handler, workers=4, pools={"heavy": 2}) as (waits, out):
        handler.until(lambda: len(waits.told) == 2 and len(handler.entered) == 2)
        assert handler.entered == ["build:h1", "build:h2"]
        full = "pool heavy full (2 of 2 running: build:h1, build:h2)"
        assert waits.told == [("build:h3", full), ("build:h4", full)]

        handler.open("build:h2")
        handler.until(lambda: len(handler.entered) == 3)
        assert handler.entered[2] == "build:h3"  # in plan order
    assert handler.most == 2
    assert out["results"] == dict.fromkeys(plan.tasks, "worked")
    assert len(waits.told) == 2  # each waiting task is told once


def test_a_full_pool_holds_back_only_its_own_tasks() -> None:
    # pg2 comes before free in the plan, but its pool is full: free goes ahead
    plan = _plan(("pg1", "pg"), ("pg2", "pg"), ("free", None), ("other", "spare"))
    handler = _Gated()
    with running(plan, handler, workers=4, pools={"pg": 1, "spare": 3}) as (waits, _):
        handler.until(lambda: len(handler.entered) == 3 and len(waits.told) == 1)
        assert set(handler.entered) == {"build:pg1", "build:free", "build:other"}
        assert waits.told == [("build:pg2", "pool pg full (1 of 1 running: build:pg1)")]
        handler.open("build:free", "build:other")
        handler.until(lambda: len(handler.finished) == 2)
        assert "build:pg2" not in handler.entered  # still waiting for pg1, workers free

        handler.open("build:pg1")
        handler.until(lambda: "build:pg2" in handler.entered)
    assert handler.most <= 3


def test_ready_tasks_wait_for_a_worker_and_start_in_plan_order() -> None:
    # c becomes ready after b and d, yet starts before d: the plan's order, not arrival's
    plan = _plan(("a", None), ("b", None), ("c", None, {"a"}), ("d", None))
    handler = _Gated()
    with running(plan, handler, workers=1) as (waits, out):
        handler.until(lambda: len(waits.told) == 2)
        assert waits.told == [
            ("build:b", "the only worker busy"),
            ("build:d", "the only worker busy"),
        ]
        handler.open_all(plan)
    assert handler.entered == ["build:a", "build:b", "build:c", "build:d"]
    assert list(out["results"]) == handler.finished
    assert [task for task, _ in waits.told] == ["build:b", "build:d", "build:c"]


def test_every_busy_worker_is_the_reason_when_the_pool_has_room() -> None:
    plan = _plan(("a", "heavy"), ("b", None), ("c", "heavy"))
    handler = _Gated()
    with running(plan, handler, workers=2, pools={"heavy": 2}) as (waits, _):
        handler.until(lambda: len(waits.told) == 1)
        assert waits.told == [("build:c", "all 2 workers busy")]


def test_settled_tasks_take_no_slot() -> None:
    # b fills pool heavy when now.s (of heavy too) becomes ready: it is settled all the same
    plan = _plan(("a", None), ("b", "heavy"), ("now.s", "heavy", {"a"}))
    handler = _Gated()
    with running(plan, handler, workers=2, pools={"heavy": 1}) as (waits, out):
        handler.until(lambda: len(handler.entered) == 2)
        handler.open("build:a")
        handler.until(lambda: "build:now.s" in handler.finished)
        assert "build:b" not in handler.finished
    assert waits.told == []
    assert out["results"] == {"build:a": "worked", "build:now.s": "settled", "build:b": "worked"}
    assert list(out["results"]) == handler.finished


def test_an_exception_in_work_is_raised_by_run_and_what_follows_never_starts() -> None:
    plan = _plan(("fail", None), ("b", None), ("after", None, {"fail"}))
    handler = _Gated()
    handler.open_all(plan)
    with pytest.raises(ValueError, match="build:fail failed"):
        Executor[str](2).run(plan, handler)
    assert "build:after" not in handler.entered
    assert "build:fail" not in handler.finished


def test_a_plan_of_settled_tasks_runs_on_the_calling_thread_in_dependency_order() -> None:
    plan = _plan(("now.c", None, {"now.b"}), ("now.a", None), ("now.b", None, {"now.a"}))
    handler = _Gated()
    assert Executor[str](3).run(plan, handler) == {
        "build:now.a": "settled",
        "build:now.b": "settled",
        "build:now.c": "settled",
    }
    assert handler.finished == ["build:now.a", "build:now.b", "build:now.c"]


def test_a_task_waiting_for_a_worker_records_how_long_it_waited() -> None:
    plan = _plan(("first", None), ("second", None))
    handler = _Gated()
    executor = Executor[str](1)
    thread = threading.Thread(target=lambda: executor.run(plan, handler))
    thread.start()
    handler.until(lambda: handler.entered == ["build:first"])
    held = threading.Event()
    held.wait(0.2)  # the one worker is busy with `first` at least this long
    handler.open("build:first", "build:second")
    thread.join(TIMEOUT)
    assert executor.queued["build:first"] < executor.queued["build:second"]
    assert executor.queued["build:second"] >= 0.2  # it could start only once `first` ended
