"""A SIGKILL in the middle of each connector's run, then a rerun: raw equals an uninterrupted run.

The run to kill is a separate process; it is killed while it streams data files into the lake
(or, for HTTP, by the API itself right after serving a page). The rerun and an uninterrupted
twin run in this process against their own lakes; raw and quarantine must hold the same rows.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from headwater.contracts import Contract
from headwater.ingest import ingest
from headwater.zones.lake import Lake
from tests import postgres, s3
from tests.httpapi import Api
from tests.ingest.raw import orders_contract, rows

pytestmark = pytest.mark.slow
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 10, 1, tzinfo=UTC)
COLUMNS = [
    {"name": "order_id", "type": "bigint", "nullable": False},
    {"name": "amount", "type": "decimal(10,2)"},
    {"name": "updated_at", "type": "timestamptz"},
]
KEEP = "* EXCLUDE (_hw_ingested_at)"
_CHILD = textwrap.dedent(
    """
    import json, sys
    from datetime import datetime
    from pathlib import Path
    from headwater.contracts import Contract
    from headwater.ingest import ingest
    from headwater.zones.lake import Lake
    root, spec, now = Path(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
    lake = Lake(f"sqlite:///{root / 'catalog.db'}", "lake", root)
    ingest(Contract.model_validate(spec), root=root, lake=lake, now=datetime.fromisoformat(now))
    """
)


def contract(connector: dict[str, Any], **overrides: Any) -> Contract:
    return orders_contract(
        connector, **{"primary_key": ["order_id"], "columns": COLUMNS, **overrides}
    )


def lake_at(root: Path) -> Lake:
    root.mkdir(parents=True, exist_ok=True)
    return Lake(f"sqlite:///{root / 'catalog.db'}", "lake", root)


def start(root: Path, spec: Contract) -> subprocess.Popen[bytes]:
    root.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(spec.model_dump(mode="json"))
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(root), payload, NOW.isoformat()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def kill_when_writing(process: subprocess.Popen[bytes], root: Path) -> None:
    """SIGKILL the process as soon as it has written a data file of raw.orders."""
    data = root / "lake" / "raw" / "orders" / "data"
    deadline = time.monotonic() + 120
    while not (data.exists() and any(data.glob("*.parquet"))):
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no data file was written in time"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL


def assert_rerun_equals_uninterrupted(tmp_path: Path, spec: Contract) -> None:
    crashed, twin = lake_at(tmp_path / "crashed"), lake_at(tmp_path / "twin")
    assert crashed.row_count("raw.orders") == 0, "the killed run must not have committed"
    again = ingest(spec, root=tmp_path / "crashed", lake=crashed, now=NOW)
    once = ingest(spec, root=tmp_path / "twin", lake=twin, now=NOW)
    assert (again.rows, again.quarantined) == (once.rows, once.quarantined)
    assert again.rows > 0
    for table in ("raw.orders", "raw.orders__quarantine"):
        assert rows(crashed, table, KEEP) == rows(twin, table, KEEP)
    # and a further run adds nothing twice
    ingest(spec, root=tmp_path / "crashed", lake=crashed, now=NOW)
    assert rows(crashed, "raw.orders", "count(*), count(DISTINCT _hw_source)")[0] == (
        once.rows,
        once.rows,
    )


def killed_then_rerun(
    tmp_path: Path, spec: Contract, kill: Callable[[subprocess.Popen[bytes], Path], None]
) -> None:
    root = tmp_path / "crashed"
    process = start(root, spec)
    kill(process, root)
    assert_rerun_equals_uninterrupted(tmp_path, spec)


def csv_lines(n: int) -> str:
    lines = ["order_id,amount,updated_at"]
    lines += [
        f"{i},{'x' if i % 1000 == 0 else i % 100}.25,2026-10-01T{i % 24:02d}:00:00Z"
        for i in range(1, n + 1)
    ]
    return "\n".join(lines) + "\n"


def test_files_killed_mid_run(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for k in range(2):
        (folder / f"orders-{k}.csv").write_text(csv_lines(250_000), encoding="utf-8")
    spec = contract({"kind": "files", "path": str(folder / "*.csv")})
    killed_then_rerun(tmp_path, spec, kill_when_writing)


def test_direct_lane_killed_mid_run(tmp_path: Path) -> None:
    """JSON-lines files DuckDB lands itself (ingest/direct.py), one of them with a bad record
    (the careful lane), killed once the first data file appears."""
    folder = tmp_path / "data"
    folder.mkdir()
    for k in range(4):
        records = (
            {
                "order_id": i,
                "amount": f"{i % 100}.25",
                "updated_at": f"2026-10-01T{i % 24:02d}:00:00Z",
            }
            for i in range(k * 100_000 + 1, (k + 1) * 100_000 + 1)
        )
        text = "".join(json.dumps(r) + "\n" for r in records)
        if k == 3:
            text += '{"order_id": "bad", "amount": 1, "updated_at": "2026-10-01T00:00:00Z"}\n'
        (folder / f"orders-{k}.jsonl").write_text(text, encoding="utf-8")
    spec = contract({"kind": "files", "path": str(folder / "*.jsonl")})
    killed_then_rerun(tmp_path, spec, kill_when_writing)


@pytest.mark.s3
def test_s3_killed_mid_run(tmp_path: Path) -> None:
    pytest.importorskip("s3fs", reason="the s3 extra is not installed")
    with s3.server() as endpoint:
        s3.bucket(endpoint, "crash")
        fs = s3.filesystem(endpoint)
        for k in range(2):
            fs.pipe(f"crash/orders/{k}.csv", csv_lines(250_000).encode())
        spec = contract(
            {
                "kind": "files",
                "path": "s3://crash/orders/*.csv",
                "endpoint_url": endpoint,
                "storage_options": {**s3.CREDENTIALS},
            }
        )
        killed_then_rerun(tmp_path, spec, kill_when_writing)


def test_http_killed_mid_run(tmp_path: Path) -> None:
    records: list[Any] = [
        {
            "order_id": i,
            "amount": "x" if i == 7 else i,
            "updated_at": (T0 + timedelta(minutes=i)).isoformat(),
        }
        for i in range(1, 41)
    ]
    for record in records:  # the test API pages by (updated_at, id)
        record["id"] = record["order_id"]
    with Api(records, page_size=4) as api:
        spec = contract(
            {
                "kind": "http",
                "url": f"{api.url}/cursor/orders",
                "records": "data",
                "pagination": {"kind": "cursor", "path": "meta.next", "param": "cursor"},
                "incremental": {"column": "updated_at", "param": "updated_since"},
            },
            evolution="discard_column",  # the test API's own `id` field
        )

        def kill_on_page_5(process: subprocess.Popen[bytes], root: Path) -> None:
            api.kill_on_page(5, process.pid)
            assert process.wait(timeout=60) == -signal.SIGKILL

        killed_then_rerun(tmp_path, spec, kill_on_page_5)


@pytest.mark.postgres
def test_postgres_killed_mid_run(tmp_path: Path) -> None:
    postgres.require()
    pytest.importorskip("adbc_driver_postgresql", reason="the postgres extra is not installed")
    with postgres.cluster() as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "CREATE TABLE orders AS SELECT g AS order_id, (g % 100)::numeric(10,2) AS "
                    "amount, timestamptz '2026-10-01' + g * interval '1 second' AS updated_at "
                    "FROM generate_series(1, 600000) g"
                )
            )
        engine.dispose()
        spec = contract(
            {
                "kind": "postgres",
                "url": url,
                "table": "orders",
                "incremental": {"column": "updated_at"},
            }
        )
        killed_then_rerun(tmp_path, spec, kill_when_writing)


@pytest.mark.parametrize("load", ["snapshot", "merge"])
def test_a_snapshot_or_merge_batch_killed_mid_run(tmp_path: Path, load: str) -> None:
    """A second batch killed while it writes: the rerun lands it once, the first batch stays
    as it was, and the raw history equals an uninterrupted twin's."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "orders-0.csv").write_text(csv_lines(1_000), encoding="utf-8")
    spec = contract({"kind": "files", "path": str(folder / "*.csv")}, load=load)
    crashed, twin = lake_at(tmp_path / "crashed"), lake_at(tmp_path / "twin")
    for lake, root in ((crashed, tmp_path / "crashed"), (twin, tmp_path / "twin")):
        ingest(spec, root=root, lake=lake, now=NOW)
    (folder / "orders-1.csv").write_text(csv_lines(250_000), encoding="utf-8")
    data = tmp_path / "crashed" / "lake" / "raw" / "orders" / "data"
    before = set(data.glob("*.parquet"))

    def kill_when_writing_again(process: subprocess.Popen[bytes], root: Path) -> None:
        deadline = time.monotonic() + 120
        while not set(data.glob("*.parquet")) - before:
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no data file was written in time"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL

    kill_when_writing_again(start(tmp_path / "crashed", spec), tmp_path / "crashed")
    assert crashed.row_count("raw.orders") == 999, "the killed run must not have committed"
    again = ingest(spec, root=tmp_path / "crashed", lake=crashed, now=NOW)
    once = ingest(spec, root=tmp_path / "twin", lake=twin, now=NOW)
    assert (again.rows, again.quarantined, again.batch_id) == (
        once.rows,
        once.quarantined,
        once.batch_id,
    )
    for table in ("raw.orders", "raw.orders__quarantine"):
        assert rows(crashed, table, KEEP) == rows(twin, table, KEEP)
    batches = Counter(batch for (batch,) in rows(crashed, "raw.orders", "_hw_batch_id"))
    copy = 251_000 if load == "snapshot" else 250_000  # a snapshot reads every file again
    assert sorted(batches.values()) == [1_000 - 1, copy - copy // 1000]  # every 1000th is bad
