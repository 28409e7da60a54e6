"""Kafka topics into raw, exactly once (the one module that imports confluent_kafka).

The lake's offsets are the truth. Each raw commit records, in its checkpoint, the next offset
of every partition landed so far (`topic:partition` → offset); a batch is read from those
offsets, its commit succeeds only if they are still the lake's when it commits (another worker
may have landed the same partitions meanwhile: `Lake.append`'s `base`), and only then are the
offsets committed to Kafka, as a hint for tools that watch the group. A message at an offset
below the lake's is one Kafka delivered again: it is counted, never landed.

Two ways to read:
- `KafkaReader` (`headwater ingest`): assign every partition, read up to the end each had when
  the run started, land it as one batch;
- `KafkaFollower` (`headwater ingest --follow`): a consumer-group member that closes a batch at
  `max_rows` messages or `max_wait` after its first, for as long as it runs. On a rebalance, the
  messages of revoked partitions not landed yet are dropped (their next owner reads them from
  the lake's offsets), and assigned partitions start at the lake's offsets.

A message whose value cannot be read (not UTF-8, not a JSON object, not Avro of the schema, a
tombstone) is quarantined with its topic, partition and offset; it never blocks its partition.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from headwater.contracts import KafkaConnector
from headwater.contracts.secrets import Secrets
from headwater.contracts.thresholds import parse_duration
from headwater.errors import SourceError, SpecError, TransientSourceError
from headwater.ingest.source import JSON, LINE, RECORD, Checkpoint, Part, Rejected
from headwater.zones.lake import Conflict

_QUIET = logging.getLogger("headwater.kafka")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False
PART_ROWS = 50_000  # messages per part handed to the conform query
UNIT = "offset"  # `_hw_source` reads "kafka orders[2] offset 1234"
STALL_S = 30.0  # `headwater ingest`: no message for this long before a partition's end


def offset_key(topic: str, partition: int) -> str:
    """The checkpoint's name of a partition: `orders:2`."""
    return f"{topic}:{partition}"


def _timeout(connector: KafkaConnector) -> float:
    return parse_duration(connector.connect_timeout)


def _key(message: Message) -> str:
    return offset_key(str(message.topic()), int(message.partition() or 0))


def _offset(message: Message) -> int:
    return int(message.offset() or 0)


def _split_key(key: str) -> tuple[str, int]:
    topic, _, partition = key.rpartition(":")
    return topic, int(partition)


def lake_offsets(properties: Mapping[str, Any]) -> dict[str, int]:
    """The offsets a raw snapshot's checkpoint records (its summary properties)."""
    stored = properties.get("checkpoint")
    if not isinstance(stored, Mapping):
        return {}
    return {str(k): int(v) for k, v in (stored.get("offsets") or {}).items()}


def consumer_config(
    connector: KafkaConnector, secrets: Secrets, *, group: str, **more: Any
) -> dict[str, Any]:
    """librdkafka's settings for `connector` (its `options:` last, `${VAR}` expanded)."""
    config: dict[str, Any] = {
        "bootstrap.servers": secrets.expand(connector.brokers, where="connector.brokers"),
        "group.id": connector.group or group,
        "enable.auto.commit": False,  # offsets are committed after the landing, by us
        "enable.auto.offset.store": False,
        "auto.offset.reset": connector.start,
        "isolation.level": "read_committed",  # a producer's aborted transaction never lands
        # a worker killed without leaving the group holds its partitions this long: 10 s,
        # not librdkafka's 45 s, so a restarted worker resumes soon
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 2_000,
        # larger fetches: a backlog arrives in fewer round trips (librdkafka's 1 MB per
        # partition per request leaves the consumer waiting on the broker)
        "max.partition.fetch.bytes": 8 << 20,
        "socket.connection.setup.timeout.ms": int(_timeout(connector) * 1000),
        # librdkafka's own log lines (a broker refusing, again and again) go to a logger that
        # prints nothing: what matters reaches the user as one clear error
        "logger": _QUIET,
        **more,
    }
    for name, value in connector.options.items():
        config[name] = (
            secrets.expand(value, where=f"connector.options.{name}")
            if isinstance(value, str)
            else value
        )
    if "cooperative" in str(config.get("partition.assignment.strategy", "")):
        raise SpecError(
            "connector.options: cooperative rebalancing is not supported: a worker drops the "
            "batch it gathers when partitions move, which needs the eager protocol",
            hint="remove partition.assignment.strategy (the default, range/roundrobin, is eager)",
        )
    return config


def _consumer(config: dict[str, Any]) -> Consumer:
    """A consumer; a setting librdkafka does not know is a SpecError naming it."""
    try:
        return Consumer(config)
    except KafkaException as err:
        raise SpecError(
            f"connector.options: {err.args[0].str() if err.args else err}",
            hint="see librdkafka's CONFIGURATION.md for the settings a consumer takes",
        ) from None


class _Values:
    """Message values to JSON lines: UTF-8 JSON as it is, Avro decoded (from the contract's
    schema, or the registry's by the id each value carries)."""

    def __init__(self, connector: KafkaConnector, *, root: Path, secrets: Secrets):
        self.connector = connector
        self.secrets = secrets
        self.avro = connector.format == "avro"
        self._schemas: dict[int, Any] = {}
        self._fixed: Any = None
        if self.avro and connector.avro_schema is not None:
            self._fixed = _parse_avro(connector.avro_schema, root)

    def lines(self, values: list[bytes | None]) -> tuple[list[str | None], list[str | None]]:
        """Each value as a JSON line, or None with why it cannot be read."""
        if not self.avro:
            return self._json(values)
        lines: list[str | None] = []
        errors: list[str | None] = []
        for value in values:
            try:
                lines.append(self._avro(value))
                errors.append(None)
            except _Unreadable as err:
                lines.append(None)
                errors.append(str(err))
        return lines, errors

    def _json(self, values: list[bytes | None]) -> tuple[list[str | None], list[str | None]]:
        try:  # all at once, checked in C; one by one only when some value is not UTF-8
            if None not in values:
                text = pa.array(values, pa.binary()).cast(pa.string()).to_pylist()
                return text, [None] * len(values)
        except pa.ArrowInvalid:
            pass
        lines: list[str | None] = []
        errors: list[str | None] = []
        for value in values:
            if value is None:
                lines.append(None)
                errors.append("the message has no value (a tombstone)")
                continue
            try:
                lines.append(value.decode("utf-8"))
                errors.append(None)
            except UnicodeDecodeError as err:
                lines.append(None)
                errors.append(f"the value is not UTF-8 text ({err.reason} at byte {err.start})")
        return lines, errors

    def _avro(self, value: bytes | None) -> str:
        import fastavro

        if value is None:
            raise _Unreadable("the message has no value (a tombstone)")
        schema, body = self._fixed, value
        if schema is None:  # Confluent's wire format: magic byte 0, 4-byte schema id, Avro
            if len(value) < 5 or value[0] != 0:
                raise _Unreadable(
                    "the value is not in the schema registry's wire format (magic byte 0, "
                    "then a 4-byte schema id)"
                )
            schema, body = self._registered(int.from_bytes(value[1:5], "big")), value[5:]
        try:
            import io

            record = fastavro.schemaless_reader(io.BytesIO(body), schema, None)
        except Exception as err:  # fastavro raises many kinds on bad bytes
            raise _Unreadable(
                f"the value is not Avro of the schema: {type(err).__name__}: {err}"
            ) from None
        if not isinstance(record, dict):
            raise _Unreadable("the Avro value is not a record")
        return orjson.dumps(record, default=_json_default).decode()

    def _registered(self, schema_id: int) -> Any:
        if schema_id not in self._schemas:
            import fastavro

            from headwater.ingest.http import get_json

            registry = self.secrets.expand(
                str(self.connector.schema_registry), where="connector.schema_registry"
            )
            url = f"{registry.rstrip('/')}/schemas/ids/{schema_id}"
            status, body = get_json(
                url,
                timeout=_timeout(self.connector),
                shown=self.secrets.scrub(url),
                what="the schema registry",
            )
            if status == 404:
                raise _Unreadable(f"schema id {schema_id} is not in the registry")
            if body is None:
                raise TransientSourceError(
                    f"the schema registry answered {status} for schema id "
                    f"{schema_id} ({self.secrets.scrub(url)})",
                    hint="nothing of this batch was landed; it is read again next time",
                )
            if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
                raise _Unreadable(f"the registry's answer for schema id {schema_id} has no schema")
            self._schemas[schema_id] = fastavro.parse_schema(json.loads(body["schema"]))
        return self._schemas[schema_id]


class _Unreadable(Exception):
    """A value that cannot be turned into a record (quarantined with this reason)."""


def _parse_avro(schema: dict[str, Any] | str, root: Path) -> Any:
    import fastavro

    if isinstance(schema, str):
        path = root / schema
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise SpecError(
                f"cannot read the Avro schema {schema}: {err.strerror}",
                hint="connector.avro_schema is a path relative to the project folder, or the "
                "schema itself",
            ) from None
        except ValueError as err:
            raise SpecError(f"the Avro schema {schema} is not JSON: {err}") from None
    try:
        return fastavro.parse_schema(schema)
    except Exception as err:
        raise SpecError(f"connector.avro_schema is not a valid Avro schema: {err}") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)  # decimals, UUIDs


def parts_of(messages: Sequence[Message], values: _Values, rejected: Rejected) -> Iterator[Part]:
    """Messages (of any partitions) as parts, one partition's messages per part, in offset
    order; unreadable values go to `rejected` with where they were."""
    by_partition: dict[str, list[Message]] = {}
    for message in messages:
        by_partition.setdefault(_key(message), []).append(message)
    for key, group in sorted(by_partition.items()):
        for start in range(0, len(group), PART_ROWS):
            yield from _part(key, group[start : start + PART_ROWS], values, rejected)


def _part(key: str, chunk: list[Message], values: _Values, rejected: Rejected) -> Iterator[Part]:
    """One partition's messages as a part (none if none of them can be read)."""
    topic, partition = _split_key(key)
    origin = f"kafka {topic}[{partition}]"
    lines, errors = values.lines([m.value() for m in chunk])
    keep = [i for i, e in enumerate(errors) if e is None]
    for i, error in enumerate(errors):
        if error is not None:
            message = chunk[i]
            rejected.add(f"{origin} {UNIT} {_offset(message)}", error, _shown(message.value()))
    if not keep:
        return
    if len(keep) < len(chunk):
        chunk = [chunk[i] for i in keep]
        lines = [lines[i] for i in keep]
    yield Part(_table(topic, partition, chunk, lines), JSON, origin, unit=UNIT)


def _table(
    topic: str, partition: int, messages: list[Message], lines: list[str | None]
) -> pa.Table:
    n = len(messages)
    offsets = [_offset(m) for m in messages]
    stamps = [m.timestamp() for m in messages]
    keys = [m.key() for m in messages]
    headers = [m.headers() for m in messages]
    columns = {
        LINE: pa.array(lines, pa.string()),
        RECORD: pa.array(offsets, pa.int64()),
        "_hw_topic": pa.array([topic] * n, pa.string()),
        "_hw_partition": pa.array([partition] * n, pa.int32()),
        "_hw_offset": pa.array(offsets, pa.int64()),
        "_hw_timestamp": pa.array([s[1] * 1000 if s[0] else None for s in stamps], pa.int64()).cast(
            pa.timestamp("us", tz="UTC")
        ),
        "_hw_key": pa.array(
            [None if k is None else k.decode("utf-8", "backslashreplace") for k in keys],
            pa.string(),
        ),
        "_hw_headers": pa.array([_headers(h) for h in headers], pa.string()),
    }
    return pa.table(columns)


def _headers(headers: Any) -> str | None:
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, dict) else headers
    return json.dumps([[k, _text(v)] for k, v in pairs])


def _text(value: str | bytes | None) -> str | None:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def _shown(value: bytes | None) -> str:
    return "" if value is None else value.decode("utf-8", "backslashreplace")


def _connect_error(connector: KafkaConnector, secrets: Secrets, err: Exception) -> Exception:
    brokers = secrets.scrub(connector.brokers)
    return TransientSourceError(
        f"cannot reach the Kafka brokers at {brokers}: {err}",
        hint="is the broker up and connector.brokers right? nothing was landed; the next run "
        "(or the follow worker, with backoff) tries again",
    )


def _topics(consumer: Consumer, connector: KafkaConnector, secrets: Secrets) -> dict[str, int]:
    """The topics the connector reads and their partition counts."""
    try:
        metadata = consumer.list_topics(timeout=_timeout(connector))
    except KafkaException as err:
        raise _connect_error(connector, secrets, err) from None
    if connector.pattern is not None:
        pattern = re.compile(connector.pattern)
        return {
            name: len(t.partitions)
            for name, t in metadata.topics.items()
            if pattern.search(name) and not name.startswith("__")
        }
    missing = [t for t in connector.topics if t not in metadata.topics]
    if missing:
        raise SourceError(
            f"topic(s) {', '.join(missing)} do not exist on {secrets.scrub(connector.brokers)}",
            hint="create the topic, or fix connector.topics",
        )
    return {name: len(metadata.topics[name].partitions) for name in connector.topics}


@dataclass
class _Batch:
    """Messages read from some partitions: where each partition's reading started (the lake's
    offset it followed, None: the lake had none) and the offset after its last message."""

    messages: list[Message] = field(default_factory=list)
    starts: dict[str, int | None] = field(default_factory=dict)
    firsts: dict[str, int] = field(default_factory=dict)  # each partition's first offset read
    ends: dict[str, int] = field(default_factory=dict)
    redelivered: int = 0
    warnings: list[str] = field(default_factory=list)

    def add(self, message: Message, lake_offset: int | None) -> bool:
        """Keep `message` unless the lake already holds its offset (a gap after the lake's
        offset is no loss: transaction markers and compaction leave them)."""
        key = _key(message)
        offset = _offset(message)
        if lake_offset is not None and offset < lake_offset:
            self.redelivered += 1
            return False
        if key not in self.starts:
            self.starts[key] = lake_offset
            self.firsts[key] = offset
        elif offset < self.ends[key]:
            self.redelivered += 1
            return False
        self.ends[key] = offset + 1
        self.messages.append(message)
        return True

    @property
    def key(self) -> str:
        """Names exactly the messages read (the batch id is made from it)."""
        return "kafka " + " ".join(
            f"{k}@{self.starts[k] if self.starts[k] is not None else '-'}-{self.ends[k]}"
            for k in sorted(self.ends)
        )


def _followed(starts: Mapping[str, int | None], properties: Mapping[str, Any]) -> dict[str, int]:
    """The offsets of the raw snapshot a commit will follow, if each partition read starts
    where that snapshot left it.

    Raises:
        Conflict: another worker landed some of the partitions meanwhile.
    """
    offsets = lake_offsets(properties)
    moved = [k for k, start in starts.items() if offsets.get(k) != start]
    if moved:
        raise Conflict(
            f"partition(s) {', '.join(sorted(moved))} were landed by another worker while "
            "this batch was read",
            hint="nothing of this batch was committed; it is read again from the lake's offsets",
        )
    return offsets


class _BatchReader:
    """A batch of messages as landing reads it (`Reader` and `Acknowledged`)."""

    direct = None

    def __init__(
        self,
        batch: _Batch,
        values: _Values,
        state: Mapping[str, int],
        acknowledge: Callable[[_Batch], None],
    ):
        self.batch = batch
        self.values = values
        self.key = batch.key if batch.messages else ""
        self.rejected = Rejected()
        self.warnings = list(batch.warnings)
        self.already_landed = 0
        self._base: dict[str, int] = dict(state)
        self._acknowledge = acknowledge

    def parts(self) -> Iterator[Part]:
        yield from parts_of(self.batch.messages, self.values, self.rejected)

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(offsets={**self._base, **self.batch.ends})

    def describe(self) -> str:
        partitions = len(self.batch.ends)
        again = (
            f", {self.batch.redelivered:,} delivered again and skipped"
            if self.batch.redelivered
            else ""
        )
        return f"{len(self.batch.messages):,} messages from {partitions} partition(s){again}"

    def base(self, properties: Mapping[str, Any]) -> None:
        self._base = _followed(self.batch.starts, properties)

    def committed(self) -> None:
        self._acknowledge(self.batch)

    @property
    def redelivered(self) -> int:
        return self.batch.redelivered

    def produced(self) -> list[float]:
        return [s[1] / 1000 for m in self.batch.messages if (s := m.timestamp())[0]]


class KafkaReader:
    """`headwater ingest` of a Kafka contract: every partition from the lake's offset up to
    the end it had when the run started, as one batch, streamed part by part (memory holds a
    part, not the backlog).

    The end recorded is where reading stopped: the partition's end, or, under a producer's
    open transaction, the last stable offset before it (its messages land once committed). A
    partition nothing has landed from with `start: latest` records its end and lands from
    there on."""

    direct = None

    def __init__(
        self,
        connector: KafkaConnector,
        *,
        root: Path,
        state: Checkpoint,
        secrets: Secrets,
        name: str = "",
    ):
        self.connector = connector
        self.secrets = secrets
        self.values = _Values(connector, root=root, secrets=secrets)
        self.rejected = Rejected()
        self.warnings: list[str] = []
        self.already_landed = 0
        self.read = 0
        self._base = dict(state.offsets)
        self.consumer = _consumer(
            consumer_config(
                connector,
                secrets,
                group=connector.group or default_group(name),
                **{"enable.partition.eof": True},
            )
        )
        try:
            self.starts, self.ends, self._assign = self._plan(dict(state.offsets))
        except BaseException:
            self.close()
            raise
        ranges = [f"{k}@{_shown_offset(self.starts[k])}-{e}" for k, e in sorted(self.ends.items())]
        self.key = "kafka " + " ".join(ranges) if ranges else ""

    def _plan(
        self, lake: dict[str, int]
    ) -> tuple[dict[str, int | None], dict[str, int], list[TopicPartition]]:
        """Per partition with something new: the lake's offset, the end it has now, and where
        to start reading (the lake's offset, or the topic's first/next per `start:`)."""
        starts: dict[str, int | None] = {}
        ends: dict[str, int] = {}
        assign: list[TopicPartition] = []
        for topic, count in _topics(self.consumer, self.connector, self.secrets).items():
            for partition in range(count):
                try:
                    low, high = self.consumer.get_watermark_offsets(
                        TopicPartition(topic, partition), timeout=_timeout(self.connector)
                    )
                except KafkaException as err:
                    raise _connect_error(self.connector, self.secrets, err) from None
                key = offset_key(topic, partition)
                begin = lake.get(key)
                if begin is None and self.connector.start == "latest":
                    starts[key], ends[key] = None, high  # from here on: recorded, not read
                    continue
                begin = low if begin is None else begin
                if begin >= high:
                    continue
                if begin < low:
                    self.warnings.append(
                        f"{key}: offsets {begin:,} to {low - 1:,} were gone from the topic (its "
                        "retention deleted them) before they landed"
                    )
                starts[key] = lake.get(key)
                ends[key] = high
                assign.append(TopicPartition(topic, partition, max(begin, low)))
        return starts, ends, assign

    def parts(self) -> Iterator[Part]:
        if not self._assign:
            return
        try:
            yield from self._parts()
        except KafkaException as err:
            raise TransientSourceError(
                f"Kafka ({self.secrets.scrub(self.connector.brokers)}): {err}",
                hint="nothing of this batch was landed; the next run reads from the same offsets",
            ) from None

    def _parts(self) -> Iterator[Part]:
        self.consumer.assign(self._assign)
        buffers: dict[str, list[Message]] = {}
        open_ = {tp_key(tp) for tp in self._assign}
        last = time.monotonic()
        while open_:
            messages = self.consumer.consume(10_000, 1.0)
            if messages:
                last = time.monotonic()
            elif time.monotonic() - last > STALL_S:
                raise TransientSourceError(
                    f"Kafka stopped delivering before the end of {', '.join(sorted(open_))}",
                    hint="nothing was landed; the next run reads from the same offsets",
                )
            for message in messages:
                key = _key(message)
                if key not in open_:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        # the end under read_committed: an open transaction's first offset
                        self.ends[key] = min(self.ends[key], _offset(message))
                        open_.discard(key)
                        continue
                    _raise(error, self.connector, self.secrets)
                offset = _offset(message)
                if offset < self.ends[key]:
                    buffer = buffers.setdefault(key, [])
                    buffer.append(message)
                    self.read += 1
                    if len(buffer) >= PART_ROWS:
                        yield from _part(key, buffers.pop(key), self.values, self.rejected)
                if offset + 1 >= self.ends[key]:
                    open_.discard(key)  # at the end it had when the run started
        for key, buffer in sorted(buffers.items()):
            yield from _part(key, buffer, self.values, self.rejected)

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(offsets={**self._base, **self.ends})

    def describe(self) -> str:
        return f"{self.read:,} messages from {len(self.ends)} partition(s)"

    def base(self, properties: Mapping[str, Any]) -> None:
        self._base = _followed(self.starts, properties)

    def committed(self) -> None:
        """Tell Kafka where the group stands (a hint: the lake's offsets are the truth)."""
        try:
            self.consumer.commit(
                offsets=[TopicPartition(*_split_key(k), end) for k, end in self.ends.items()],
                asynchronous=False,
            )
        except KafkaException as err:
            self.warnings.append(f"landed, but Kafka did not take the group's offsets: {err}")

    def close(self) -> None:
        with contextlib.suppress(KafkaException, RuntimeError):
            self.consumer.close()


def default_group(contract: str) -> str:
    """The consumer group of a contract that names none: `headwater-<contract>`."""
    return f"headwater-{contract}" if contract else "headwater"


def tp_key(tp: TopicPartition) -> str:
    return offset_key(str(tp.topic), int(tp.partition))


def _shown_offset(offset: int | None) -> str:
    return "-" if offset is None else str(offset)


def _raise(error: KafkaError, connector: KafkaConnector, secrets: Secrets) -> None:
    """A consumer error: transient ones are retried by the caller, the others are not."""
    text = f"Kafka ({secrets.scrub(connector.brokers)}): {error.str()}"
    if error.fatal() or not error.retriable():
        if error.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
            raise _connect_error(connector, secrets, KafkaException(error))
        raise SourceError(text, hint="nothing of this batch was landed")
    raise TransientSourceError(text, hint="nothing of this batch was landed")


class KafkaFollower:
    """A consumer-group member for `headwater ingest --follow`: `next_batch` closes a batch at
    `max_rows` messages or `max_wait` after its first one; `lake` reads the offsets the raw
    table's newest commit records (called on every assignment and after a conflict)."""

    def __init__(
        self,
        connector: KafkaConnector,
        *,
        root: Path,
        secrets: Secrets,
        group: str,
        lake: Callable[[], dict[str, int]],
    ):
        self.connector = connector
        self.secrets = secrets
        self.values = _Values(connector, root=root, secrets=secrets)
        self.lake = lake
        self.consumer = _consumer(consumer_config(connector, secrets, group=group))
        self.positions: dict[str, int | None] = {}  # assigned partitions → the lake's offset
        self.batch = _Batch()
        self._last: _Batch | None = None  # the batch handed out last (dropped on a conflict)
        try:
            # the brokers answer, the topics exist; a pattern is resolved here, as
            # `headwater ingest` resolves it (a topic created later is read after a restart)
            topics = list(_topics(self.consumer, connector, secrets))
        except BaseException:
            self.close()
            raise
        self.consumer.subscribe(
            topics, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._revoked
        )

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        offsets = self.lake()
        for tp in partitions:
            key = offset_key(tp.topic, tp.partition)
            self.positions[key] = offsets.get(key)
            tp.offset = offsets.get(
                key, OFFSET_BEGINNING if self.connector.start == "earliest" else OFFSET_END
            )
        consumer.assign(partitions)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions leave: what was read of them and not landed is dropped (their next
        owner reads it again from the lake's offsets). The eager protocol revokes every
        partition at once, so the batch being gathered is dropped whole."""
        for tp in partitions:
            self.positions.pop(offset_key(str(tp.topic), int(tp.partition)), None)
        self.batch = _Batch()
        consumer.unassign()

    def next_batch(self, stop: Callable[[], bool]) -> _BatchReader | None:
        """The next batch to land (None: nothing arrived before `stop` or `max_wait`)."""
        max_rows = self.connector.max_rows
        max_wait = parse_duration(self.connector.max_wait)
        first: float | None = None
        while not stop():
            waited = 0.0 if first is None else time.monotonic() - first
            if first is not None and waited >= max_wait:
                break
            wanted = max(1, min(10_000, max_rows - len(self.batch.messages)))
            timeout = 0.2 if first is None else min(0.2, max_wait - waited)
            for message in self.consumer.consume(wanted, timeout):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    if error.retriable() and not error.fatal():
                        continue  # librdkafka recovers by itself (a broker restarting)
                    _raise(error, self.connector, self.secrets)
                key = _key(message)
                if key not in self.positions:
                    continue  # of a partition revoked since it was fetched
                if self.batch.add(message, self.positions[key]) and first is None:
                    first = time.monotonic()
            if len(self.batch.messages) >= max_rows:
                break
            if first is None:
                return None  # nothing came: the caller looks at `stop` and asks again
        if not self.batch.messages:
            return None
        batch, self.batch = self.batch, _Batch()
        self._last = batch
        return _BatchReader(batch, self.values, {}, self._landed)

    def _landed(self, batch: _Batch) -> None:
        for key, end in batch.ends.items():
            if key in self.positions:
                self.positions[key] = end
        with contextlib.suppress(KafkaException):  # a hint only: the lake's are the truth
            self.consumer.commit(
                offsets=[TopicPartition(*_split_key(k), end) for k, end in batch.ends.items()],
                asynchronous=True,
            )

    def rewind(self) -> None:
        """After a conflict: drop what was read, and read on from the lake's offsets (or, for
        a partition the lake has none of, from the first offset the dropped batch read)."""
        dropped, self._last = self._last or _Batch(), None
        self.batch = _Batch()
        offsets = self.lake()
        for key in list(self.positions):
            topic, partition = _split_key(key)
            self.positions[key] = offsets.get(key)
            start = offsets.get(key, dropped.firsts.get(key))
            if start is not None:
                # not assigned any more: its next owner starts from the lake
                with contextlib.suppress(KafkaException):
                    self.consumer.seek(TopicPartition(topic, partition, start))

    def lag(self) -> dict[str, int]:
        """Messages not landed yet, per assigned partition (from the last fetch's high
        watermark)."""
        out: dict[str, int] = {}
        for key, position in self.positions.items():
            topic, partition = _split_key(key)
            try:
                _, high = self.consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), cached=True
                )
            except KafkaException:
                continue
            if high >= 0:
                out[key] = max(0, high - (position or 0))
        return out

    def close(self) -> None:
        with contextlib.suppress(KafkaException, RuntimeError):
            self.consumer.close()


def consumer_lag(
    connector: KafkaConnector, secrets: Secrets, offsets: Mapping[str, int]
) -> dict[str, int]:
    """Messages each partition holds past the lake's offsets (`offsets`)."""
    consumer = _consumer(consumer_config(connector, secrets, group=connector.group or "headwater"))
    try:
        out: dict[str, int] = {}
        for topic, count in _topics(consumer, connector, secrets).items():
            for partition in range(count):
                try:
                    low, high = consumer.get_watermark_offsets(
                        TopicPartition(topic, partition), timeout=_timeout(connector)
                    )
                except KafkaException as err:
                    raise _connect_error(connector, secrets, err) from None
                key = offset_key(topic, partition)
                start = offsets.get(key, low if connector.start == "earliest" else high)
                out[key] = max(0, high - max(start, low))
        return out
    finally:
        consumer.close()
