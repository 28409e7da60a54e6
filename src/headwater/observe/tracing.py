"""OpenTelemetry traces of runs: a span per run and a child span per task, sent over OTLP/HTTP
when the standard variables name an endpoint (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
`OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`).

A run is traced once it is recorded, from its record: every span carries the real start and
end times of what it stands for. Exporting never fails a run: an endpoint that cannot be
reached, or OpenTelemetry not installed (`pip install 'headwater[otel]'`), gives a note.
The exporter's own `OTEL_EXPORTER_OTLP_*` settings (headers, timeout, compression) apply.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
TIMEOUTS = ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
TIMEOUT_S = 5.0  # the whole export, retries included (OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT: s)
UNSUCCESSFUL = ("failed", "blocked")  # a task status that is an error in a trace


@dataclass(frozen=True)
class TracedTask:
    """One task as the catalog recorded it."""

    task: str
    stage: str
    status: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    rows: int | None = None
    rows_in: int | None = None
    bytes: int | None = None
    attempts: int | None = None
    queued_s: float | None = None
    quarantined: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class TracedRun:
    """One run as the catalog recorded it, with its tasks."""

    run_id: str
    command: str
    status: str
    env: str | None
    started_at: datetime
    ended_at: datetime
    tasks: Sequence[TracedTask] = ()


def endpoint(environ: Mapping[str, str] = os.environ) -> str | None:
    """Where traces go (the variables as OpenTelemetry reads them); None: not traced."""
    if environ.get(TRACES_ENDPOINT):
        return environ[TRACES_ENDPOINT]
    base = environ.get(ENDPOINT)
    return f"{base.removesuffix('/')}/v1/traces" if base else None


def export_run(
    run: TracedRun, *, service: str, environ: Mapping[str, str] = os.environ
) -> str | None:
    """Send the run's spans to the configured endpoint; None when sent or not configured,
    else a note saying why not (never raises for an endpoint that fails)."""
    where = endpoint(environ)
    if where is None:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import SpanExportResult
    except ImportError:
        return (
            f"traces not sent: {TRACES_ENDPOINT if environ.get(TRACES_ENDPOINT) else ENDPOINT} "
            "is set, but OpenTelemetry is not installed (pip install 'headwater[otel]')"
        )
    exporter = OTLPSpanExporter(endpoint=where, timeout=_timeout(environ))
    try:
        with _quiet() as heard:
            result = exporter.export(spans(run, service=service))
    finally:
        exporter.shutdown()  # type: ignore[no-untyped-call]
    if result is SpanExportResult.SUCCESS:
        return None
    return f"the run's trace was not sent to {where}: {_why(heard) or _unreachable(where)}"


def spans(run: TracedRun, *, service: str) -> list[ReadableSpan]:
    """The run's span and its tasks' child spans, ended, as an exporter takes them."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    kept = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("headwater")
    root = tracer.start_span(
        f"headwater {run.command}",
        start_time=_ns(run.started_at),
        attributes=_attributes(
            {
                "headwater.run_id": run.run_id,
                "headwater.command": run.command,
                "headwater.status": run.status,
                "headwater.env": run.env or "prod",
            }
        ),
    )
    if run.status != "success":
        root.set_status(trace.Status(trace.StatusCode.ERROR, f"the run {run.status}"))
    inside = trace.set_span_in_context(root)
    for task in run.tasks:
        started = task.started_at or task.ended_at or run.ended_at
        span = tracer.start_span(
            f"{task.stage} {task.task}",
            context=inside,
            start_time=_ns(started),
            attributes=_attributes(_task_attributes(task)),
        )
        if task.status in UNSUCCESSFUL:
            span.set_status(trace.Status(trace.StatusCode.ERROR, _first_line(task.error)))
        span.end(end_time=_ns(max(task.ended_at or started, started)))
    root.end(end_time=_ns(run.ended_at))
    provider.shutdown()
    return list(kept.get_finished_spans())


def _task_attributes(task: TracedTask) -> dict[str, Any]:
    return {
        "headwater.task": task.task,
        "headwater.stage": task.stage,
        "headwater.status": task.status,
        "headwater.rows": task.rows,
        "headwater.rows_in": task.rows_in,
        "headwater.bytes": task.bytes,
        "headwater.attempts": task.attempts,
        "headwater.queued_s": task.queued_s,
        "headwater.quarantined": task.quarantined,
        "headwater.error": task.error,
    }


def _attributes(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000) * 1_000


def _timeout(environ: Mapping[str, str]) -> float:
    for name in TIMEOUTS:
        with suppress(ValueError):
            return float(environ.get(name) or "")
    return TIMEOUT_S


def _why(heard: Sequence[str]) -> str | None:
    """The reason in what the exporter logged: the OS's words for a connection that failed,
    the status of an answer that refused the spans."""
    for message in heard:
        if found := re.search(r"\[Errno -?\d+\] ([^'\")]+)", message):
            return found.group(1).strip()
        if found := re.search(r"code: (\d+), reason: (.*)", message):
            return f"HTTP {found.group(1)} {found.group(2)}".strip()
    return None


def _unreachable(url: str) -> str:
    """Why the exporter gave up without saying (its time ran out before it retried): the
    endpoint's host and port asked once more."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((parts.hostname or "", port), timeout=1).close()
    except (OSError, ValueError) as err:
        return getattr(err, "strerror", None) or str(err)
    return "no answer in time"


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else "failed"


@contextmanager
def _quiet() -> Iterator[list[str]]:
    """What the exporter logs while it works, kept for the note instead of printed."""
    heard: list[str] = []

    class Keep(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            heard.append(record.getMessage())
            return False

    logger = logging.getLogger("opentelemetry.exporter.otlp")
    quiet = Keep()
    loggers = [logger, logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter")]
    for each in loggers:
        each.addFilter(quiet)
    try:
        yield heard
    finally:
        for each in loggers:
            each.removeFilter(quiet)
