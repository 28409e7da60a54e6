"""What `/metrics` and `headwater metrics` show, read from the catalog and the lake, and the
trace of a run, read from its record.

A snapshot is a few catalog queries and one look at each raw table's newest commits: 8 ms
a scrape on the example project (the first, which loads the lake's tables, 0.75 s). Stream
lag comes from whoever knows it: a follow worker its own live figures, `headwater metrics`
the sources themselves (as `headwater status`); the scheduler and `serve` show none.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from headwater import __version__
from headwater.observe.metrics import (
    PipelineCollector,
    RuleFigures,
    RunFigures,
    Snapshot,
    StreamFigures,
    TableFigures,
    TaskFigures,
)
from headwater.observe.tracing import TracedRun, TracedTask, endpoint, export_run
from headwater.orchestrate.follow import StreamStats, stream_states
from headwater.orchestrate.sla import freshness
from headwater.orchestrate.stores import LakeStores
from headwater.project import Project
from headwater.zones.catalog import Catalog
from headwater.zones.lake import Lake

RECENT_RUNS = 200  # the newest run of each command is looked for among these
STAGES = ("ingest", "build", "backfill")  # the stages that record tasks
OPEN_ALERTS = 1000  # the newest incidents looked at for those still open


def snapshot(
    project: Project,
    catalog: Catalog,
    lake: Lake,
    *,
    now: datetime,
    streams: Sequence[StreamFigures] = (),
) -> Snapshot:
    """What the catalog and the lake say about `project` at `now`."""
    recent = catalog.recent_runs(RECENT_RUNS)
    newest: dict[str, RunFigures] = {}
    running: dict[str, int] = {}
    for run in recent:  # newest first
        if run["ended_at"] is None:
            running[run["command"]] = running.get(run["command"], 0) + 1
        elif run["command"] not in newest:
            newest[run["command"]] = RunFigures(
                run["command"], run["status"], run["started_at"], run["ended_at"]
            )
    return Snapshot(
        project=project.settings.name,
        version=__version__,
        now=now,
        runs=list(newest.values()),
        running=running,
        run_counts=_run_counts(catalog),
        tasks=[_task(t) for stage in STAGES for t in catalog.newest_tasks(stage).values()],
        tables=[
            TableFigures(f.table, f.updated_at, f.late)
            for f in freshness(project, catalog, lake, now)
        ],
        streams=list(streams),
        rules=_rules(project, catalog),
        alerts=_open_alerts(catalog),
    )


def collector(
    project: Project,
    catalog: Catalog,
    lake: Lake,
    *,
    streams: Callable[[], Sequence[StreamFigures]] = lambda: (),
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PipelineCollector:
    """The collector of a process that holds the catalog and the lake open: a snapshot at
    each scrape, with the streams `streams` gives then."""
    return PipelineCollector(
        lambda: snapshot(project, catalog, lake, now=clock(), streams=streams())
    )


def asked_lags(project: Project, stores: LakeStores) -> list[StreamFigures]:
    """Each stream contract's lag, asked of its source (Kafka, the database's WAL)."""
    out = []
    for state in stream_states(project, stores):
        known = state.error is None
        out.append(
            StreamFigures(
                state.table,
                lag_messages=sum(state.lag.values()) if known else None,
                source_up=known,
            )
        )
    return out


def live_lags(stats: Mapping[str, StreamStats]) -> list[StreamFigures]:
    """What this process's follow workers know: their lag, latency and totals so far."""
    return [
        StreamFigures(
            table,
            lag_messages=sum(s.lag.values()),
            lag_seconds=s.lag_seconds,
            source_up=s.last_error is None,
            rows=s.rows,
            batches=s.batches,
            restarts=s.restarts,
            latency_p50_s=_percentile(s, 0.5),
            latency_p99_s=_percentile(s, 0.99),
        )
        for table, s in list(stats.items())
    ]


def _percentile(stats: StreamStats, q: float) -> float | None:
    for _ in range(3):  # its worker may add a latency while they are sorted: sort again
        try:
            return stats.percentile(q)
        except RuntimeError:
            continue
    return None


def trace_run(
    project: Project, catalog: Catalog, run_id: str, *, environ: Mapping[str, str] = os.environ
) -> list[str]:
    """Export the trace of the recorded run `run_id` if an OTLP endpoint is configured;
    the notes for the user (why it was not sent)."""
    if endpoint(environ) is None:
        return []  # not configured: not even the catalog is read
    try:
        run = catalog.find_run(run_id)
        if run is None or run["ended_at"] is None:
            return []
        traced = TracedRun(
            run_id=run_id,
            command=run["command"],
            status=run["status"],
            env=run["env"],
            started_at=run["started_at"],
            ended_at=run["ended_at"],
            tasks=[_traced(t) for t in catalog.run_tasks(run_id)],
        )
        note = export_run(traced, service=project.settings.name, environ=environ)
    except Exception as err:  # a trace is never worth failing the run it traces
        note = f"the run's trace was not sent: {type(err).__name__}: {err}"
    return [] if note is None else [note]


def _run_counts(catalog: Catalog) -> dict[tuple[str, str], int] | None:
    return {(command, status): n for command, status, n in catalog.run_counts()}


def _task(row: dict[str, Any]) -> TaskFigures:
    return TaskFigures(
        task=row["task"],
        stage=row["stage"],
        status=row["status"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        rows=row["rows"],
        rows_in=row.get("rows_in"),
        bytes=row.get("bytes"),
        attempts=row["attempts"],
        queued_s=row.get("queued_s"),
        quarantined=row["quarantined"],
    )


def _traced(row: dict[str, Any]) -> TracedTask:
    figures = _task(row)
    return TracedTask(
        **{k: getattr(figures, k) for k in TaskFigures.__dataclass_fields__},
        error=row["error"],
    )


def _rules(project: Project, catalog: Catalog) -> list[RuleFigures]:
    """The newest result of each rule the project has now (a removed rule is not shown)."""
    current = {t: {r.name for r in c.rules} for t, c in project.raw_tables.items()}
    current |= {name: {r.name for r in m.rules} for name, m in project.models.items()}
    return [
        RuleFigures(r["target"], r["rule"], r["severity"], bool(r["passed"]))
        for r in catalog.newest_check_results()
        if r["rule"] in current.get(r["target"], ())
    ]


def _open_alerts(catalog: Catalog) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for alert in catalog.alert_history(limit=OPEN_ALERTS):
        if alert["resolved_at"] is None:
            key = (alert["severity"], alert["kind"])
            out[key] = out.get(key, 0) + 1
    return out
