"""Two writers of one lake table: the one that commits second on a stale base gets `Conflict`
and commits nothing (pyiceberg would otherwise replay its append on top of the winner's, and
both landings' checkpoints would claim the same files or offsets)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from headwater.zones.lake import Conflict, Lake


def lakes(root: Path) -> tuple[Lake, Lake]:
    url = f"sqlite:///{root / 'catalog.db'}"
    return Lake(url, "lake", root), Lake(url, "lake", root)


def part(value: int) -> pa.Table:
    return pa.table({"x": pa.array([value], pa.int64())})


def test_a_commit_on_a_stale_base_is_a_conflict_and_commits_nothing(tmp_path: Path) -> None:
    first, second = lakes(tmp_path)
    first.append("raw.t", [part(1)], properties={"checkpoint": {"offsets": {"t:0": 1}}})

    def racing() -> Iterator[pa.Table]:
        yield part(2)
        # while `second` writes its data files, `first` commits
        first.append("raw.t", [part(3)], properties={"checkpoint": {"offsets": {"t:0": 2}}})

    with pytest.raises(Conflict) as caught:
        second.append("raw.t", racing(), properties={"checkpoint": {"offsets": {"t:0": 2}}})
    assert caught.value.retryable
    snapshots = first.snapshots("raw.t")
    assert [s.properties["checkpoint"]["offsets"] for s in snapshots] == [{"t:0": 1}, {"t:0": 2}]
    assert first.row_count("raw.t") == 2


def test_base_sees_the_state_the_commit_follows_and_may_refuse_it(tmp_path: Path) -> None:
    lake, _ = lakes(tmp_path)
    lake.append("raw.t", [part(1)], properties={"checkpoint": {"offsets": {"t:0": 1}}})
    seen: list[dict[str, object]] = []

    def refuse(properties: dict[str, object]) -> None:
        seen.append(properties)
        raise Conflict("someone else landed t:0")

    with pytest.raises(Conflict):
        lake.append("raw.t", [part(2)], properties={}, base=refuse)
    assert seen[0]["checkpoint"] == {"offsets": {"t:0": 1}}
    assert len(lake.snapshots("raw.t")) == 1


def test_the_current_snapshot_id_read_from_metadata_is_pyicebergs(tmp_path: Path) -> None:
    lake, _ = lakes(tmp_path)
    assert lake.current_snapshot_id("raw.t") is None  # no table yet
    for value in (1, 2, 3):
        lake.append("raw.t", [part(value)], properties={"checkpoint": {"n": value}})
        table = lake.table("raw.t")
        assert table is not None
        snapshot = table.current_snapshot()
        assert snapshot is not None
        assert lake.current_snapshot_id("raw.t") == snapshot.snapshot_id
