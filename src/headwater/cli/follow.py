"""`headwater ingest --follow`: stream workers in the foreground until SIGTERM or Ctrl-C."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from headwater.observe import Event, TaskStatus


def following(project_dir: Path, names: Sequence[str], fmt: str, *, metrics_port: int = 0) -> int:
    """Follow the stream contracts `names` (default: every `delivery: stream` one) until
    stopped; prints a line per landed batch (`--format json`: a JSON object per line).
    `metrics_port`: serve `/metrics` on 127.0.0.1 there, with each worker's live lag.
    Returns the exit code: 0 when stopped, 1 when a worker gave up on its contract."""
    from rich.console import Console

    from headwater.cli.metrics import metrics_served
    from headwater.orchestrate.follow import StreamStats, follow, stream_contracts
    from headwater.orchestrate.metrics import live_lags
    from headwater.orchestrate.stores import LakeStores
    from headwater.project import load_project

    project = load_project(project_dir)
    contracts = stream_contracts(project, names)
    stores = LakeStores.open(project)
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    lock = threading.Lock()

    def sink(event: Event) -> None:
        with lock:
            if fmt == "json":
                record = {
                    "stage": event.stage,
                    "table": event.subject,
                    "status": str(event.status),
                    "at": event.at.isoformat(),
                    **event.detail,
                }
                sys.stdout.write(json.dumps(record, default=str) + "\n")
                sys.stdout.flush()
            else:
                _print(out, err, event)

    stop = threading.Event()
    tables = ", ".join(c.table for c in contracts)
    err.print(f"following {tables} (Ctrl-C or SIGTERM: finish the batch at hand and stop)")
    stats: dict[str, StreamStats] = {}  # filled by the workers as they go: /metrics reads it
    served = metrics_served(
        project, stores.catalog, stores.lake, metrics_port, streams=lambda: live_lags(stats)
    )
    try:
        with served, stopping(stop, err):
            follow(project, stores, contracts, stop=stop, sink=sink, stats=stats)
    finally:
        stores.close()
    for table, s in stats.items():
        err.print(
            f"{table}: {s.rows:,} rows in {s.batches:,} batch(es), {s.quarantined:,} "
            f"quarantined, {s.redelivered:,} delivered again and skipped, {s.restarts} restart(s)"
        )
        if s.stopped:
            err.print(f"[red]error:[/] {s.stopped}")
    return 1 if any(s.stopped for s in stats.values()) else 0


def _print(out: Any, err: Any, event: Event) -> None:
    detail = event.detail
    if event.status is TaskStatus.LANDED:
        latency = detail.get("latency_p50_s")
        shown = f", latency p50 {latency:.2f} s" if latency is not None else ""
        bad = f", {detail['quarantined']:,} quarantined" if detail.get("quarantined") else ""
        out.print(f"{event.subject}: +{detail['rows']:,} rows{bad} ({detail['read']}{shown})")
        for warning in detail.get("warnings") or []:
            err.print(f"[yellow]warning:[/] {event.subject}: {warning}")
    elif event.status is TaskStatus.FAILED:
        again = " — restarting with backoff" if detail.get("retry") else ""
        err.print(f"[red]error:[/] {detail['error']}{again}")


@contextmanager
def stopping(stop: threading.Event, err: Any, finishing: str = "landing the batch at hand") -> Any:
    """SIGTERM and the first Ctrl-C set `stop`; a second Ctrl-C interrupts at once."""

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        err.print(f"stopping: {finishing}…")
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
