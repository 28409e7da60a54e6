"""Run a plan: every task whose dependencies are done, independent ones in parallel, at most
`workers` at once and at most `pools[p]` of pool p.

A task the handler can decide at once (`settle`: skipped because something it reads failed,
up to date, an ingest or a publish that runs in order) is decided on the scheduling thread
and takes no worker; the rest (`work`) go to a pool of `workers` threads. A ready task whose
pool is full, or that finds every worker busy, waits (`on_wait` says why) while ready tasks of
other pools go ahead; waiting tasks start in plan order as slots free. What a failed task
means for the tasks after it is the handler's business (`settle` sees every result so far).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from queue import Empty, SimpleQueue
from types import MappingProxyType
from typing import Generic, Protocol, TypeVar, cast

from headwater.orchestrate.plan import Plan, Task

R = TypeVar("R")

OnWait = Callable[[Task, str], None]


class Handler(Protocol[R]):
    def settle(self, task: Task) -> R | None:
        """The task's result when it needs no worker (on the scheduling thread), else None."""
        ...

    def work(self, task: Task) -> R:
        """Do the task (on a worker thread)."""
        ...

    def done(self, task: Task, result: R) -> None:
        """Record a result (on the scheduling thread, in completion order)."""
        ...


class Executor(Generic[R]):
    """Runs plans with `workers` threads; `pools` caps the tasks of a pool working at once
    (a pool it does not name is capped by `workers` alone).

    Example:
        `Executor[object](4, pools={"pg": 1}, on_wait=lambda t, why: print(t.id, why))`
        runs one task of pool pg at a time; a second one ready prints
        `build:b pool pg full (1 of 1 running: build:a)` and starts when build:a is done.
    """

    def __init__(
        self,
        workers: int,
        *,
        pools: Mapping[str, int] = MappingProxyType({}),
        on_wait: OnWait | None = None,
        name: str = "hw-task",
    ):
        self.workers = max(workers, 1)
        self.pools = {pool: max(size, 1) for pool, size in pools.items()}
        self.on_wait = on_wait
        self.name = name
        # task id → seconds it waited between being ready and starting (for a worker or,
        # for a task settled inline, for the tasks settled before it)
        self.queued: dict[str, float] = {}

    def run(self, plan: Plan, handler: Handler[R]) -> dict[str, R]:
        """Run every task of `plan`; their results by task id. An exception raised by a
        task's `work` is raised here, once the tasks already working have finished."""
        results: dict[str, R] = {}
        sorter = plan.sorter()
        position = {task_id: i for i, task_id in enumerate(plan.tasks)}
        slots = _Slots(self.workers, self.pools)
        finished: SimpleQueue[tuple[Task, R | None, BaseException | None]] = SimpleQueue()

        ready_at: dict[str, float] = {}

        def work(task: Task) -> None:
            self.queued[task.id] = time.monotonic() - ready_at.pop(task.id, time.monotonic())
            try:
                finished.put((task, handler.work(task), None))
            except BaseException as error:  # the scheduling thread re-raises it
                finished.put((task, None, error))

        def finish(task: Task, result: R) -> None:
            results[task.id] = result
            handler.done(task, result)
            sorter.done(task.id)

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=self.name) as pool:
            while sorter.is_active():
                readied = []
                ready = time.monotonic()
                for task_id in sorter.get_ready():
                    task = plan.tasks[task_id]
                    self.queued[task_id] = time.monotonic() - ready
                    ready_at[task_id] = ready
                    settled = handler.settle(task)
                    if settled is not None:
                        finish(task, settled)
                    else:
                        slots.ready(task, position[task_id])
                        readied.append(task)
                started = slots.take()
                for task in started:
                    pool.submit(work, task)
                if self.on_wait is not None and readied:
                    self._tell(slots, readied, started)
                if slots.busy:
                    for task, result, error in _drain(finished):
                        if error is not None:
                            raise error
                        slots.release(task)
                        finish(task, cast(R, result))
        return results

    def _tell(self, slots: _Slots, readied: list[Task], started: list[Task]) -> None:
        """Say why each task that just became ready has to wait."""
        assert self.on_wait is not None
        going = {task.id for task in started}
        for task in readied:
            if task.id not in going:
                self.on_wait(task, slots.why(task))


def _drain(
    queue: SimpleQueue[tuple[Task, R | None, BaseException | None]],
) -> list[tuple[Task, R | None, BaseException | None]]:
    """Wait for one finished task, then take every other one already finished."""
    items = [queue.get()]
    try:
        while True:
            items.append(queue.get_nowait())
    except Empty:
        return items


class _Slots:
    """Who works now and who waits: a heap per pool (None: no pool), in plan order."""

    def __init__(self, workers: int, pools: Mapping[str, int]):
        self.workers, self.sizes = workers, pools
        self.busy = 0
        self.running: dict[str | None, dict[str, None]] = {}  # task ids, in start order
        self.waiting: dict[str | None, list[tuple[int, Task]]] = {}

    def _pool(self, task: Task) -> str | None:
        return task.pool if task.pool in self.sizes else None

    def ready(self, task: Task, position: int) -> None:
        heapq.heappush(self.waiting.setdefault(self._pool(task), []), (position, task))

    def take(self) -> list[Task]:
        """Start the waiting tasks that fit, the first planned first."""
        started: list[Task] = []
        while self.busy < self.workers:
            first: list[tuple[int, Task]] | None = None
            for pool, heap in self.waiting.items():
                if heap and self._room(pool) and (first is None or heap[0][0] < first[0][0]):
                    first = heap
            if first is None:
                break
            task = heapq.heappop(first)[1]
            self.running.setdefault(self._pool(task), {})[task.id] = None
            self.busy += 1
            started.append(task)
        return started

    def release(self, task: Task) -> None:
        del self.running[self._pool(task)][task.id]
        self.busy -= 1

    def _room(self, pool: str | None) -> bool:
        return pool is None or len(self.running.get(pool, ())) < self.sizes[pool]

    def why(self, task: Task) -> str:
        """Why a ready task is not working: its pool is full, or every worker is busy."""
        pool = self._pool(task)
        if pool is not None and not self._room(pool):
            running = self.running[pool]
            return (
                f"pool {pool} full ({len(running)} of {self.sizes[pool]} running: "
                f"{', '.join(running)})"
            )
        return f"all {self.workers} workers busy" if self.workers > 1 else "the only worker busy"
