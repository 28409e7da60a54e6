"""Run a plan: every task whose dependencies are done, independent ones in parallel.

A task the handler can decide at once (`settle`: skipped because something it reads failed,
up to date, an ingest or a publish that runs in order) is decided on the scheduling thread
and takes no worker; the rest (`work`) go to a pool of `workers` threads. What a failed task
means for the tasks after it is the handler's business (`settle` sees every result so far).
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Generic, Protocol, TypeVar

from headwater.orchestrate.plan import Plan, Task

R = TypeVar("R")


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
    def __init__(self, workers: int, *, name: str = "hw-task"):
        self.workers = max(workers, 1)
        self.name = name

    def run(self, plan: Plan, handler: Handler[R]) -> dict[str, R]:
        """Run every task of `plan`; their results by task id."""
        results: dict[str, R] = {}
        sorter = plan.sorter()

        def finish(task: Task, result: R) -> None:
            results[task.id] = result
            handler.done(task, result)
            sorter.done(task.id)

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=self.name) as pool:
            running: dict[Future[R], Task] = {}
            while sorter.is_active():
                for task_id in sorter.get_ready():
                    task = plan.tasks[task_id]
                    settled = handler.settle(task)
                    if settled is not None:
                        finish(task, settled)
                    else:
                        running[pool.submit(handler.work, task)] = task
                if not running:
                    continue
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    finish(running.pop(future), future.result())
        return results
