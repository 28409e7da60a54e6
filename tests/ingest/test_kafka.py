"""Kafka into raw on a real broker: every message once, offsets in the lake, bad messages
quarantined with where they were (tests/kafka.py starts the broker)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from headwater.contracts import Contract
from headwater.errors import SourceError, TransientSourceError
from headwater.ingest import ingest
from headwater.zones.lake import Lake
from tests import kafka
from tests.ingest.raw import orders_contract, rows

pytestmark = pytest.mark.kafka
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
COLUMNS = [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "amount", "type": "double"},
]


@pytest.fixture
def topic(broker: str) -> str:
    name = f"orders-{uuid.uuid4().hex[:8]}"
    kafka.create_topic(broker, name, partitions=3)
    return name


def contract(broker: str, topic: str, **connector: Any) -> Contract:
    return orders_contract(
        {"kind": "kafka", "brokers": broker, "topics": [topic], **connector},
        columns=COLUMNS,
        delivery="stream",
    )


def records(n: int, start: int = 0) -> list[bytes | None]:
    return [json.dumps({"id": i, "amount": i / 2}).encode() for i in range(start, start + n)]


def test_a_run_lands_every_message_once_with_where_it_came_from(
    broker: str, topic: str, lake: Lake, tmp_path: Path
) -> None:
    kafka.produce(broker, topic, records(3000), keys=[str(i).encode() for i in range(3000)])
    spec = contract(broker, topic)
    landed = ingest(spec, root=tmp_path, lake=lake, now=NOW)
    assert landed.rows == 3000 and landed.quarantined == 0
    assert "3,000 messages from 3 partition(s)" in landed.read
    got = rows(lake, "raw.orders", "id, _hw_topic, _hw_partition, _hw_offset, _hw_key, _hw_source")
    assert sorted(r[0] for r in got) == list(range(3000))
    assert {r[1] for r in got} == {topic} and {r[2] for r in got} == {0, 1, 2}
    one = next(r for r in got if r[0] == 7)
    assert one[4] == "7"
    assert one[5] == f"kafka {topic}[{one[2]}] offset {one[3]}"
    # the lake's checkpoint holds the next offset of every partition
    summary = lake.snapshots("raw.orders")[-1].properties["checkpoint"]
    per_partition = {int(k.rsplit(":", 1)[1]): v for k, v in summary["offsets"].items()}
    counts = {p: sum(1 for r in got if r[2] == p) for p in range(3)}
    assert per_partition == counts

    # nothing new: no commit; new messages: only they land
    snapshots = len(lake.snapshots("raw.orders"))
    assert ingest(spec, root=tmp_path, lake=lake, now=NOW).batch_id is None
    assert len(lake.snapshots("raw.orders")) == snapshots
    kafka.produce(broker, topic, records(500, start=3000))
    assert ingest(spec, root=tmp_path, lake=lake, now=NOW).rows == 500
    assert sorted(r[0] for r in rows(lake, "raw.orders", "id")) == list(range(3500))


def test_the_lake_offsets_win_over_the_groups_committed_ones(
    broker: str, topic: str, lake: Lake, tmp_path: Path
) -> None:
    """Kafka's committed offsets are a hint: a group that committed further than the lake
    landed (another tool, or a reset) does not make headwater skip anything."""
    from confluent_kafka import Consumer, TopicPartition

    kafka.produce(broker, topic, records(300), partition=0)
    spec = contract(broker, topic, group="shared")
    consumer = Consumer({"bootstrap.servers": broker, "group.id": "shared"})
    consumer.commit(offsets=[TopicPartition(topic, 0, 300)], asynchronous=False)
    consumer.close()
    assert ingest(spec, root=tmp_path, lake=lake, now=NOW).rows == 300


def test_bad_messages_are_quarantined_with_their_offset_and_do_not_block(
    broker: str, topic: str, lake: Lake, tmp_path: Path
) -> None:
    values: list[bytes | None] = [
        b'{"id": 1, "amount": 2}',
        b"not json at all",
        b'{"id": "x"}',
        b"\xff\xfe{}",
        None,  # a tombstone
        b'{"id": 2, "amount": 3}',
    ]
    kafka.produce(broker, topic, values, partition=1)
    landed = ingest(contract(broker, topic), root=tmp_path, lake=lake, now=NOW)
    assert landed.rows == 2 and landed.quarantined == 4
    assert [r[0] for r in rows(lake, "raw.orders", "id")] == [1, 2]
    bad = dict(rows(lake, "raw.orders__quarantine", "_hw_source, _hw_reason"))
    assert set(bad) == {f"kafka {topic}[1] offset {o}" for o in (1, 2, 3, 4)}
    assert "malformed JSON" in bad[f"kafka {topic}[1] offset 1"]
    assert "id" in bad[f"kafka {topic}[1] offset 2"]
    assert "not UTF-8" in bad[f"kafka {topic}[1] offset 3"]
    assert "tombstone" in bad[f"kafka {topic}[1] offset 4"]
    # the partition moved past them: the next message lands, nothing again
    kafka.produce(broker, topic, [b'{"id": 3, "amount": 1}'], partition=1)
    again = ingest(contract(broker, topic), root=tmp_path, lake=lake, now=NOW)
    assert (again.rows, again.quarantined) == (1, 0)


def test_avro_values_with_the_contracts_schema(
    broker: str, topic: str, lake: Lake, tmp_path: Path
) -> None:
    import io

    import fastavro

    schema = {
        "type": "record",
        "name": "Order",
        "fields": [{"name": "id", "type": "long"}, {"name": "amount", "type": "double"}],
    }
    parsed = fastavro.parse_schema(schema)

    def encoded(record: dict[str, Any]) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, record)
        return out.getvalue()

    kafka.produce(broker, topic, [encoded({"id": 1, "amount": 1.5}), b"\x01"], partition=0)
    spec = contract(broker, topic, format="avro", avro_schema=schema)
    landed = ingest(spec, root=tmp_path, lake=lake, now=NOW)
    assert (landed.rows, landed.quarantined) == (1, 1)
    assert rows(lake, "raw.orders", "id, amount") == [(1, 1.5)]
    assert "not Avro" in rows(lake, "raw.orders__quarantine", "_hw_reason")[0][0]


def test_an_unreachable_broker_is_a_retryable_error_naming_it(lake: Lake, tmp_path: Path) -> None:
    pytest.importorskip("confluent_kafka", reason="the kafka extra is not installed")
    spec = contract(f"127.0.0.1:{kafka._free_port()}", "orders", connect_timeout="2s")
    with pytest.raises(TransientSourceError) as err:
        ingest(spec, root=tmp_path, lake=lake, now=NOW)
    assert "cannot reach the Kafka brokers at 127.0.0.1:" in err.value.message


def test_a_missing_topic_is_named(broker: str, lake: Lake, tmp_path: Path) -> None:
    with pytest.raises(SourceError) as err:
        ingest(contract(broker, "no-such-topic"), root=tmp_path, lake=lake, now=NOW)
    assert "no-such-topic" in err.value.message and not err.value.retryable


class _Registry:
    """A schema registry on 127.0.0.1 answering `GET /schemas/ids/<id>` (Confluent's API)."""

    def __init__(self, schemas: dict[int, dict[str, Any]]):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                schema_id = int(self.path.rsplit("/", 1)[1])
                found = schemas.get(schema_id)
                body = json.dumps(
                    {"schema": json.dumps(found)} if found else {"error_code": 40403}
                ).encode()
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_avro_values_in_the_registrys_wire_format(
    broker: str, topic: str, lake: Lake, tmp_path: Path
) -> None:
    import io

    import fastavro

    schema = {"type": "record", "name": "Order", "fields": [{"name": "id", "type": "long"}]}
    parsed = fastavro.parse_schema(schema)

    def framed(schema_id: int, record: dict[str, Any]) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, record)
        return b"\x00" + schema_id.to_bytes(4, "big") + out.getvalue()

    registry = _Registry({7: schema})
    try:
        values = [framed(7, {"id": 1}), framed(8, {"id": 2}), b"plain", framed(7, {"id": 3})]
        kafka.produce(broker, topic, values, partition=2)
        spec = contract(broker, topic, format="avro", schema_registry=registry.url)
        landed = ingest(spec, root=tmp_path, lake=lake, now=NOW)
    finally:
        registry.close()
    assert (landed.rows, landed.quarantined) == (2, 2)
    assert [r[0] for r in rows(lake, "raw.orders", "id")] == [1, 3]
    reasons = [r[0] for r in rows(lake, "raw.orders__quarantine", "_hw_reason")]
    assert any("schema id 8 is not in the registry" in r for r in reasons)
    assert any("wire format" in r for r in reasons)


def test_a_pattern_reads_every_matching_topic_and_headers_are_kept(
    broker: str, lake: Lake, tmp_path: Path
) -> None:
    from confluent_kafka import Producer

    prefix = f"shop-{uuid.uuid4().hex[:6]}"
    for name in ("eu", "us"):
        kafka.create_topic(broker, f"{prefix}.{name}", partitions=1)
    kafka.create_topic(broker, f"other-{prefix}", partitions=1)
    producer = Producer({"bootstrap.servers": broker})
    for i, topic in enumerate([f"{prefix}.eu", f"{prefix}.us", f"other-{prefix}"]):
        producer.produce(
            topic, value=json.dumps({"id": i, "amount": 1}).encode(), headers=[("trace", b"t1")]
        )
    producer.flush(10)
    spec = orders_contract(
        {"kind": "kafka", "brokers": broker, "pattern": f"^{prefix}\\."},
        columns=COLUMNS,
        delivery="stream",
    )
    assert ingest(spec, root=tmp_path, lake=lake, now=NOW).rows == 2
    got = rows(lake, "raw.orders", "_hw_topic, _hw_headers")
    assert [r[0] for r in got] == [f"{prefix}.eu", f"{prefix}.us"]
    assert json.loads(got[0][1]) == [["trace", "t1"]]


def test_start_latest_lands_only_what_comes_after_the_first_run(
    broker: str, topic: str, lake: Lake, tmp_path: Path
) -> None:
    kafka.produce(broker, topic, records(10), partition=0)
    spec = contract(broker, topic, start="latest")
    first = ingest(spec, root=tmp_path, lake=lake, now=NOW)
    assert first.rows == 0 and first.batch_id is not None  # the position is recorded
    kafka.produce(broker, topic, records(3, start=100), partition=0)
    assert ingest(spec, root=tmp_path, lake=lake, now=NOW).rows == 3
    assert [r[0] for r in rows(lake, "raw.orders", "id")] == [100, 101, 102]


def test_an_open_producer_transaction_lands_once_it_commits(
    broker: str, topic: str, lake: Lake, tmp_path: Path
) -> None:
    """Under read_committed a partition ends, for now, where an open transaction begins: its
    messages are not skipped, they land on the run after it commits."""
    from confluent_kafka import Producer

    kafka.produce(broker, topic, records(2), partition=0)
    producer = Producer(
        {"bootstrap.servers": broker, "transactional.id": f"tx-{topic}", "log_level": 0}
    )
    producer.init_transactions(10)
    producer.begin_transaction()
    for value in records(3, start=10):
        producer.produce(topic, value=value, partition=0)
    producer.flush(10)
    spec = contract(broker, topic)
    assert ingest(spec, root=tmp_path, lake=lake, now=NOW).rows == 2
    producer.commit_transaction(10)
    # the broker moves the partition's stable end past the commit marker a moment after the
    # commit returns (longer on a loaded machine): until then a run lands nothing new, never
    # a part of the transaction
    landed = []
    for _ in range(40):
        landed.append(ingest(spec, root=tmp_path, lake=lake, now=NOW).rows)
        if sum(landed) >= 3:
            break
        time.sleep(0.25)
    assert [n for n in landed if n] == [3]
    assert [r[0] for r in rows(lake, "raw.orders", "id")] == [0, 1, 10, 11, 12]


def test_a_follower_reads_a_dropped_batch_again(broker: str, topic: str, tmp_path: Path) -> None:
    """After a conflict the batch read is dropped and read again, also from a partition the
    lake holds nothing of yet."""
    from headwater.contracts.secrets import Secrets
    from headwater.ingest.kafka import KafkaFollower

    kafka.produce(broker, topic, records(5), partition=0)
    connector = contract(broker, topic, max_wait="200ms").connector
    follower = KafkaFollower(
        connector, root=tmp_path, secrets=Secrets({}), group=f"g-{topic}", lake=lambda: {}
    )
    try:

        def offsets() -> list[int]:
            for _ in range(100):
                batch = follower.next_batch(lambda: False)
                if batch is not None:
                    return sorted(int(m.offset() or 0) for m in batch.batch.messages)
            raise AssertionError("no batch")

        assert offsets() == [0, 1, 2, 3, 4]
        follower.rewind()
        assert offsets() == [0, 1, 2, 3, 4]
    finally:
        follower.close()
