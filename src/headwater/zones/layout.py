"""The columns landing adds to every raw-zone table (DESIGN.md §3), with their SQL types.

One definition for everything that must know a raw table's shape without landing data:
ingestion itself, model unit tests and column lineage.
"""

from __future__ import annotations

RAW_METADATA = {
    "_hw_batch_id": "varchar",
    "_hw_ingested_at": "timestamptz",
    "_hw_source": "varchar",  # file and record, offset or LSN
    "_hw_late": "boolean",  # older than the watermark allowed when it landed
}
# what a stream source's records carry besides their fields: where each came from in the
# stream (Kafka's topic, partition, offset and timestamp, its key and headers as JSON)
STREAM_METADATA = {
    "_hw_topic": "varchar",
    "_hw_partition": "integer",
    "_hw_offset": "bigint",
    "_hw_timestamp": "timestamptz",
    "_hw_key": "varchar",
    "_hw_headers": "varchar",
    # a change log's envelope (PostgreSQL CDC): the operation (r: snapshot read, c: insert,
    # u: update, d: delete, t: truncate), the change's LSN, its transaction's commit LSN,
    # commit time and id, and the row before (JSON, where the replica identity gives it)
    "_hw_op": "varchar",
    "_hw_lsn": "bigint",
    "_hw_commit_lsn": "bigint",
    "_hw_commit_time": "timestamptz",
    "_hw_xid": "bigint",
    "_hw_before": "varchar",
}
QUARANTINE = {
    "_hw_batch_id": "varchar",
    "_hw_ingested_at": "timestamptz",
    "_hw_source": "varchar",
    "_hw_reason": "varchar",  # the rule the record broke
    "_hw_record": "varchar",  # the record as it arrived
}
