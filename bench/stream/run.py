"""Stream benchmark: Kafka messages into raw, headwater vs a plain consumer loop, and latency.

    .venv/bin/python bench/stream/run.py [--messages 500000] [--rounds 3] [--rate 5000]

Starts a real single-node Kafka broker (tests/kafka.py), then:

1. **Throughput**: `--messages` JSON messages (5 fields) on a 3-partition topic, drained by
   - headwater: `ingest` of a Kafka contract (conform to the contract, quarantine, one Iceberg
     commit with the offsets, offsets committed to Kafka after it);
   - plain: a confluent-kafka consumer loop parsing the values with Arrow's JSON reader into the
     same types, written to one Parquet file, offsets committed after it (the physical limit);
   each in a fresh process (`measure.py`), `--rounds` times on fresh topics (median), which side
   goes first alternating. Goal: headwater >= 0.7x the plain loop's messages/s.
2. **Latency**: `headwater ingest --follow` (max_wait 1 s) while a producer sends `--rate`
   messages/s for `--seconds`; each message's latency is its raw commit's time minus its
   producer timestamp. Goal: p99 under 2 x max_wait.

Writes out/results.json (or --out) with every sample.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE.parent))  # bench/machine.py
from machine import describe  # noqa: E402
from tests import kafka  # noqa: E402

OUT = HERE / "out"
MEASURE = HERE / "measure.py"
MAX_WAIT_S = 1.0
GOALS = {"throughput_ratio": 0.7, "p99_latency_s": 2 * MAX_WAIT_S}


def message(i: int) -> bytes:
    at = datetime.fromtimestamp(1_700_000_000 + i, UTC).isoformat()
    return json.dumps(
        {"id": i, "user_id": i % 9973, "page": f"/p/{i % 101}", "amount": i % 1000 / 10, "at": at}
    ).encode()


def produce(broker: str, topic: str, count: int) -> None:
    kafka.produce(broker, topic, [message(i) for i in range(count)])


def measure(kind: str, broker: str, topic: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hw-stream-bench-") as folder:
        done = subprocess.run(
            [sys.executable, str(MEASURE), kind, broker, topic, folder],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"{kind} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def throughput(broker: str, messages: int, rounds: int) -> dict[str, Any]:
    samples: dict[str, list[dict[str, Any]]] = {"headwater": [], "plain": []}
    for r in range(rounds):
        order = ["headwater", "plain"] if r % 2 == 0 else ["plain", "headwater"]
        for kind in order:
            topic = f"bench-{uuid.uuid4().hex[:8]}"
            kafka.create_topic(broker, topic, partitions=3)
            produce(broker, topic, messages)
            result = measure(kind, broker, topic)
            if result["rows"] != messages:
                raise SystemExit(f"{kind} landed {result['rows']:,} of {messages:,} messages")
            samples[kind].append(result)
            print(
                f"  round {r + 1}: {kind:9} {result['wall_s']:.2f} s "
                f"({messages / result['wall_s']:,.0f} msg/s, cpu {result['cpu_s']:.2f} s)",
                flush=True,
            )
    wall = {k: statistics.median(s["wall_s"] for s in v) for k, v in samples.items()}
    cpu = {k: statistics.median(s["cpu_s"] for s in v) for k, v in samples.items()}
    return {
        "messages": messages,
        "headwater_msgs_per_s": messages / wall["headwater"],
        "plain_msgs_per_s": messages / wall["plain"],
        "throughput_ratio": wall["plain"] / wall["headwater"],
        "cpu_ratio": cpu["headwater"] / cpu["plain"],
        "peak_rss_mb": {k: max(s["peak_rss_mb"] for s in v) for k, v in samples.items()},
        "samples": samples,
    }


def latency(broker: str, rate: int, seconds: float) -> dict[str, Any]:
    """A follow worker while a producer sends `rate` messages a second: a message's latency is
    its raw commit's time minus its producer timestamp."""
    topic, spec = _stream(broker, "latency", int(MAX_WAIT_S * 1000))
    total, landed = follow_latency(
        "clicks", spec, lambda: _produce_at(broker, topic, rate, seconds), "_hw_timestamp"
    )
    return {
        "rate": rate,
        "seconds": seconds,
        "messages": total,
        "max_wait_s": MAX_WAIT_S,
        **spread([latency for _, latency in landed]),
    }


def _stream(broker: str, prefix: str, wait_ms: int) -> tuple[str, dict[str, Any]]:
    """A fresh 3-partition topic and the Kafka contract of the throughput runs reading it,
    batches closing after `wait_ms`."""
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    kafka.create_topic(broker, topic, partitions=3)
    sys.path.insert(0, str(HERE))
    from measure import contract

    spec = contract(broker, topic)
    spec["connector"] |= {"max_wait": f"{wait_ms}ms", "max_rows": 100_000}
    return topic, spec


def endurance(broker: str, rate: int, minutes: float, wait_ms: int) -> dict[str, Any]:
    """A follow worker committing every `wait_ms` for `minutes`: the latency of each minute's
    messages, so a worker that slows as its table grows shows it (the goal: the last minute's
    p99 within 1.25x of the first's)."""
    topic, spec = _stream(broker, "endurance", wait_ms)
    total, landed = follow_latency(
        "clicks",
        spec,
        lambda: _produce_at(broker, topic, rate, minutes * 60),
        "_hw_timestamp",
        stats=True,
    )
    first = min(at for at, _ in landed)
    windows: dict[int, list[float]] = {}
    for at, latency in landed:
        windows.setdefault(int((at - first) // 60), []).append(latency)
    per_minute = [{"minute": m + 1, **spread(v)} for m, v in sorted(windows.items())]
    return {
        "rate": rate,
        "minutes": minutes,
        "max_wait_s": wait_ms / 1000,
        "messages": total,
        "overall": spread([latency for _, latency in landed]),
        "per_minute": per_minute,
        "steady_ratio": per_minute[-1]["p99_s"] / per_minute[0]["p99_s"],
        **FOLLOWED,
    }


FOLLOWED: dict[str, Any] = {}  # what the last follow_latency(stats=True) found in the lake


def follow_latency(
    name: str,
    spec: dict[str, Any],
    produce: Callable[[], int],
    produced_at: str,
    where: str = "",
    *,
    stats: bool = False,
) -> tuple[int, list[tuple[float, float]]]:
    """`headwater ingest --follow` on a project of the one stream contract `name` while
    `produce()` sends records (it returns how many); then each landed record's production time
    (epoch seconds) and latency: its raw commit's time minus its `produced_at` column (rows
    matching `where`, if given). `stats`: keep the table's commit counts in FOLLOWED."""
    import duckdb

    with tempfile.TemporaryDirectory(prefix="hw-stream-latency-") as folder:
        root = Path(folder)
        (root / "contracts").mkdir()
        (root / "headwater.yml").write_text("name: latency\n", encoding="utf-8")
        (root / "contracts" / f"{name}.yml").write_text(json.dumps(spec), encoding="utf-8")
        worker = subprocess.Popen(
            [sys.executable, "-m", "headwater", "ingest", "--follow", "-p", folder],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(4)  # started: in the consumer group, or its (empty) snapshot landed
        total = produce()
        lake, table = _lake(root), f"raw.{name}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if lake.table(table) is not None and lake.row_count(table) >= total:
                break
            time.sleep(0.3)
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=60)
        snapshots = lake.snapshots(table)
        committed = {s.properties["batch_id"]: s.timestamp_ms for s in snapshots}
        if stats:
            FOLLOWED.update(commits=len(snapshots), kept=len(lake.recent(table)))
            FOLLOWED["data_files"] = len(lake.files(table))
        found = duckdb.sql(
            f"select _hw_batch_id, epoch_ms({produced_at}) from read_parquet($f) "
            f"where {where or 'true'}",
            params={"f": lake.files(table)},
        ).fetchall()
    return total, [(at / 1000, (committed[b] - at) / 1000) for b, at in found]


def spread(latencies: list[float]) -> dict[str, Any]:
    """How many, and the p50, p99 and largest of `latencies` (seconds)."""
    ordered = sorted(latencies)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"landed": len(ordered), "p50_s": at(0.5), "p99_s": at(0.99), "max_s": ordered[-1]}


def _produce_at(broker: str, topic: str, rate: int, seconds: float) -> int:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": broker, "linger.ms": 5})
    sent, started = 0, time.monotonic()
    tick = 0.05
    while time.monotonic() - started < seconds:
        due = int((time.monotonic() - started) * rate)
        while sent < due:
            producer.produce(topic, value=message(sent))
            sent += 1
        producer.poll(0)
        time.sleep(tick)
    producer.flush(30)
    return sent


def _lake(root: Path) -> Any:
    from headwater.zones.lake import Lake

    return Lake(f"sqlite:///{root / '.headwater' / 'catalog.db'}", ".headwater/lake", root)


CDC_COLUMNS = [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "amount", "type": "decimal(10,2)"},
    {"name": "status", "type": "varchar"},
]


def cdc(changes: int, rate: int, seconds: float) -> dict[str, Any]:
    """CDC changes/s (headwater's `ingest` vs a bare replication loop) and follow latency."""
    import sqlalchemy as sa
    from tests import postgres

    with postgres.cluster() as url:
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        plain_url = url.replace("postgresql+psycopg://", "postgresql://")
        with engine.connect() as conn:
            conn.execute(
                sa.text(
                    "CREATE TABLE orders (id bigint PRIMARY KEY, amount numeric(10,2), status text)"
                )
            )
            conn.execute(sa.text("CREATE PUBLICATION bare FOR TABLE orders"))
            conn.execute(sa.text("SELECT pg_create_logical_replication_slot('bare', 'pgoutput')"))
        with tempfile.TemporaryDirectory(prefix="hw-cdc-bench-") as folder:
            root = Path(folder)
            spec = {
                "name": "orders",
                "source": "shop.orders",
                "schema_version": "1",
                "delivery": "stream",
                "privacy_level": "internal",
                "primary_key": ["id"],
                "connector": {"kind": "postgres_cdc", "url": url, "table": "public.orders"},
                "columns": CDC_COLUMNS,
            }
            (root / "contract.json").write_text(json.dumps(spec), encoding="utf-8")
            _land_cdc(root, spec)  # the (empty) snapshot: the slot starts here
            with engine.connect() as conn:  # inserts, then updates, 1,000 to a transaction
                for start in range(0, changes // 2, 1000):
                    conn.execute(
                        sa.text(
                            "INSERT INTO orders SELECT g, g / 100.0, 'new' "
                            "FROM generate_series(CAST(:a AS bigint), CAST(:b AS bigint)) g"
                        ),
                        {"a": start + 1, "b": min(start + 1000, changes // 2)},
                    )
                for start in range(0, changes - changes // 2, 1000):
                    conn.execute(
                        sa.text("UPDATE orders SET status = 'paid' WHERE id BETWEEN :a AND :b"),
                        {"a": start + 1, "b": start + 1000},
                    )
                target = conn.execute(sa.text("SELECT pg_current_wal_lsn()::text")).scalar_one()
            ours = _measure_cdc(["headwater-cdc", url, folder])
            bare = _measure_cdc(["plain-cdc", plain_url, "bare", "bare", str(target)])
        for result in (ours, bare):
            if result["rows"] != changes:
                raise SystemExit(f"CDC landed {result['rows']:,} of {changes:,} changes")
        latency = _cdc_latency(url, engine, rate, seconds)
        engine.dispose()
    return {
        "changes": changes,
        "headwater_changes_per_s": changes / ours["wall_s"],
        "bare_changes_per_s": changes / bare["wall_s"],
        "ratio": bare["wall_s"] / ours["wall_s"],
        "samples": {"headwater": ours, "bare": bare},
        "latency": latency,
    }


def _land_cdc(root: Path, spec: dict[str, Any]) -> Any:
    from headwater.contracts import Contract
    from headwater.ingest import ingest

    return ingest(
        Contract.model_validate(spec),
        root=root,
        lake=_lake_at(root),
        now=datetime.now(UTC),
    )


def _lake_at(root: Path) -> Any:
    from headwater.zones.lake import Lake

    return Lake(f"sqlite:///{root / 'catalog.db'}", "lake", root)


def _measure_cdc(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(MEASURE), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cdc_latency(url: str, engine: Any, rate: int, seconds: float) -> dict[str, Any]:
    """A follow worker while single-row transactions commit at `rate` a second: each change's
    latency is its raw commit's time minus its transaction's commit time."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        conn.execute(sa.text("CREATE TABLE live (id bigint PRIMARY KEY, note text)"))
    spec = {
        "source": "shop.live",
        "schema_version": "1",
        "delivery": "stream",
        "privacy_level": "internal",
        "connector": {
            "kind": "postgres_cdc",
            "url": url,
            "table": "public.live",
            "max_wait": f"{int(MAX_WAIT_S * 1000)}ms",
        },
        "columns": [{"name": "id", "type": "bigint"}, {"name": "note", "type": "varchar"}],
    }

    def commit() -> int:
        sent, started = 0, time.monotonic()
        with engine.connect() as conn:
            while time.monotonic() - started < seconds:
                due = int((time.monotonic() - started) * rate)
                while sent < due:
                    conn.execute(sa.text("INSERT INTO live VALUES (:i, 'x')"), {"i": sent})
                    sent += 1
                time.sleep(0.01)
        return sent

    sent, landed = follow_latency("live", spec, commit, "_hw_commit_time", "_hw_op = 'c'")
    return {
        "rate": rate,
        "seconds": seconds,
        "changes": sent,
        **spread([latency for _, latency in landed]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=5_000, help="messages/s for latency")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--changes", type=int, default=200_000, help="CDC changes")
    parser.add_argument("--cdc-rate", type=int, default=500, help="CDC transactions/s")
    parser.add_argument("--out", type=Path, default=OUT / "results.json")
    parser.add_argument(
        "--only", choices=("kafka", "cdc", "endurance"), help="one part (endurance: only by name)"
    )
    parser.add_argument("--minutes", type=float, default=20.0, help="endurance run length")
    parser.add_argument("--wait-ms", type=int, default=250, help="endurance max_wait")
    parser.add_argument("--endurance-rate", type=int, default=1_000, help="endurance msg/s")
    args = parser.parse_args()
    result: dict[str, Any] = {"goals": GOALS, "machine": describe()}
    if args.only == "endurance":
        with kafka.broker() as broker:
            print(
                f"endurance: {args.endurance_rate:,} msg/s for {args.minutes:g} min, "
                f"max_wait {args.wait_ms} ms",
                flush=True,
            )
            e = result["endurance"] = endurance(
                broker, args.endurance_rate, args.minutes, args.wait_ms
            )
        for w in e["per_minute"]:
            print(f"  minute {w['minute']:3}: p50 {w['p50_s']:.2f} s, p99 {w['p99_s']:.2f} s")
        print(
            f"{e['commits']:,} commits ({e['kept']} kept in Iceberg, {e['data_files']:,} data "
            f"files); p99 last/first minute {e['steady_ratio']:.2f}x (goal <= 1.25x), "
            f"overall p50 {e['overall']['p50_s']:.2f} s, p99 {e['overall']['p99_s']:.2f} s"
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
        return
    if args.only != "cdc":
        with kafka.broker() as broker:
            print(f"broker {broker}; {args.messages:,} messages, 3 partitions", flush=True)
            result["throughput"] = throughput(broker, args.messages, args.rounds)
            print(f"latency: {args.rate:,} msg/s for {args.seconds:g} s, max_wait 1 s", flush=True)
            result["latency"] = latency(broker, args.rate, args.seconds)
        t, lat = result["throughput"], result["latency"]
        print(
            f"\nheadwater {t['headwater_msgs_per_s']:,.0f} msg/s, plain loop "
            f"{t['plain_msgs_per_s']:,.0f} msg/s: {t['throughput_ratio']:.2f}x "
            f"(goal >= {GOALS['throughput_ratio']}x), cpu {t['cpu_ratio']:.2f}x"
        )
        print(
            f"latency at {lat['rate']:,} msg/s: p50 {lat['p50_s']:.2f} s, p99 {lat['p99_s']:.2f} "
            f"s (goal < {GOALS['p99_latency_s']:g} s), {lat['landed']:,}/{lat['messages']:,} landed"
        )
    if args.only != "kafka":
        print(f"CDC: {args.changes:,} changes, then {args.cdc_rate:,} commits/s", flush=True)
        c = result["cdc"] = cdc(args.changes, args.cdc_rate, args.seconds)
        print(
            f"CDC: headwater {c['headwater_changes_per_s']:,.0f} changes/s, a bare replication "
            f"loop (nothing decoded or written) {c['bare_changes_per_s']:,.0f}/s: "
            f"{c['ratio']:.2f}x; latency at {c['latency']['rate']:,} commits/s: "
            f"p50 {c['latency']['p50_s']:.2f} s, p99 {c['latency']['p99_s']:.2f} s "
            f"(goal < {GOALS['p99_latency_s']:g} s)"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
