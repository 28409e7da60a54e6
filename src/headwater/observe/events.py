"""Events: what every stage reports as it works, delivered to a sink passed in (never global)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class TaskStatus(StrEnum):
    """Where one task of a run is (ingest a table, build a model, check a target)."""

    START = "start"  # it began
    BUILT = "built"  # a new version was written, audited and published
    UP_TO_DATE = "up_to_date"  # nothing it reads changed: the published version stands
    INLINED = "inlined"  # an ephemeral model, rendered into the models that read it
    LANDED = "landed"  # a batch landed in raw
    FAILED = "failed"  # it raised: nothing it wrote is published
    BLOCKED = "blocked"  # an error rule failed on what it wrote: nothing is published
    SKIPPED = "skipped"  # something it reads failed or was blocked in this run
    RETRYING = "retrying"  # an attempt failed in a way another may fix: waiting to retry
    WAITING = "waiting"  # ready, but its pool or every worker is busy (`detail["waiting"]`)

    @property
    def ok(self) -> bool:
        """Whether what reads its output may go on."""
        return self in (TaskStatus.BUILT, TaskStatus.UP_TO_DATE, TaskStatus.INLINED)


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


@dataclass(frozen=True)
class Event:
    """One thing that happened: `stage` (ingest/build/check), `subject` (a table), `status`.

    `run_id` and `task` name the run and the task (`<stage>:<subject>`) it belongs to; `at`
    is when; `inputs` and `outputs` the tables it read and wrote, so lineage, metrics and
    alerts can be sinks of the same stream.
    """

    stage: str
    subject: str
    status: TaskStatus | str
    detail: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()

    @property
    def task(self) -> str:
        return f"{self.stage}:{self.subject}"


EventSink = Callable[[Event], None]


def discard(event: Event) -> None:
    """A sink that ignores events (library use, tests)."""


def stamped(sink: EventSink, run_id: str) -> EventSink:
    """`sink`, receiving every event with `run_id` set (when the stage left it empty)."""

    def stamp(event: Event) -> None:
        sink(event if event.run_id else replace(event, run_id=run_id))

    return stamp
