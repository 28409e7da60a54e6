"""Stream workers (`headwater ingest --follow`): each stream contract's batches land in raw for
as long as the workers run.

One thread per contract reads batches from its follower and lands each with `ingest` (its
offsets in the same commit). A batch another worker landed first (`Conflict`) is dropped and
read again from the lake's offsets. A worker whose source fails (a dead broker) is restarted
with exponential backoff and jitter; one whose contract cannot work (a spec error) stops and
says why. `stop` finishes the batch at hand, commits it and returns.

The run is recorded in the catalog (command `ingest --follow`): a task per landed batch, and in
the run's summary each stream's totals, consumer lag (messages, seconds) and end-to-end latency
(produced at the source → committed in raw) at p50 and p99. The observability issue exports
them; they are recorded now.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from headwater.contracts import Contract
from headwater.errors import HeadwaterError, Location, SpecError
from headwater.observe import Event, EventSink, TaskStatus, discard
from headwater.orchestrate.stores import LakeStores
from headwater.project import Project
from headwater.zones.catalog import TaskRecord
from headwater.zones.lake import Conflict

STREAM_KINDS = ("kafka", "postgres_cdc")  # the connectors a follow worker reads
BACKOFF_S = (1.0, 60.0)  # the first restart's delay, doubled up to this (jittered)
WINDOW = 10_000  # latencies kept for the percentiles


@dataclass
class StreamStats:
    """What one stream worker did so far."""

    table: str
    batches: int = 0
    rows: int = 0
    quarantined: int = 0
    redelivered: int = 0  # read again though the lake held them: skipped
    conflicts: int = 0  # batches another worker landed first: read again
    restarts: int = 0
    # what the source holds that raw does not: messages per Kafka partition, or "wal_bytes"
    lag: dict[str, int] = field(default_factory=dict)
    lag_seconds: float = 0.0
    last_error: str | None = None
    stopped: str | None = None  # why the worker gave up (a spec error), None while it runs
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW), repr=False)
    _newest: float | None = field(default=None, repr=False)  # newest record landed (epoch s)

    def percentile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "rows": self.rows,
            "quarantined": self.quarantined,
            "redelivered": self.redelivered,
            "conflicts": self.conflicts,
            "restarts": self.restarts,
            "lag": dict(self.lag),
            "lag_seconds": round(self.lag_seconds, 3),
            "latency_p50_s": _rounded(self.percentile(0.5)),
            "latency_p99_s": _rounded(self.percentile(0.99)),
            "last_error": self.last_error,
            "stopped": self.stopped,
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def stream_contracts(project: Project, names: Sequence[str] = ()) -> list[Contract]:
    """The contracts `--follow` runs: those named, else every `delivery: stream` contract.

    Raises:
        SpecError: a name that is no contract, or no stream contract at all.
    """
    by_name = {c.name: c for c in project.contracts.values()} | {
        c.table: c for c in project.contracts.values()
    }
    if names:
        unknown = [n for n in names if n not in by_name]
        if unknown:
            known = sorted(c.name for c in project.contracts.values())
            raise SpecError(
                f"no contract named {', '.join(map(repr, unknown))}",
                hint=f"contracts are: {', '.join(known)}",
            )
        chosen = [by_name[n] for n in dict.fromkeys(names)]
        batch = [c.name for c in chosen if c.connector.kind not in STREAM_KINDS]
        if batch:
            raise SpecError(
                f"{', '.join(map(repr, batch))} read(s) no stream: --follow reads "
                f"{' and '.join(STREAM_KINDS)} connectors",
                hint="land it with `headwater ingest` (a schedule runs it regularly)",
            )
        return chosen
    streams = [c for c in project.contracts.values() if c.delivery.value == "stream"]
    if not streams:
        raise SpecError(
            "no contract has `delivery: stream`: nothing to follow",
            hint="name the contracts to follow (`headwater ingest --follow orders`), or set "
            "`delivery: stream` on a kafka contract",
        )
    return streams


def follow(
    project: Project,
    stores: LakeStores,
    contracts: Sequence[Contract],
    *,
    stop: threading.Event,
    sink: EventSink = discard,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    stats: dict[str, StreamStats] | None = None,
) -> dict[str, StreamStats]:
    """Run a worker per contract until `stop` is set (then each finishes its batch).

    `stats`: a dict to fill with each worker's figures as it goes (what `/metrics` reads
    while the workers run); the same dict is returned."""
    run_id = stores.catalog.start_run("ingest --follow", now=clock())
    stats = {} if stats is None else stats
    stats.update({c.table: StreamStats(c.table) for c in contracts})
    lock = threading.Lock()  # the catalog's records, one writer at a time
    workers = [
        threading.Thread(
            target=_Worker(project, stores, c, stats[c.table], run_id, sink, clock, lock).run,
            args=(stop,),
            name=f"follow-{c.name}",
            daemon=True,
        )
        for c in contracts
    ]
    for worker in workers:
        worker.start()
    try:
        while any(w.is_alive() for w in workers):
            for worker in workers:
                worker.join(timeout=0.5)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
        failed = any(s.stopped for s in stats.values())
        with lock:
            stores.catalog.end_run(
                run_id,
                status="failed" if failed else "success",
                summary={"streams": {t: s.summary() for t, s in stats.items()}},
                now=clock(),
            )
    return stats


class _Worker:
    """One contract's worker: open its follower, land batches, restart on failure."""

    def __init__(
        self,
        project: Project,
        stores: LakeStores,
        contract: Contract,
        stats: StreamStats,
        run_id: str,
        sink: EventSink,
        clock: Callable[[], datetime],
        lock: threading.Lock,
    ):
        self.project, self.stores, self.contract = project, stores, contract
        self.stats, self.run_id, self.sink, self.clock, self.lock = (
            stats,
            run_id,
            sink,
            clock,
            lock,
        )

    def run(self, stop: threading.Event) -> None:
        delay = BACKOFF_S[0]
        while not stop.is_set():
            landed = self.stats.batches
            try:
                self._follow(stop)
                return
            except SpecError as err:  # the contract cannot work as written: no retry helps
                self._failed(err)
                self.stats.stopped = err.render()
                return
            except HeadwaterError as err:
                self._failed(err)
            except Exception as err:  # a bug, or a driver's error we do not know: restart
                self._failed(HeadwaterError(f"{type(err).__name__}: {err}"))
            self.stats.restarts += 1
            if self.stats.batches > landed:
                delay = BACKOFF_S[0]  # it worked for a while: start the backoff over
            stop.wait(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, BACKOFF_S[1])

    def _follow(self, stop: threading.Event) -> None:
        from headwater.ingest import ingest
        from headwater.ingest.connectors import open_follower

        table = self.contract.table
        follower = open_follower(
            self.contract.connector,
            root=self.project.root,
            secrets=self.stores.secrets,
            group=f"headwater-{self.contract.name}",
            lake=lambda: self.stores.lake.current_properties(table),
        )
        tidy = True  # look for a killed run's files at the start and after a lost race only
        try:
            while not stop.is_set():
                batch = follower.next_batch(stop.is_set)
                if batch is None:
                    self._lagging(follower.lag())
                    continue
                started = self.clock()
                try:
                    landed = ingest(
                        self.contract,
                        root=self.project.root,
                        lake=self.stores.lake,
                        now=started,
                        reader=batch,
                        tidy=tidy,
                    )
                except Conflict:
                    self.stats.conflicts += 1
                    follower.rewind()
                    tidy = True
                    continue
                tidy = False
                done = time.time()
                self._landed(landed, batch.produced(), batch.redelivered, started, done)
                self._lagging(follower.lag())
        finally:
            follower.close()

    def _landed(
        self, landed: Any, produced: list[float], redelivered: int, started: datetime, done: float
    ) -> None:
        stats = self.stats
        stats.batches += 1
        stats.rows += landed.rows
        stats.quarantined += landed.quarantined
        stats.redelivered += redelivered
        stats.last_error = None
        if produced:
            stats.latencies.extend(done - p for p in produced)
            stats._newest = max(produced)
        ended = datetime.fromtimestamp(done, UTC)
        with self.lock:
            self.stores.catalog.record_task(
                self.run_id,
                TaskRecord(
                    self.contract.table,
                    "ingest",
                    TaskStatus.LANDED.value,
                    rows=landed.rows,
                    quarantined=landed.quarantined,
                    started_at=started,
                    ended_at=ended,
                ),
            )
        self.sink(
            Event(
                "ingest",
                self.contract.table,
                TaskStatus.LANDED,
                {
                    "rows": landed.rows,
                    "quarantined": landed.quarantined,
                    "read": landed.read,
                    "batch_id": landed.batch_id,
                    "warnings": landed.warnings,
                    "latency_p50_s": _rounded(statistics.median(done - p for p in produced))
                    if produced
                    else None,
                },
                run_id=self.run_id,
                outputs=(self.contract.table,),
            )
        )

    def _lagging(self, lag: dict[str, int]) -> None:
        self.stats.lag = lag
        newest = self.stats._newest
        behind = any(v > 0 for v in lag.values())
        self.stats.lag_seconds = max(0.0, time.time() - newest) if behind and newest else 0.0

    def _failed(self, err: HeadwaterError) -> None:
        if err.where is None:
            err.where = Location(self.project.contract_file(self.contract))
        self.stats.last_error = err.render()
        self.sink(
            Event(
                "ingest",
                self.contract.table,
                TaskStatus.FAILED,
                {"error": err.render(), "retry": not isinstance(err, SpecError)},
                run_id=self.run_id,
            )
        )


@dataclass
class StreamState:
    """Where a stream contract stands: its raw table's newest commit and the source's lag."""

    table: str
    kind: str
    position: dict[str, Any]  # the lake's checkpoint: offsets or LSN
    landed_at: datetime | None
    lag: dict[str, int]
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "kind": self.kind,
            "position": self.position,
            "landed_at": self.landed_at.isoformat() if self.landed_at else None,
            "lag": self.lag,
            "error": self.error,
        }


def stream_states(project: Project, stores: LakeStores) -> list[StreamState]:
    """Each stream contract's position in the lake and what its source still holds (a source
    that cannot be reached gives its error instead of a lag)."""
    from headwater.ingest.connectors import source_lag

    out = []
    for contract in project.contracts.values():
        if contract.connector.kind not in STREAM_KINDS:
            continue
        properties = stores.lake.current_properties(contract.table)
        stored = properties.get("checkpoint")
        position: dict[str, Any] = {}
        if isinstance(stored, dict):
            position = {k: stored[k] for k in ("offsets", "lsn") if stored.get(k) is not None}
        snapshots = stores.lake.recent(contract.table)[-1:]
        landed = (
            datetime.fromtimestamp(snapshots[0].timestamp_ms / 1000, UTC) if snapshots else None
        )
        state = StreamState(contract.table, contract.connector.kind, position, landed, {})
        try:
            state.lag = source_lag(contract.connector, stores.secrets, properties)
        except HeadwaterError as err:
            state.error = err.render()
        out.append(state)
    return out
