"""`headwater ingest --follow` on a real broker, as a user runs it: worker processes killed with
SIGKILL and restarted, a second worker joining the group, SIGTERM, a dead broker. Whatever
happens, raw holds every message exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from headwater.zones.lake import Lake
from tests import kafka
from tests.ingest.raw import rows

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
HEADWATER = [sys.executable, "-m", "headwater"]
TOTAL = 100_000


def project(folder: Path, broker: str, topic: str, **connector: object) -> Path:
    (folder / "contracts").mkdir(parents=True)
    (folder / "headwater.yml").write_text("name: streams\n", encoding="utf-8")
    spec = {
        "source": "web.clicks",
        "schema_version": 1,
        "delivery": "stream",
        "privacy_level": "internal",
        "connector": {
            "kind": "kafka",
            "brokers": broker,
            "topics": [topic],
            "max_rows": 3000,
            "max_wait": "300ms",
            **connector,
        },
        "columns": [
            {"name": "id", "type": "bigint", "nullable": False},
            {"name": "page", "type": "varchar"},
        ],
    }
    (folder / "contracts" / "clicks.yml").write_text(json.dumps(spec), encoding="utf-8")
    return folder


def worker(root: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*HEADWATER, "ingest", "--follow", "-p", str(root), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def landed(root: Path) -> list[tuple[int, int, int]]:
    """(partition, offset, id) of every row of raw.clicks."""
    lake = Lake(f"sqlite:///{root / '.headwater' / 'catalog.db'}", ".headwater/lake", root)
    if lake.table("raw.clicks") is None:
        return []
    return rows(lake, "raw.clicks", "_hw_partition, _hw_offset, id")


def wait_for(root: Path, count: int, timeout: float = 120.0) -> list[tuple[int, int, int]]:
    deadline = time.monotonic() + timeout
    got = landed(root)
    while len(got) < count and time.monotonic() < deadline:
        time.sleep(0.5)
        got = landed(root)
    return got


def producing(broker: str, topic: str, total: int, seconds: float) -> threading.Thread:
    """Produce `total` messages (ids 0..total-1) spread over about `seconds`, in background."""

    def run() -> None:
        chunks = 20
        for c in range(chunks):
            ids = range(c * total // chunks, (c + 1) * total // chunks)
            values = [json.dumps({"id": i, "page": f"/p{i % 13}"}).encode() for i in ids]
            kafka.produce(broker, topic, list(values))
            time.sleep(seconds / chunks)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def stop(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def exactly_once(got: list[tuple[int, int, int]], total: int) -> None:
    assert len(got) == total, f"{len(got):,} rows for {total:,} messages"
    assert len({(p, o) for p, o, _ in got}) == total, "an offset landed twice"
    assert sorted(i for _, _, i in got) == list(range(total))


def test_killed_five_times_with_sigkill_every_message_lands_once(
    broker: str, tmp_path: Path
) -> None:
    topic = f"clicks-{uuid.uuid4().hex[:8]}"
    kafka.create_topic(broker, topic, partitions=3)
    root = project(tmp_path / "p", broker, topic)
    feeder = producing(broker, topic, TOTAL, seconds=8)
    chance = random.Random(os.environ.get("PYTEST_XDIST_WORKER", "") + topic)
    for _ in range(5):
        process = worker(root)
        time.sleep(chance.uniform(1.5, 4.0))  # starting takes about a second; then it lands
        process.kill()  # SIGKILL: no batch finished, no offsets committed to Kafka
        process.wait()
    feeder.join()
    process = worker(root)
    got = wait_for(root, TOTAL)
    code, _, err = stop(process)
    assert code == 0, err
    exactly_once(landed(root), TOTAL)
    assert len(got) == TOTAL


def test_a_second_worker_joining_and_one_leaving_lose_and_duplicate_nothing(
    broker: str, tmp_path: Path
) -> None:
    topic = f"clicks-{uuid.uuid4().hex[:8]}"
    kafka.create_topic(broker, topic, partitions=3)
    root = project(tmp_path / "p", broker, topic)
    feeder = producing(broker, topic, TOTAL, seconds=10)
    first = worker(root)
    time.sleep(3)
    second = worker(root)  # the group rebalances: some partitions move mid-batch
    time.sleep(4)
    code, out_first, err = stop(first)  # and again: the second takes every partition
    assert code == 0, err
    feeder.join()
    wait_for(root, TOTAL)
    code, out_second, err = stop(second)
    assert code == 0, err
    exactly_once(landed(root), TOTAL)
    # both landed batches: the partitions moved between them while messages kept coming
    assert "raw.clicks: +" in out_first and "raw.clicks: +" in out_second


def test_sigterm_lands_the_batch_at_hand_and_a_poison_message_does_not_block(
    broker: str, tmp_path: Path
) -> None:
    topic = f"clicks-{uuid.uuid4().hex[:8]}"
    kafka.create_topic(broker, topic, partitions=1)
    # a long max_wait: only SIGTERM closes the batch
    root = project(tmp_path / "p", broker, topic, max_wait="1h", max_rows=1_000_000)
    process = worker(root, "--format", "json")
    kafka.produce(broker, topic, [b'{"id": 0, "page": "/"}', b"{oops", b'{"id": 1, "page": "/"}'])
    time.sleep(4)
    assert landed(root) == []  # still gathering its batch
    code, out, err = stop(process)
    assert code == 0, err
    assert [r[2] for r in landed(root)] == [0, 1]
    batches = [json.loads(line) for line in out.splitlines()]
    assert [(b["table"], b["rows"], b["quarantined"]) for b in batches] == [("raw.clicks", 2, 1)]


def test_a_dead_broker_is_named_and_retried_with_backoff(tmp_path: Path) -> None:
    pytest.importorskip("confluent_kafka", reason="the kafka extra is not installed")
    dead = f"127.0.0.1:{kafka._free_port()}"
    root = project(tmp_path / "p", dead, "clicks", connect_timeout="1s")
    process = worker(root)
    time.sleep(6)  # tries at once, then after ~1 s and ~2 s
    code, _, err = stop(process)
    assert code == 0
    tries = err.count(f"cannot reach the Kafka brokers at {dead}")
    assert tries >= 2, err
    assert "restarting with backoff" in err
    assert "%3|" not in err  # librdkafka's own log lines stay out of the user's terminal
