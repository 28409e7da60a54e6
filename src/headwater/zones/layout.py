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
QUARANTINE = {
    "_hw_batch_id": "varchar",
    "_hw_ingested_at": "timestamptz",
    "_hw_source": "varchar",
    "_hw_reason": "varchar",  # the rule the record broke
    "_hw_record": "varchar",  # the record as it arrived
}
