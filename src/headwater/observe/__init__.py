"""Observability (band 1): the events every stage emits."""

from headwater.observe.events import Event, EventSink, discard

__all__ = ["Event", "EventSink", "discard"]
