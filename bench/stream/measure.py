"""One timed contender of the stream benchmark, in its own process (imports before the clock).

    measure.py headwater BROKER TOPIC FOLDER    headwater's `ingest` of a Kafka contract: every
                                                message of TOPIC into raw, one Iceberg commit
    measure.py plain BROKER TOPIC FOLDER        the physical limit: a confluent-kafka consumer
                                                loop, JSON parsed by Arrow, written to Parquet,
                                                offsets committed after the write
    measure.py headwater-cdc URL FOLDER         headwater's `ingest` of a CDC contract whose
                                                snapshot FOLDER's lake holds: the changes since
    measure.py plain-cdc URL SLOT PUB LSN       a replication loop reading the slot's messages
                                                up to LSN, nothing decoded or written

Prints one JSON object: wall and CPU seconds, messages landed, peak RSS.
"""

from __future__ import annotations

import json
import os
import resource
import select
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq
from confluent_kafka import Consumer, KafkaError, TopicPartition

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("user_id", pa.int64()),
        ("page", pa.string()),
        ("amount", pa.float64()),
        ("at", pa.timestamp("us", tz="UTC")),
    ]
)
CHUNK = 50_000


def contract(broker: str, topic: str) -> dict[str, Any]:
    return {
        "source": "web.clicks",
        "schema_version": 1,
        "delivery": "stream",
        "privacy_level": "internal",
        "connector": {"kind": "kafka", "brokers": broker, "topics": [topic]},
        "columns": [
            {"name": "id", "type": "bigint", "nullable": False},
            {"name": "user_id", "type": "bigint"},
            {"name": "page", "type": "varchar"},
            {"name": "amount", "type": "double"},
            {"name": "at", "type": "timestamptz"},
        ],
    }


def headwater(broker: str, topic: str, folder: str) -> dict[str, Any]:
    from headwater.contracts import Contract
    from headwater.ingest import ingest
    from headwater.ingest import kafka as _kafka  # noqa: F401 (imported before the clock)
    from headwater.zones.lake import Lake

    root = Path(folder)
    spec = Contract.model_validate({"name": "clicks", **contract(broker, topic)})
    lake = Lake(f"sqlite:///{root / 'catalog.db'}", "lake", root)
    lake.table_names()  # the catalog's tables exist before the clock (pyiceberg loaded)
    started, cpu = time.perf_counter(), time.process_time()
    landed = ingest(spec, root=root, lake=lake, now=datetime.now(UTC))
    return _result(started, cpu, landed.rows, quarantined=landed.quarantined)


def plain(broker: str, topic: str, folder: str) -> dict[str, Any]:
    started, cpu = time.perf_counter(), time.process_time()
    consumer = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": f"plain-{topic}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            # the fetch size headwater's consumer asks for (librdkafka's default, 1 MB per
            # partition per request, leaves a consumer waiting on the broker)
            "max.partition.fetch.bytes": 8 << 20,
        }
    )
    partitions = len(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p))[1] for p in range(partitions)
    }
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    open_ = {p for p, end in ends.items() if end > 0}
    writer = pq.ParquetWriter(Path(folder) / "plain.parquet", SCHEMA)
    values: list[bytes] = []
    rows = 0
    options = pj.ParseOptions(explicit_schema=SCHEMA)

    def flush() -> int:
        table = pj.read_json(pa.BufferReader(b"\n".join(values)), parse_options=options)
        writer.write_table(table)
        values.clear()
        return int(table.num_rows)

    while open_:
        for message in consumer.consume(10_000, 1.0):
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    open_.discard(message.partition())
                continue
            values.append(message.value())
            if message.offset() + 1 >= ends[message.partition()]:
                open_.discard(message.partition())
        if len(values) >= CHUNK:
            rows += flush()
    if values:
        rows += flush()
    writer.close()
    consumer.commit(
        offsets=[TopicPartition(topic, p, e) for p, e in ends.items()], asynchronous=False
    )
    consumer.close()
    return _result(started, cpu, rows)


def _result(started: float, cpu: float, rows: int, **more: Any) -> dict[str, Any]:
    return {
        "wall_s": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu,
        "rows": rows,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "pid": os.getpid(),
        **more,
    }


def headwater_cdc(url: str, folder: str) -> dict[str, Any]:
    """The changes since the lake's LSN (the snapshot landed before the clock) into raw."""
    from headwater.contracts import Contract
    from headwater.ingest import cdc as _cdc  # noqa: F401 (imported before the clock)
    from headwater.ingest import ingest
    from headwater.zones.lake import Lake

    root = Path(folder)
    spec = Contract.model_validate(json.loads((root / "contract.json").read_text()))
    lake = Lake(f"sqlite:///{root / 'catalog.db'}", "lake", root)
    lake.table_names()
    started, cpu = time.perf_counter(), time.process_time()
    landed = ingest(spec, root=root, lake=lake, now=datetime.now(UTC))
    return _result(started, cpu, landed.rows, quarantined=landed.quarantined)


def plain_cdc(url: str, slot: str, publication: str, target: str) -> dict[str, Any]:
    """The physical limit: every pgoutput message of the slot up to `target` off the server,
    not decoded, not written."""
    import psycopg2
    import psycopg2.extras

    started, cpu = time.perf_counter(), time.process_time()
    conn = psycopg2.connect(url, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    cursor = conn.cursor()
    cursor.start_replication(
        slot_name=slot,
        decode=False,
        options={"proto_version": "1", "publication_names": publication},
    )
    high, _, low = target.partition("/")
    end = (int(high, 16) << 32) | int(low, 16)
    changes = 0
    while True:
        message = cursor.read_message()
        if message is None:
            if (cursor.wal_end or 0) >= end:
                break
            cursor.send_feedback(reply=True)
            select.select([conn], [], [], 0.05)
            continue
        if bytes(message.payload[:1]) in (b"I", b"U", b"D"):
            changes += 1
    conn.close()
    return _result(started, cpu, changes)


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    kinds = {"headwater": headwater, "plain": plain, "headwater-cdc": headwater_cdc}
    kinds["plain-cdc"] = plain_cdc
    print(json.dumps(kinds[kind](*args)))
