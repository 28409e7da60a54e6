"""A lake table keeps its newest snapshots in Iceberg and the older ones in the batch index:
readers still see every commit, in order, with what it recorded; metadata stays bounded."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from headwater.zones import history
from headwater.zones.lake import Lake


def lake(root: Path) -> Lake:
    return Lake(f"sqlite:///{root / 'catalog.db'}", "lake", root)


def land(target: Lake, count: int, *, keep: str = "2") -> None:
    for i in range(count):
        target.append(
            "raw.t",
            [pa.table({"x": pa.array([i], pa.int64())})],
            properties={"batch_id": f"b{i}", "checkpoint": {"offsets": {"t:0": i + 1}}},
            table_properties=lambda: {"keep_snapshots": keep},
        )


def test_expired_snapshots_stay_in_the_history_in_order(tmp_path: Path) -> None:
    target = lake(tmp_path)
    land(target, 13)
    assert 2 <= len(target.recent("raw.t")) <= 4  # expired down to 2 once past 4
    snapshots = target.snapshots("raw.t")
    assert [s.batch_id for s in snapshots] == [f"b{i}" for i in range(13)]
    assert [s.properties["checkpoint"]["offsets"]["t:0"] for s in snapshots] == list(range(1, 14))
    assert len({s.snapshot_id for s in snapshots}) == 13
    # no data went with them: raw is append-only, the current snapshot holds every file
    assert target.row_count("raw.t") == 13
    table = target.table("raw.t")
    assert table is not None
    assert sorted(table.scan().to_arrow()["x"].to_pylist()) == list(range(13))
    # another process reads the same history
    assert [s.batch_id for s in lake(tmp_path).snapshots("raw.t")] == [f"b{i}" for i in range(13)]


def test_a_crash_between_the_index_and_the_expiry_repeats_no_commit(tmp_path: Path) -> None:
    target = lake(tmp_path)
    land(target, 3, keep="100")
    table = target.table("raw.t")
    assert table is not None
    # the rows went in, the Iceberg commit that drops the snapshots never came
    history.record(
        target._engine(),
        "raw.t",
        [
            history.Expired(s.snapshot_id, s.sequence_number or 0, s.timestamp_ms, {})
            for s in table.snapshots()[:2]
        ],
    )
    assert [s.batch_id for s in target.snapshots("raw.t")] == ["b0", "b1", "b2"]


def test_metadata_stays_bounded_however_many_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "METADATA_GRACE_S", 0.0)
    target = lake(tmp_path)
    land(target, 60)
    metadata = tmp_path / "lake" / "raw" / "t" / "metadata"
    # 2 to 4 snapshots: each a manifest list, with at most 32 manifests before a merge
    assert len(list(metadata.glob("snap-*.avro"))) <= 4
    assert len(list(metadata.glob("*-m*.avro"))) <= 40
    assert len(list(metadata.glob("*.metadata.json"))) <= 21  # the newest and 20 before it
    assert target.row_count("raw.t") == 60
    table = target.table("raw.t")
    assert table is not None
    assert sorted(table.scan().to_arrow()["x"].to_pylist()) == list(range(60))


def test_a_table_without_the_property_keeps_the_default(tmp_path: Path) -> None:
    target = lake(tmp_path)
    for i in range(5):
        target.append("raw.t", [pa.table({"x": [i]})], properties={"batch_id": f"b{i}"})
    assert len(target.recent("raw.t")) == 5  # history.KEEP (100) is far off
    assert target.expire("raw.t", keep=1) == 4  # asked for: all but the newest
    assert [s.batch_id for s in target.snapshots("raw.t")] == [f"b{i}" for i in range(5)]


@pytest.mark.parametrize("batch", ["60789286803551e8", "1234567890123456", "00000000000000e0"])
def test_a_batch_id_that_reads_as_a_number_stays_text(tmp_path: Path, batch: str) -> None:
    target = lake(tmp_path)
    target.append("raw.t", [pa.table({"x": [1]})], properties={"batch_id": batch, "rows": 1})
    table = target.table("raw.t")
    assert table is not None
    # as an earlier release wrote it: bare, not JSON
    table.append(
        pa.table({"x": pa.array([2], pa.int64())}), snapshot_properties={"hw.batch_id": batch}
    )
    ids = [s.batch_id for s in target.snapshots("raw.t")]
    assert ids == [batch, batch] and all(isinstance(b, str) for b in ids)
    assert target.snapshots("raw.t")[0].properties["rows"] == 1
    target.expire("raw.t", keep=1)
    assert [s.batch_id for s in target.snapshots("raw.t")] == [batch, batch]
