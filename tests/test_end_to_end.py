"""The quick start and the crash guarantee, as real processes (slow: seconds each).

`make demo` is `headwater init` + `headwater run` on the full-size example; these tests run
the same two commands, then what a user does next: run again, or kill a run and rerun it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow


def headwater(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "headwater", *args],
        capture_output=True,
        text=True,
        check=check,
        env=env,
    )


def raw_rows(root: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every raw and quarantine row, without the ingestion time (which differs per run)."""
    from headwater.project import load_project
    from headwater.zones.catalog import catalog_url
    from headwater.zones.lake import Lake

    project = load_project(root)
    lake = Lake(catalog_url(project.settings.catalog, root), project.settings.lake, root)
    out = {}
    for contract in project.contracts.values():
        for table in (contract.table, f"{contract.table}__quarantine"):
            files = lake.files(table)
            query = (
                "select * exclude (_hw_ingested_at, _hw_batch_id) from "
                "read_parquet($f, union_by_name=true) order by all"
            )
            out[table] = duckdb.sql(query, params={"f": files}).fetchall() if files else []
    return out


def warehouse(root: Path) -> dict[str, list[tuple[object, ...]]]:
    with duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True) as conn:
        names = conn.sql(
            "select schema_name || '.' || table_name from duckdb_tables() "
            "where schema_name like 'hw_%'"
        ).fetchall()
        return {n: conn.sql(f"select * from {n} order by all").fetchall() for (n,) in names}


def test_demo_runs_end_to_end_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "demo-shop"
    headwater("init", str(root))
    first = headwater("run", "-p", str(root))
    out = first.stdout
    assert "raw.events" in out and "199,997" in out  # rows per raw table
    assert "Zones now hold — raw: 225,996 rows · seed: 8 rows · clean: 225,993 rows · marts:" in out
    assert "malformed JSON: not a JSON object" in out  # a quarantined record with its reason
    assert "unknown field(s) debug (evolution: freeze)" in out
    assert "customers_email_format" in out and "warn" in out  # rule results
    assert "15/23 rules passed" in out
    raw_before, tables_before = raw_rows(root), warehouse(root)
    second = headwater("run", "-p", str(root))
    assert "0 rows landed, 0 quarantined, 0 models built" in second.stdout
    assert raw_rows(root) == raw_before
    assert warehouse(root) == tables_before


def lake_files(root: Path) -> int:
    return sum(1 for _ in (root / ".headwater/lake").rglob("*.parquet"))


def test_sigkill_during_ingestion_then_rerun_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    template = tmp_path / "template"
    headwater("init", str(template), "--events", "150000")
    reference = tmp_path / "reference"
    shutil.copytree(template, reference)
    headwater("ingest", "-p", str(reference))
    expected = raw_rows(reference)
    total = sum(len(rows) for rows in expected.values())
    assert total > 150_000
    files = lake_files(reference)
    assert files > 20, "too few data files to kill between them"

    # Kill moments are set by progress (data files written so far), not by the clock: a
    # machine under load must not turn the kill into a no-op.
    partial_states = 0
    for attempt, share in enumerate((0.05, 0.4, 0.75)):
        root = tmp_path / f"crash{attempt}"
        shutil.copytree(template, root)
        process = subprocess.Popen(
            [sys.executable, "-m", "headwater", "ingest", "-p", str(root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        target = max(1, int(files * share))
        while process.poll() is None and (
            not (root / ".headwater/lake").exists() or lake_files(root) < target
        ):
            time.sleep(0.002)
        assert process.poll() is None, "ingestion ended before the kill; nothing was interrupted"
        process.send_signal(signal.SIGKILL)
        process.wait()
        landed_before_rerun = (
            sum(len(rows) for rows in raw_rows(root).values())
            if (root / ".headwater/catalog.db").exists()
            else 0
        )
        partial_states += 0 < landed_before_rerun < total
        headwater("ingest", "-p", str(root))
        assert raw_rows(root) == expected, f"killed after {target} of {files} data files"
    assert partial_states >= 1, "no kill landed between two commits; the test proved little"
