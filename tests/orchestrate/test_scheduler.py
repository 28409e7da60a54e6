"""The scheduler: cron jobs at their times (DST-safe, with catch-up), builds of what reads
newly landed data, and a run the lease refuses tried again on the next tick."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from headwater.contracts.orchestration import Schedule
from headwater.orchestrate import Stores, run
from headwater.orchestrate.lease import held
from headwater.orchestrate.scheduler import Scheduler, fire_times
from headwater.orchestrate.stores import LakeStores
from headwater.project import load_project
from tests.badinput.harness import csv_contract, write

T0 = datetime(2026, 12, 10, 8, 5, tzinfo=UTC)
ORDERS = csv_contract("shop.orders", id="bigint")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def times(cron: str, tz: str, start: str, end: str) -> list[str]:
    found = fire_times(Schedule(cron=cron, timezone=tz), utc(start), utc(end))
    return [t.strftime("%m-%d %H:%M") for t in found]


def test_a_daily_job_fires_once_a_day_through_both_dst_changes() -> None:
    # Berlin: 02:30 does not exist on 2026-03-29 and happens twice on 2026-10-25
    assert times("30 2 * * *", "Europe/Berlin", "2026-03-27", "2026-03-31") == [
        "03-27 01:30",
        "03-28 01:30",
        "03-29 01:30",  # 03:30 summer time: the skipped 02:30, an hour later
        "03-30 00:30",
    ]
    assert times("30 2 * * *", "Europe/Berlin", "2026-10-23", "2026-10-27") == [
        "10-23 00:30",
        "10-24 00:30",
        "10-25 00:30",  # the first 02:30 only
        "10-26 01:30",
    ]


def test_an_hourly_job_keeps_its_rhythm_through_the_change() -> None:
    assert times("*/30 * * * *", "Europe/Berlin", "2026-10-24T23:45", "2026-10-25T01:45") == [
        "10-25 00:00",
        "10-25 00:30",
        "10-25 01:00",
        "10-25 01:30",
    ]


def test_a_bad_schedule_is_refused_at_load(tmp_path: Path) -> None:
    from headwater.errors import SpecError

    write(tmp_path, "headwater.yml", "name: t\nschedule: {cron: '61 * * * *'}\n")
    with pytest.raises(SpecError, match="is not a cron expression"):
        load_project(tmp_path)
    write(tmp_path, "headwater.yml", "name: t\nschedule: {cron: '0 6 * * *', timezone: Mars}\n")
    with pytest.raises(SpecError, match="'Mars' is not a time zone"):
        load_project(tmp_path)


def project(root: Path, schedule: str) -> Path:
    write(root, "headwater.yml", f"name: t\nschedule: {schedule}\n")
    write(root, "contracts/orders.yml", ORDERS)
    write(root, "models/marts/counted.sql", "select count(*) as n from raw.orders\n")
    write(root, "data/a.csv", "id\n1\n2\n")
    return root


def scheduled_runs(root: Path) -> list[tuple[str, str]]:
    stores = LakeStores.open(load_project(root))
    try:
        runs = stores.catalog.recent_runs(100)
    finally:
        stores.close()
    return sorted((r["started_at"].strftime("%H:%M"), r["command"]) for r in runs)


@pytest.mark.parametrize("catch_up", ["latest", "all"])
def test_missed_times_are_caught_up_as_the_policy_says(tmp_path: Path, catch_up: str) -> None:
    root = project(tmp_path, f"{{cron: '0 * * * *', catch_up: {catch_up}}}")
    clock = Clock(T0)
    loaded = load_project(root)
    stores = LakeStores.open(loaded)
    try:
        scheduler = Scheduler(loaded, stores, clock=clock)
        assert scheduler.tick().runs == []  # first sight: its first time is the next one
        clock.now = T0 + timedelta(hours=3)  # 09:00, 10:00 and 11:00 were missed
        ran = scheduler.tick().runs
        clock.now += timedelta(minutes=5)
        assert scheduler.tick().runs == []  # nothing more is due
    finally:
        stores.close()
    assert all(report.ok for _, report in ran)
    if catch_up == "latest":
        assert scheduled_runs(root) == [("11:05", "scheduler project")]
    else:  # each missed time runs at its own clock, oldest first
        assert scheduled_runs(root) == [
            ("09:00", "scheduler project"),
            ("10:00", "scheduler project"),
            ("11:00", "scheduler project"),
        ]


def test_new_raw_data_builds_what_reads_it(tmp_path: Path) -> None:
    root = project(tmp_path, "{cron: '0 0 1 1 *'}")  # not due in this test
    loaded = load_project(root)
    full = Stores.open(loaded)
    try:
        assert run(loaded, full, now=T0).ok
    finally:
        full.close()
    clock = Clock(T0)
    stores = LakeStores.open(loaded)
    try:
        scheduler = Scheduler(loaded, stores, clock=clock)
        assert scheduler.tick().runs == []  # what is there counts as seen
        write(root, "data/b.csv", "id\n3\n")
        other = Stores.open(loaded)  # another process lands it
        try:
            assert run(loaded, other, now=T0 + timedelta(minutes=1), stages=("ingest",)).ok
        finally:
            other.close()
        clock.now += timedelta(minutes=2)
        [(why, report)] = scheduler.tick().runs
        assert why == "#arrival: new data in raw.orders"
        assert report.models["marts.counted"].status.value == "built"
        clock.now += timedelta(minutes=1)
        assert scheduler.tick().runs == []
        # landed and built by another process: nothing left for the scheduler to build
        write(root, "data/c.csv", "id\n4\n")
        other = Stores.open(loaded)
        try:
            assert run(loaded, other, now=T0 + timedelta(minutes=5)).ok
        finally:
            other.close()
        clock.now += timedelta(minutes=5)
        assert scheduler.tick().runs == []
    finally:
        stores.close()
    check = Stores.open(loaded)
    try:
        assert check.engine.rows("select n from marts.counted") == [(4,)]
    finally:
        check.close()


def test_a_job_refused_by_the_lease_waits_and_runs_on_the_next_tick(tmp_path: Path) -> None:
    root = project(tmp_path, "{cron: '*/10 * * * *'}")
    clock = Clock(T0)
    loaded = load_project(root)
    stores = LakeStores.open(loaded)
    try:
        scheduler = Scheduler(loaded, stores, clock=clock)
        scheduler.tick()
        clock.now = T0 + timedelta(minutes=6)  # 08:10 is due
        with held(stores.catalog, "backfill"):
            tick = scheduler.tick()
        assert tick.runs == []
        assert "another run holds this project: `headwater backfill`" in tick.waiting[0]
        clock.now += timedelta(minutes=1)
        [(why, report)] = scheduler.tick().runs
    finally:
        stores.close()
    assert why == "project: schedule */10 * * * *" and report.ok


@pytest.mark.slow
def test_sigterm_lets_the_scheduler_finish_and_stop(tmp_path: Path) -> None:
    root = project(tmp_path, "{cron: '* * * * *'}")
    headwater = Path(sys.executable).parent / "headwater"
    worker = subprocess.Popen(
        [str(headwater), "scheduler", "-p", str(root), "--every", "0.2"],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stderr is not None
        assert "scheduling t (project; data-arrival builds" in worker.stderr.readline()
        time.sleep(1)  # a few ticks
        os.kill(worker.pid, signal.SIGTERM)
        _, err = worker.communicate(timeout=120)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, err
    assert "stopping: finishing the run at hand" in err


def test_a_pool_no_setting_defines_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    from headwater.errors import SpecError

    write(tmp_path, "headwater.yml", "name: t\npools: {postgres: 1}\n")
    write(tmp_path, "models/marts/one.sql", "/* headwater\npool: postgre\n*/\nselect 1 as one\n")
    with pytest.raises(SpecError) as raised:
        load_project(tmp_path)
    assert "pool 'postgre' is not one of headwater.yml's pools (postgres)" in str(raised.value)
    assert "did you mean 'postgres'?" in str(raised.value) and "one.sql" in str(raised.value)


def test_a_tick_that_fails_is_reported_and_the_scheduler_goes_on(tmp_path: Path) -> None:
    import threading

    root = project(tmp_path, "{cron: '0 0 1 1 *'}")
    loaded = load_project(root)
    stores = LakeStores.open(loaded)
    seen: list[object] = []
    stop = threading.Event()
    calls = {"n": 0}

    def clock() -> datetime:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("catalog unreachable")  # the first tick fails
        return T0

    def shown(tick: object) -> None:
        seen.append(tick)
        if len(seen) == 2:
            stop.set()

    try:
        Scheduler(loaded, stores, clock=clock, on_tick=shown).serve(stop, every=0.01)
    finally:
        stores.close()
    first, second = seen
    assert first.waiting == ["tick failed: OSError: catalog unreachable"]  # type: ignore[attr-defined]
    assert second.checked is not None  # type: ignore[attr-defined]
