"""What the catalog hands back and takes in: frozen records, one per row."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ModelVersion:
    name: str
    fingerprint: str
    physical: str
    kind: str
    data_key: str | None = None
    rows: int | None = None
    inputs: dict[str, Any] = field(default_factory=dict)  # raw snapshots seen, and #keys
    sql: str | None = None  # the model's normalized query when built (a plan diffs it)
    meta: str | None = None  # the hash of its docs, owners and tags (`Model.meta_key`)


@dataclass(frozen=True)
class TaskRecord:
    task: str
    stage: str
    status: str
    rows: int | None = None
    quarantined: int | None = None
    error: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    attempts: int | None = None  # 2 or more: it was retried
    rows_in: int | None = None  # records read (an ingest) or rows of its inputs (a build)
    bytes: int | None = None  # bytes written to the lake (compressed Parquet)
    queued_s: float | None = None  # seconds it waited, ready, for a worker


@dataclass(frozen=True)
class CheckRecord:
    target: str
    rule: str
    type: str
    severity: str
    passed: bool
    metric: float | None
    threshold: str | None
    sql: str
    samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class LineageRecord:
    """One stored hop: `model.output_column` derives from `upstream_table.upstream_column`."""

    model: str
    output_column: str
    position: int
    upstream_table: str | None
    upstream_column: str | None
    lineage_key: str


_LINEAGE_FIELDS = list(LineageRecord.__dataclass_fields__)
