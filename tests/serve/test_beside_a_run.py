"""Reads never wait on the writer: the data API reads the lake's products, so a process
holding the warehouse file (a run, `headwater sql --write`, a notebook) blocks no request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.badinput.harness import write
from tests.change.test_releases import ok, project
from tests.serve.test_vectors import serving

HOLD = """
import duckdb, sys, time
conn = duckdb.connect(sys.argv[1])          # read-write: the file is locked for every other process
conn.execute("begin transaction")
conn.execute("create table hw_hold as select 1 as x")
print("holding", flush=True)
time.sleep(60)
"""


def test_a_request_is_answered_while_another_process_holds_the_warehouse(tmp_path: Path) -> None:
    root = project(tmp_path)
    write(root, "models/marts/total.yml", "serve: true\n")
    ok(root, "run")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root / ".headwater/warehouse.duckdb")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with serving(root) as base:
            # a read queued behind the lock would hang until the holder let go (60 s)
            answer = httpx.get(f"{base}/v1/marts/total", timeout=30)
            assert answer.status_code == 200 and answer.json()["data"] == [{"total": 30}]
        assert holder.poll() is None  # the writer held the file the whole time
    finally:
        holder.kill()
        holder.wait()
