"""Erasing rows from lake tables: only the files holding them are rewritten, every other row
keeps its exact value, older snapshots keep the rows until `expire_erased`, which expires
exactly the snapshots that hold them (a product's other data states stay servable)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from headwater.errors import StoreError
from headwater.zones.lake import Lake

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("name", pa.string()),
        ("amount", pa.decimal128(12, 2)),
        ("at", pa.timestamp("us", tz="UTC")),
    ]
)


def rows(*ids: int) -> pa.Table:
    at = datetime(2026, 10, 1, 12, 30, 15, 123456, tzinfo=UTC)
    return pa.table(
        {
            "id": ids,
            "name": [f"person {i}" for i in ids],
            "amount": [Decimal(f"{i}.25") for i in ids],
            "at": [at] * len(ids),
        },
        schema=SCHEMA,
    )


def read(lake: Lake, table: str, snapshot_id: int) -> list[dict[str, object]]:
    found = [
        r for f in lake.snapshot_files(table, snapshot_id) for r in pq.read_table(f).to_pylist()
    ]
    return sorted(found, key=lambda r: int(str(r["id"])))


def is_42(table: pa.Table) -> pa.ChunkedArray:
    return pc.equal(table["id"], 42)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(f"sqlite:///{tmp_path / 'catalog.db'}", "lake", tmp_path)


def test_each_data_state_loses_the_rows_and_keeps_every_other_value(lake: Lake) -> None:
    states = [
        lake.replace("products.p", [rows(1, 42, 3)], schema=SCHEMA, properties={"k": "a"}),
        lake.replace("products.p", [rows(4, 5)], schema=SCHEMA, properties={"k": "b"}),
        lake.replace("products.p", [rows(42, 6, 7)], schema=SCHEMA, properties={"k": "c"}),
    ]
    a, b, c = (s.snapshot_id for s in states)
    before = {s: read(lake, "products.p", s) for s in (a, b, c)}
    erased = {s: lake.erase("products.p", is_42, snapshot_id=s, properties={}) for s in (a, b, c)}
    assert [erased[s].rows for s in (a, b, c)] == [1, 0, 1]
    assert erased[b].snapshot_id is None  # nothing to erase: no commit
    files = [f for s in (a, c) for f in erased[s].files]
    # b never held 42, but its manifests name a's old file as deleted (a rewrite of the whole
    # table carries deleted entries on): it is committed afresh, its rows as they are
    assert b in lake.holding("products.p", files)
    erased[b] = lake.erase("products.p", is_42, snapshot_id=b, properties={}, afresh=True)
    for old in (a, b, c):
        new = erased[old].snapshot_id
        assert new is not None
        assert read(lake, "products.p", new) == [r for r in before[old] if r["id"] != 42]
        assert read(lake, "products.p", old) == before[old]  # time travel, until expiry
    overwrites = [x for s in (a, b, c) for x in erased[s].overwrites]
    assert lake.expire_erased("products.p", files, overwrites) == 6
    assert lake.holding("products.p", files) == []
    for old in (a, b, c):
        with pytest.raises(StoreError):
            lake.snapshot_files("products.p", old)
        new_rows = read(lake, "products.p", erased[old].snapshot_id or 0)
        assert new_rows == [r for r in before[old] if r["id"] != 42]
    assert not any(Path(f.removeprefix("file://")).exists() for f in files)


def test_an_erasure_of_raw_rows_keeps_the_checkpoint_and_lands_no_batch(lake: Lake) -> None:
    checkpoint = {"version": 2, "files": {"path": None}, "cursor": "x"}
    lake.append("raw.t", [rows(1, 42)], properties={"batch_id": "b1", "checkpoint": checkpoint})
    lake.append("raw.t", [rows(3)], properties={"batch_id": "b2", "checkpoint": checkpoint})
    counted = lake.erase("raw.t", is_42, where=("id", 42), properties={"erasure": 1}, dry_run=True)
    assert counted.rows == 1 and counted.snapshot_id is None
    done = lake.erase("raw.t", is_42, where=("id", 42), properties={"erasure": 1})
    assert done.rows == 1 and len(done.files) == 1 and len(done.overwrites) == 1
    newest = lake.current_properties("raw.t")
    assert newest["checkpoint"] == checkpoint and newest["erasure"] == 1
    assert "batch_id" not in newest and "rows" not in newest
    assert [s.batch_id for s in lake.snapshots("raw.t")] == ["b1", "b2", None, None]
    current = lake.current_snapshot_id("raw.t") or 0
    assert [r["id"] for r in read(lake, "raw.t", current)] == [1, 3]
    lake.expire_erased("raw.t", list(done.files), list(done.overwrites))
    # the batch index keeps the expired batches: what a model has seen stays known
    assert [s.batch_id for s in lake.snapshots("raw.t")] == ["b1", "b2", None, None]
    assert [s.snapshot_id for s in lake.recent("raw.t")] == [current]
