"""Events: what every stage reports as it works, delivered to a sink passed in (never global)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """One thing that happened: `stage` (ingest/build/check), `subject` (a table), `status`."""

    stage: str
    subject: str
    status: str
    detail: dict[str, Any] = field(default_factory=dict)


EventSink = Callable[[Event], None]


def discard(event: Event) -> None:
    """A sink that ignores events (library use, tests)."""
