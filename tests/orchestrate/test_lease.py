"""One run of a project at a time: a second run is refused with who holds the project, and
the lease of a run that was killed is taken over by the next one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from headwater.orchestrate import Stores, run
from headwater.orchestrate.lease import RUN, held
from headwater.project import load_project
from headwater.zones.catalog import Catalog
from headwater.zones.catalog.lease import Busy
from headwater.zones.catalog.schema import leases
from tests.badinput.harness import hw, write

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def project(root: Path) -> Path:
    write(root, "headwater.yml", "name: t\n")
    write(root, "models/marts/one.sql", "select 1 as one\n")
    return root


def catalog(root: Path) -> Catalog:
    return Catalog(f"sqlite:///{root / '.headwater/catalog.db'}")


def test_a_second_run_is_refused_with_who_holds_the_project(tmp_path: Path) -> None:
    root = project(tmp_path)
    hw(root, "build")  # the catalog exists
    holding = catalog(root)
    try:
        with held(holding, "run"):
            outcome = hw(root, "build")
        flat = " ".join(outcome.output.split())
        assert outcome.code == 75, outcome
        assert "another run holds this project: `headwater run` (process" in flat
        assert f"process {os.getpid()} on" in flat and "wait for it to finish" in flat
        assert hw(root, "build").code == 0  # given back when the holder ended
        assert holding.lease_holder(RUN) is None
    finally:
        holding.close()


HOLD = """
import sys, time
from headwater.zones.catalog import Catalog
catalog = Catalog(sys.argv[1])
catalog.acquire_lease("run", command="run")
print("held", flush=True)
time.sleep(600)
"""


def test_the_lease_of_a_killed_run_is_taken_over_by_the_next_run(tmp_path: Path) -> None:
    root = project(tmp_path)
    hw(root, "build")
    url = f"sqlite:///{root / '.headwater/catalog.db'}"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert hw(root, "build").code == 75  # alive: refused
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        outcome = hw(root, "build")
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    flat = " ".join(outcome.output.split())
    assert outcome.code == 0, outcome
    assert f"took over from `headwater run` (process {holder.pid}" in flat
    assert f"its process {holder.pid} is no longer running" in flat


def elsewhere(
    cat: Catalog, command: str, heard: datetime, host: str = "another-host.example", pid: int = 1
) -> None:
    """A lease held by process `pid` of `host`, last heard from at `heard`."""
    with cat.engine.begin() as conn:
        conn.execute(
            leases.insert().values(
                name=RUN,
                token="elsewhere",
                host=host,
                pid=pid,
                command=command,
                acquired_at=heard,
                heartbeat_at=heard,
            )
        )


def test_a_lease_whose_heartbeat_stopped_on_another_host_is_taken_over(tmp_path: Path) -> None:
    root = project(tmp_path)
    hw(root, "build")
    cat = catalog(root)
    try:
        elsewhere(cat, "run", datetime.now(UTC) - timedelta(hours=1))
        outcome = hw(root, "build")
        assert outcome.code == 0, outcome
        assert "has not renewed its lease for" in " ".join(outcome.output.split())
        elsewhere(cat, "backfill", datetime.now(UTC) - timedelta(seconds=5))
        with pytest.raises(Busy, match="`headwater backfill` \\(process 1 on another-host"):
            cat.acquire_lease(RUN, command="run")
    finally:
        cat.close()


def test_a_holder_in_another_container_of_the_same_hostname_is_not_taken_for_dead(
    tmp_path: Path,
) -> None:
    """Its pid means nothing here (another pid namespace, or one this process cannot confirm
    is its own): only its heartbeat tells."""
    root = project(tmp_path)
    hw(root, "build")
    cat = catalog(root)
    try:
        missing = 2**22 + 17  # no process here has this pid
        for container in (f"{socket.gethostname()} #0bad0b00/[4026532999]", socket.gethostname()):
            elsewhere(cat, "run", datetime.now(UTC) - timedelta(seconds=5), container, missing)
            with pytest.raises(Busy, match=f"process {missing} on {socket.gethostname()},"):
                cat.acquire_lease(RUN, command="run")
            with cat.engine.begin() as conn:
                conn.execute(leases.delete())
    finally:
        cat.close()


def test_the_holder_renews_its_lease_while_it_works(tmp_path: Path) -> None:
    root = project(tmp_path)
    hw(root, "build")
    cat = catalog(root)
    try:
        with held(cat, "run", every=0.01) as lease:
            first = cat.lease_holder(RUN)
            assert first is not None and first.token == lease.token
            renewed = threading.Event()
            for _ in range(10_000):  # until a beat lands (no timing asserted)
                now = cat.lease_holder(RUN)
                if now is not None and now.heartbeat_at > first.heartbeat_at:
                    renewed.set()
                    break
                renewed.wait(0.01)
            assert renewed.is_set()
        assert cat.lease_holder(RUN) is None
    finally:
        cat.close()


def test_a_run_that_raises_gives_the_lease_back(tmp_path: Path) -> None:
    root = project(tmp_path)
    loaded = load_project(root)
    stores = Stores.open(loaded)
    try:
        with pytest.raises(ZeroDivisionError):
            run(loaded, stores, now=NOW, sink=lambda event: 1 / 0)
        assert stores.catalog.lease_holder(RUN) is None
        assert run(loaded, stores, now=NOW).ok
    finally:
        stores.close()


def test_a_run_whose_lease_was_taken_over_publishes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functools
    import time

    import headwater.orchestrate.running as running
    from headwater.orchestrate.lease import LeaseLost

    root = project(tmp_path)
    write(root, "models/marts/two.sql", "select 2 as two\n")
    loaded = load_project(root)
    stores = Stores.open(loaded)
    monkeypatch.setattr(running, "held", functools.partial(held, every=0.01))

    def thief(event: object) -> None:
        if getattr(event, "status", None) == "start":  # a build began: another run takes over
            with stores.catalog.engine.begin() as conn:
                conn.execute(leases.update().values(token="thief"))
            time.sleep(0.3)  # the heartbeat finds out

    try:
        with pytest.raises(LeaseLost, match="another run took this run's lease over"):
            run(loaded, stores, now=NOW, sink=thief)
        assert stores.catalog.pointers("prod") == {}  # nothing published
    finally:
        stores.close()
