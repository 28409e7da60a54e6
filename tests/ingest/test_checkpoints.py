"""Typed checkpoints: each raw commit records where its source stands, whole, so a run resumes
from the newest commit alone; a table from before whole checkpoints is folded once and then
written whole; a source without files (the memory double) commits its offsets."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from headwater.contracts import Load
from headwater.ingest import connectors, ingest
from headwater.ingest.source import CHECKPOINT_VERSION, Checkpoint
from headwater.zones.lake import Lake
from tests.ingest.memory import KIND, MemoryConnector, MemoryReader
from tests.ingest.raw import orders_contract, rows, write

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
COLUMNS = [
    {"name": "order_id", "type": "bigint", "nullable": False},
    {"name": "note", "type": "varchar"},
]


def _files_contract():  # type: ignore[no-untyped-def]
    return orders_contract({"kind": "files", "path": "data/*.csv"}, columns=COLUMNS)


def _memory_contract(connector: MemoryConnector):  # type: ignore[no-untyped-def]
    # the spec knows no `memory` kind: the double is put in place of a valid connector
    return _files_contract().model_copy(update={"connector": connector})


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> MemoryConnector:
    monkeypatch.setitem(connectors.SOURCES, KIND, MemoryReader)
    records = {
        "p0": [{"order_id": i, "note": f"a{i}"} for i in range(5)],
        "p1": [{"order_id": 100 + i, "note": f"b{i}"} for i in range(3)],
    }
    return MemoryConnector(partitions=records)


def _checkpoints(lake: Lake) -> list[dict]:  # type: ignore[type-arg]
    return [s.properties["checkpoint"] for s in lake.snapshots("raw.orders")]


# --- resuming ---------------------------------------------------------------------------


def _never(path: str) -> list[str]:
    raise AssertionError(f"read {path}")


def test_resume_reads_the_newest_summary_alone() -> None:
    whole = {"version": CHECKPOINT_VERSION, "cursor": 7, "offsets": {"p0": 3}, "lsn": "0/16B"}
    # older summaries that would change the result if they were read
    junk = {"checkpoint": {"version": CHECKPOINT_VERSION, "cursor": 99, "offsets": {"x": 1}}}

    got = Checkpoint.resume(
        [junk, {"checkpoint": "not even a dict"}, {"checkpoint": whole}], _never
    )

    assert got == Checkpoint(cursor=7, offsets={"p0": 3}, lsn="0/16B")


def test_resume_reads_the_files_the_newest_commit_wrote_aside() -> None:
    aside = {"count": 2, "path": "metadata/x.files"}
    newest = {"checkpoint": {"version": CHECKPOINT_VERSION, "cursor": None, "files": aside}}
    read: list[str] = []

    got = Checkpoint.resume([newest], lambda path: read.append(path) or ["a|1|1", "b|1|1"])

    assert read == ["metadata/x.files"]
    assert got.files == {"a|1|1", "b|1|1"}


def test_a_table_from_before_whole_checkpoints_is_folded() -> None:
    legacy = [
        {"checkpoint": {"files": ["a|1|1"], "cursor": None}},
        {"checkpoint": {"files": ["b|1|1"], "cursor": "2026-01-01T00:00:00"}},
        {"checkpoint": {"pages": 3, "cursor": None}},
        {"note": "a commit without a checkpoint"},
    ]

    got = Checkpoint.resume(legacy, _never)

    assert got == Checkpoint(files=frozenset({"a|1|1", "b|1|1"}), cursor="2026-01-01T00:00:00")


# --- files ------------------------------------------------------------------------------


def test_each_commit_records_every_file_landed_aside_and_keeps_one_such_file(
    tmp_path: Path, lake: Lake
) -> None:
    for i in range(3):
        write(tmp_path / f"data/{i}.csv", f"order_id,note\n{i},x\n")
        ingest(_files_contract(), root=tmp_path, lake=lake, now=NOW)

    summaries = _checkpoints(lake)
    assert [c["files"]["count"] for c in summaries] == [1, 2, 3]
    # the summary names the files, it does not list them: it stays the same size
    assert all(set(c["files"]) == {"count", "path"} for c in summaries)
    aside = sorted((tmp_path / "lake").rglob("hw-checkpoint-*"))
    assert [p.name for p in aside] == [Path(summaries[-1]["files"]["path"]).name]
    assert rows(lake, "raw.orders", "order_id") == [(0,), (1,), (2,)]


def test_a_copied_project_never_removes_the_file_list_its_original_needs(
    tmp_path: Path, lake: Lake
) -> None:
    """`cp -r` copies the catalog, whose Iceberg metadata names the original's files by
    absolute path: the copy's commit must leave the original's newest file list alone."""
    import shutil

    write(tmp_path / "data/a.csv", "order_id,note\n1,x\n")
    ingest(_files_contract(), root=tmp_path, lake=lake, now=NOW)
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(tmp_path / "catalog.db", copy / "catalog.db")
    shutil.copytree(tmp_path / "data", copy / "data")
    shutil.copytree(tmp_path / "lake", copy / "lake")
    write(copy / "data/b.csv", "order_id,note\n2,y\n")

    ingest(
        _files_contract(),
        root=copy,
        lake=Lake(f"sqlite:///{copy / 'catalog.db'}", "lake", copy),
        now=NOW,
    )

    write(tmp_path / "data/c.csv", "order_id,note\n3,z\n")
    landed = ingest(_files_contract(), root=tmp_path, lake=lake, now=NOW)  # the original goes on
    assert landed.files == ["data/c.csv"]
    assert rows(lake, "raw.orders", "order_id") == [(1,), (3,)]


def test_a_snapshot_load_records_the_files_of_its_copy_only(tmp_path: Path, lake: Lake) -> None:
    contract = _files_contract().model_copy(update={"load": Load.SNAPSHOT})
    write(tmp_path / "data/a.csv", "order_id,note\n1,x\n")
    ingest(contract, root=tmp_path, lake=lake, now=NOW)
    (tmp_path / "data/a.csv").unlink()
    write(tmp_path / "data/b.csv", "order_id,note\n2,y\n")

    ingest(contract, root=tmp_path, lake=lake, now=NOW)

    assert [c["files"]["count"] for c in _checkpoints(lake)] == [1, 1]


def test_a_table_landed_by_the_previous_release_continues_without_landing_twice(
    tmp_path: Path, lake: Lake
) -> None:
    """A commit whose summary holds only its own batch's files (the previous release's
    format, here after a whole one, as after a downgrade): the next run folds the summaries
    once, lands only the new file, and commits a whole checkpoint."""
    first = write(tmp_path / "data/a.csv", "order_id,note\n1,x\n")
    ingest(_files_contract(), root=tmp_path, lake=lake, now=NOW)
    key = f"data/a.csv|{first.stat().st_size}|{first.stat().st_mtime_ns}"
    # rewrite history as the previous release wrote it: a second commit, version-less
    lake.append(
        "raw.orders",
        [],
        properties={"batch_id": "old", "checkpoint": {"files": [key], "cursor": None}},
    )
    write(tmp_path / "data/b.csv", "order_id,note\n2,y\n")

    landed = ingest(_files_contract(), root=tmp_path, lake=lake, now=NOW)

    assert landed.files == ["data/b.csv"]
    assert rows(lake, "raw.orders", "order_id") == [(1,), (2,)]
    newest = _checkpoints(lake)[-1]
    assert newest["version"] == CHECKPOINT_VERSION and newest["files"]["count"] == 2


def test_a_lost_file_list_is_an_error_that_says_so(tmp_path: Path, lake: Lake) -> None:
    write(tmp_path / "data/a.csv", "order_id,note\n1,x\n")
    ingest(_files_contract(), root=tmp_path, lake=lake, now=NOW)
    for aside in (tmp_path / "lake").rglob("hw-checkpoint-*"):
        aside.unlink()

    with pytest.raises(Exception, match="cannot be read") as caught:
        ingest(_files_contract(), root=tmp_path, lake=lake, now=NOW)

    assert "restore" in (getattr(caught.value, "hint", "") or "")
    assert rows(lake, "raw.orders", "order_id") == [(1,)]  # nothing landed twice


# --- a source without files -------------------------------------------------------------


def test_a_stream_source_commits_its_offsets_and_resumes_past_them(
    tmp_path: Path, lake: Lake, memory: MemoryConnector
) -> None:
    first = ingest(_memory_contract(memory), root=tmp_path, lake=lake, now=NOW)
    assert (first.rows, first.files) == (8, [])
    assert _checkpoints(lake)[-1]["offsets"] == {"p0": 5, "p1": 3}

    memory.partitions["p1"].append({"order_id": 103, "note": "b3"})
    again = ingest(_memory_contract(memory), root=tmp_path, lake=lake, now=NOW)

    assert again.rows == 1
    assert memory.opened[-1].offsets == {"p0": 5, "p1": 3}
    assert _checkpoints(lake)[-1]["offsets"] == {"p0": 5, "p1": 4}
    assert [r[0] for r in rows(lake, "raw.orders", "order_id")] == [
        *range(5),
        *range(100, 104),
    ]


def test_a_source_with_nothing_new_commits_nothing(
    tmp_path: Path, lake: Lake, memory: MemoryConnector
) -> None:
    ingest(_memory_contract(memory), root=tmp_path, lake=lake, now=NOW)

    quiet = ingest(_memory_contract(memory), root=tmp_path, lake=lake, now=NOW)

    assert quiet.batch_id is None
    assert len(lake.snapshots("raw.orders")) == 1


def test_a_source_dying_mid_read_commits_nothing_and_the_rerun_lands_it_all_once(
    tmp_path: Path, lake: Lake, memory: MemoryConnector
) -> None:
    dying = dataclasses.replace(memory, fail_after=2)
    with pytest.raises(ConnectionError):
        ingest(_memory_contract(dying), root=tmp_path, lake=lake, now=NOW)
    assert lake.snapshots("raw.orders") == []

    landed = ingest(_memory_contract(memory), root=tmp_path, lake=lake, now=NOW)

    assert landed.rows == 8
    assert len(rows(lake, "raw.orders", "order_id")) == 8
    assert json.loads(json.dumps(_checkpoints(lake)[-1]["offsets"])) == {"p0": 5, "p1": 3}


def test_a_record_that_breaks_the_contract_is_quarantined_and_its_offset_still_passes(
    tmp_path: Path, lake: Lake, memory: MemoryConnector
) -> None:
    memory.partitions["p1"].append({"order_id": None, "note": "no key"})

    landed = ingest(_memory_contract(memory), root=tmp_path, lake=lake, now=NOW)

    assert (landed.rows, landed.quarantined) == (8, 1)
    [(source, reason)] = rows(lake, "raw.orders__quarantine", "_hw_source, _hw_reason")
    assert source == "p1 record 4" and "order_id" in reason
    assert _checkpoints(lake)[-1]["offsets"]["p1"] == 4
    assert pa  # the double builds its parts with pyarrow
