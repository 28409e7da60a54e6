"""Orphan data files: a run killed mid-ingest leaves uncommitted Parquet files; the next run
(or `headwater gc`) removes them, and never a file a live writer is about to commit."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from headwater.ingest import ingest
from headwater.zones.lake import Lake
from headwater.zones.orphans import writing
from tests.ingest.raw import rows
from tests.ingest.test_crash import (
    KEEP,
    NOW,
    contract,
    csv_lines,
    kill_when_writing,
    lake_at,
    start,
)

pytestmark = pytest.mark.slow


def data_folder(root: Path) -> Path:
    return root / "lake" / "raw" / "orders" / "data"


def big_csvs(tmp_path: Path, files: int = 2, lines: int = 250_000) -> Path:
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    for k in range(files):
        (folder / f"orders-{k}.csv").write_text(csv_lines(lines), encoding="utf-8")
    return folder


def test_a_rerun_removes_what_a_killed_run_left(tmp_path: Path) -> None:
    spec = contract({"kind": "files", "path": str(big_csvs(tmp_path) / "*.csv")})
    root = tmp_path / "crashed"
    kill_when_writing(start(root, spec), root)
    left = set(data_folder(root).glob("*.parquet"))
    assert left, "the killed run left no data file"
    crashed = lake_at(root)
    assert crashed.row_count("raw.orders") == 0

    again = ingest(spec, root=root, lake=crashed, now=NOW)
    assert any("interrupted run left uncommitted" in w for w in again.warnings), again.warnings
    present = set(data_folder(root).glob("*.parquet"))
    assert not left & present, "a file of the killed run is still there"
    assert {str(p) for p in present} == set(crashed.files("raw.orders"))
    twin = lake_at(tmp_path / "twin")
    once = ingest(spec, root=tmp_path / "twin", lake=twin, now=NOW)
    assert (again.rows, again.quarantined) == (once.rows, once.quarantined)
    for table in ("raw.orders", "raw.orders__quarantine"):
        assert rows(crashed, table, KEEP) == rows(twin, table, KEEP)
    assert crashed.gc() == [], "nothing left to collect"


def test_gc_never_removes_a_live_writers_files(tmp_path: Path) -> None:
    """gc runs again and again while another process writes: it removes none of that
    writer's files, which then commit whole."""
    spec = contract({"kind": "files", "path": str(big_csvs(tmp_path, files=3) / "*.csv")})
    root = tmp_path / "live"
    process = start(root, spec)
    lake = lake_at(root)
    removed = []
    while process.poll() is None:
        if data_folder(root).exists():
            removed += lake.gc(["raw.orders", "raw.orders__quarantine"])
        time.sleep(0.02)
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""
    assert removed == []
    twin = lake_at(tmp_path / "twin")
    once = ingest(spec, root=tmp_path / "twin", lake=twin, now=NOW)
    assert lake_at(root).row_count("raw.orders") == once.rows
    assert rows(lake_at(root), "raw.orders", KEEP) == rows(twin, "raw.orders", KEEP)


def test_a_held_lock_protects_and_a_dead_one_does_not(tmp_path: Path, lake: Lake) -> None:
    path = tmp_path / "data" / "o.csv"
    path.parent.mkdir()
    path.write_text("order_id,amount,updated_at\n1,2,2026-10-01\n", encoding="utf-8")
    ingest(contract({"kind": "files", "path": "data/*.csv"}), root=tmp_path, lake=lake, now=NOW)
    stray = data_folder(tmp_path) / "stray.parquet"
    assert lake.folder is not None
    with writing(lake.folder):
        stray.write_bytes(b"PAR1")
        assert lake.gc(dry_run=True) == [], "a file newer than a live writer is kept"
    assert [o.path for o in lake.gc(dry_run=True)] == [str(stray)]
    assert stray.exists(), "a dry run removes nothing"
    # a writer killed while holding its lock protects nothing
    pid = os.fork()
    if pid == 0:  # the child takes a lock, then waits to be killed
        with writing(lake.folder):
            time.sleep(60)
        os._exit(0)
    deadline = time.monotonic() + 10
    while not list((lake.folder / ".hw-writers").glob("*.lock")):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert lake.gc(dry_run=True) == [], "the child's lock is live"
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert [o.path for o in lake.gc()] == [str(stray)]
    assert not stray.exists()
    assert rows(lake, "raw.orders", "order_id") == [(1,)]


def test_the_gc_command(tmp_path: Path) -> None:
    from tests.badinput.harness import hw, probe_project

    root = probe_project(tmp_path / "probe")
    assert hw(root, "run").code == 0
    stray = root / ".headwater/lake/raw/orders/data/stray.parquet"
    stray.write_bytes(b"PAR1")
    old = time.time() - 7200
    os.utime(stray, (old, old))
    dry = hw(root, "gc", "--dry-run", "--format", "json")
    assert dry.code == 0, dry
    assert json.loads(dry.output)["removed"][0]["path"].endswith("stray.parquet")
    assert stray.exists()
    wrong = hw(root, "gc", "--format", "yamlx")  # refused before anything is removed
    assert wrong.code == 2 and "expected table or json" in wrong.output, wrong
    assert stray.exists()
    listed = hw(root, "gc")  # listing is the default
    assert listed.code == 0 and "would remove 1" in listed.output and stray.exists(), listed
    kept = hw(root, "gc", "--delete", "--grace", "3h")
    assert kept.code == 0 and "removed 0" in kept.output, kept
    done = hw(root, "gc", "--delete")
    assert done.code == 0 and "removed 1" in done.output and "raw.orders" in done.output, done
    assert not stray.exists()
    bad = hw(root, "gc", "--grace", "soon")
    assert bad.code == 2 and "Traceback" not in bad.output
