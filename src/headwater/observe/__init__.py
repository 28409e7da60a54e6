"""Observability (band 1): the events every stage emits."""

from headwater.observe.events import Event, EventSink, RunStatus, TaskStatus, discard, stamped

__all__ = ["Event", "EventSink", "RunStatus", "TaskStatus", "discard", "stamped"]
