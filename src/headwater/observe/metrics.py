"""Pipeline metrics in Prometheus's text format: a collector over a `Snapshot` of plain data.

A snapshot is what the catalog says now (`orchestrate.metrics` reads it); the collector takes
a fresh one at every scrape and turns it into metric families, so a scrape always shows the
catalog as it is. Label values are bounded by the project: a task shows its newest run only.
A scrape that cannot read the catalog answers `headwater_up 0`, never an error page.

    serve_metrics(registry, port)        `/metrics` on 127.0.0.1 (scheduler, follow workers)
    exposition(registry, accept)         the text and its type, for an app's own route (serve)
    write_textfile(path, registry)       node_exporter's textfile collector (`headwater metrics`)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import (
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    start_http_server,
    write_to_textfile,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder
from prometheus_client.registry import Collector

log = logging.getLogger("headwater.metrics")
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # what a scrape without an `Accept` header gets
UNSUCCESSFUL = ("failed", "blocked", "skipped")  # a task status that left its output as it was


@dataclass(frozen=True)
class RunFigures:
    """The newest run of one command."""

    command: str
    status: str
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class TaskFigures:
    """What a task did in the newest run that ran it."""

    task: str
    stage: str
    status: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    rows: int | None = None  # written
    rows_in: int | None = None  # read
    bytes: int | None = None
    attempts: int | None = None
    queued_s: float | None = None  # waited for a worker or its pool
    quarantined: int | None = None


@dataclass(frozen=True)
class TableFigures:
    """A raw table's or model's freshness: when its data last changed, judged by its SLA."""

    table: str
    updated_at: datetime | None
    late: bool


@dataclass(frozen=True)
class StreamFigures:
    """Where a stream stands: what its source holds that raw does not (None: not known),
    and, in a follow worker, what the worker did since it started."""

    table: str
    lag_messages: int | None = None
    lag_seconds: float | None = None
    source_up: bool = True  # False: its source could not be asked
    rows: int | None = None
    batches: int | None = None
    restarts: int | None = None
    latency_p50_s: float | None = None  # produced at the source → committed in raw
    latency_p99_s: float | None = None


@dataclass(frozen=True)
class RuleFigures:
    """The newest result of one rule of the project."""

    table: str
    rule: str
    severity: str
    passed: bool


@dataclass(frozen=True)
class Snapshot:
    """Everything a scrape shows, read at `now`."""

    project: str
    version: str
    now: datetime
    runs: Sequence[RunFigures] = ()  # the newest finished run of each command
    running: dict[str, int] = field(default_factory=dict)  # command → runs not ended
    run_counts: dict[tuple[str, str], int] | None = None  # (command, status) → finished runs
    tasks: Sequence[TaskFigures] = ()
    tables: Sequence[TableFigures] = ()
    streams: Sequence[StreamFigures] = ()
    rules: Sequence[RuleFigures] = ()
    alerts: dict[tuple[str, str], int] = field(default_factory=dict)  # (severity, kind) → open


class PipelineCollector(Collector):
    """The `headwater_*` families of a snapshot `take` makes at each scrape (one at a time)."""

    def __init__(self, take: Callable[[], Snapshot]) -> None:
        self._take = take
        self._lock = threading.Lock()
        self.errors = 0
        self.last_error: str | None = None  # why the newest scrape could not read, if it could not

    def describe(self) -> list[Metric]:
        return []  # registering takes no snapshot

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        with self._lock:
            try:
                found: list[Metric] | None = list(families(self._take()))
                self.last_error = None
            except Exception as err:  # a scrape reports the failure, it never fails itself
                found = None
                self.errors += 1
                self.last_error = f"{type(err).__name__}: {err}"
                log.warning("metrics: cannot read the pipeline's state: %s", self.last_error)
        yield from found or ()
        up = float(found is not None)
        yield _gauge("headwater_up", "1 if the catalog could be read at this scrape", [((), up)])
        yield _counter(
            "headwater_scrape_errors",
            "Scrapes of this process that could not read the catalog",
            [((), float(self.errors))],
        )
        yield _gauge(
            "headwater_scrape_duration_seconds",
            "How long reading the pipeline's state took",
            [((), time.perf_counter() - started)],
        )


def families(snapshot: Snapshot) -> Iterator[Metric]:
    """The metric families of one snapshot (without the scrape's own `headwater_up`…)."""
    yield _gauge(
        "headwater_info",
        "The project and headwater's version",
        [((snapshot.project, snapshot.version), 1.0)],
        ("project", "version"),
    )
    yield from _runs(snapshot)
    yield from _tasks(snapshot.tasks)
    yield from _tables(snapshot.tables, snapshot.now)
    yield from _streams(snapshot.streams)
    yield from _rules(snapshot.rules)
    yield _gauge(
        "headwater_alerts_open",
        "Alert incidents open now",
        [((severity, kind), float(n)) for (severity, kind), n in sorted(snapshot.alerts.items())],
        ("severity", "kind"),
    )


def _runs(snapshot: Snapshot) -> Iterator[Metric]:
    if snapshot.run_counts is not None:
        yield _counter(
            "headwater_runs",
            "Finished runs in the catalog's history, by command and outcome",
            [(key, float(n)) for key, n in sorted(snapshot.run_counts.items())],
            ("command", "status"),
        )
    yield _gauge(
        "headwater_runs_in_progress",
        "Runs started and not ended (a killed run stays until it is cleaned up)",
        [((command,), float(n)) for command, n in sorted(snapshot.running.items())],
        ("command",),
    )
    runs = sorted(snapshot.runs, key=lambda r: r.command)
    by = ("command",)
    yield _gauge(
        "headwater_run_last_start_timestamp_seconds",
        "When the newest finished run of the command started",
        [((r.command,), r.started_at.timestamp()) for r in runs],
        by,
    )
    yield _gauge(
        "headwater_run_last_end_timestamp_seconds",
        "When the newest finished run of the command ended",
        [((r.command,), _stamp(r.ended_at)) for r in runs],
        by,
    )
    yield _gauge(
        "headwater_run_last_duration_seconds",
        "How long the newest finished run of the command took",
        [((r.command,), _seconds(r.started_at, r.ended_at)) for r in runs],
        by,
    )
    yield _gauge(
        "headwater_run_last_success",
        "1 if the newest finished run of the command succeeded, else 0",
        [((r.command,), float(r.status == "success")) for r in runs],
        by,
    )


TASK_GAUGES: list[tuple[str, str, Callable[[TaskFigures], float | None]]] = [
    (
        "duration_seconds",
        "How long the task took, retries included",
        lambda t: _seconds(t.started_at, t.ended_at),
    ),
    ("rows", "Rows the task wrote", lambda t: t.rows),
    ("rows_in", "Rows the task read", lambda t: t.rows_in),
    ("bytes", "Bytes the task read from its source or wrote", lambda t: t.bytes),
    ("attempts", "Attempts the task took (2 or more: it was retried)", lambda t: t.attempts),
    ("queue_wait_seconds", "How long the task waited for a worker", lambda t: t.queued_s),
    ("quarantined_rows", "Rows the task routed to quarantine", lambda t: t.quarantined),
    ("end_timestamp_seconds", "When the task ended", lambda t: _stamp(t.ended_at)),
    ("success", "1 unless the task failed, was blocked or skipped", lambda t: _ok(t.status)),
]


def _tasks(tasks: Sequence[TaskFigures]) -> Iterator[Metric]:
    ordered = sorted(tasks, key=lambda t: (t.stage, t.task))
    for name, text, value in TASK_GAUGES:
        yield _gauge(
            f"headwater_task_last_{name}",
            f"{text}, in the newest run that ran it",
            [((t.task, t.stage), value(t)) for t in ordered],
            ("task", "stage"),
        )


def _tables(tables: Sequence[TableFigures], now: datetime) -> Iterator[Metric]:
    ordered = sorted(tables, key=lambda t: t.table)
    yield _gauge(
        "headwater_table_updated_timestamp_seconds",
        "When the table's data last changed (raw: a batch landed rows; model: built or found "
        "up to date in prod)",
        [((t.table,), _stamp(t.updated_at)) for t in ordered],
        ("table",),
    )
    yield _gauge(
        "headwater_table_freshness_age_seconds",
        "How long ago the table's data last changed",
        [((t.table,), _seconds(t.updated_at, now)) for t in ordered],
        ("table",),
    )
    yield _gauge(
        "headwater_table_late",
        "1 if the table breaches its freshness SLA now (0 without an SLA)",
        [((t.table,), float(t.late)) for t in ordered],
        ("table",),
    )


def _streams(streams: Sequence[StreamFigures]) -> Iterator[Metric]:
    ordered = sorted(streams, key=lambda s: s.table)
    by = ("table",)

    def samples(value: Callable[[StreamFigures], float | None]) -> list[tuple[Any, float]]:
        return [((s.table,), float(v)) for s in ordered if (v := value(s)) is not None]

    yield _gauge(
        "headwater_stream_source_up",
        "1 if the stream's source answered how far behind raw is",
        samples(lambda s: float(s.source_up)),
        by,
    )
    yield _gauge(
        "headwater_stream_lag_messages",
        "Messages (Kafka) or WAL bytes (CDC) the source holds that raw does not",
        samples(lambda s: s.lag_messages),
        by,
    )
    yield _gauge(
        "headwater_stream_lag_seconds",
        "How far behind the source raw is, in time",
        samples(lambda s: s.lag_seconds),
        by,
    )
    counters = [
        ("rows", "Rows this follow worker landed", lambda s: s.rows),
        ("batches", "Batches this follow worker landed", lambda s: s.batches),
        ("restarts", "Times this follow worker restarted after a failure", lambda s: s.restarts),
    ]
    for name, text, value in counters:
        found = samples(value)
        if found:
            yield _counter(f"headwater_stream_{name}", text, found, by)
    for q, value in (("p50", lambda s: s.latency_p50_s), ("p99", lambda s: s.latency_p99_s)):
        found = samples(value)
        if found:
            yield _gauge(
                f"headwater_stream_latency_{q}_seconds",
                f"End-to-end latency ({q}): produced at the source → committed in raw",
                found,
                by,
            )


def _rules(rules: Sequence[RuleFigures]) -> Iterator[Metric]:
    ordered = sorted(rules, key=lambda r: (r.table, r.rule))
    yield _gauge(
        "headwater_rule_passed",
        "1 if the rule's newest result passed, else 0",
        [((r.table, r.rule, r.severity), float(r.passed)) for r in ordered],
        ("table", "rule", "severity"),
    )
    failing: dict[tuple[str, str], int] = {}
    for r in ordered:
        key = (r.table, r.severity)
        failing[key] = failing.get(key, 0) + (not r.passed)
    yield _gauge(
        "headwater_rules_failing",
        "Rules of the table whose newest result fails",
        [(key, float(n)) for key, n in sorted(failing.items())],
        ("table", "severity"),
    )


def _gauge(
    name: str,
    text: str,
    samples: Sequence[tuple[Sequence[str], float | None]],
    labels: Sequence[str] = (),
) -> GaugeMetricFamily:
    """A gauge of the samples whose value is known."""
    family = GaugeMetricFamily(name, text, labels=list(labels))
    for values, value in samples:
        if value is not None:
            family.add_metric(list(values), value)
    return family


def _counter(
    name: str,
    text: str,
    samples: Sequence[tuple[Sequence[str], float]],
    labels: Sequence[str] = (),
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, text, labels=list(labels))
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


def _stamp(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def _ok(status: str) -> float:
    return float(status not in UNSUCCESSFUL)


def registry(collector: PipelineCollector, *, process: bool = False) -> CollectorRegistry:
    """A registry of `collector`; `process`: with the process's CPU, memory and Python
    figures too (a long-running process; not a textfile, which node_exporter reads for
    another process)."""
    found = CollectorRegistry()
    found.register(collector)
    if process:
        found.register(PROCESS_COLLECTOR)
        found.register(PLATFORM_COLLECTOR)
    return found


def exposition(source: CollectorRegistry, accept: str | None = None) -> tuple[bytes, str]:
    """Everything `source` collects now, and its content type: the format the scraper's
    `Accept` header asks for (OpenMetrics, or the text format's 1.0.0), else the text
    format 0.0.4 every Prometheus reads."""
    encode, content_type = choose_encoder(accept or "")
    return encode(source), content_type


def as_json(source: CollectorRegistry) -> list[dict[str, Any]]:
    """The same families as plain data: name, type, help and samples."""
    return [
        {
            "name": family.name,
            "type": family.type,
            "help": family.documentation,
            "samples": [
                {"name": s.name, "labels": dict(s.labels), "value": s.value} for s in family.samples
            ],
        }
        for family in source.collect()
    ]


def write_textfile(path: Path, source: CollectorRegistry) -> None:
    """Write the exposition to `path` whole or not at all (a file beside it, then renamed:
    node_exporter never reads half a file)."""
    write_to_textfile(str(path), source)


@dataclass
class MetricsServer:
    """`/metrics` served from a thread of this process."""

    port: int
    _server: Any

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve_metrics(
    source: CollectorRegistry, port: int, *, host: str = "127.0.0.1"
) -> MetricsServer:
    """Serve `source` at http://HOST:PORT/metrics (any path answers) until closed.

    Raises:
        OSError: the port cannot be bound (in use, not allowed).
    """
    server, _thread = start_http_server(port, addr=host, registry=source)
    return MetricsServer(int(server.server_port), server)
