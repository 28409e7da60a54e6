"""A file that cannot be read is quarantined whole, once, and lands when it is fixed; a record
larger than a block, a byte that is not UTF-8 and compressed files are read, not refused."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from headwater.ingest import files as files_module
from headwater.ingest import ingest
from headwater.ingest.land import Landed, _Job
from headwater.ingest.source import Checkpoint
from headwater.zones.lake import Lake
from tests.ingest.raw import orders_contract, rows, write

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
COLUMNS = [
    {"name": "order_id", "type": "bigint", "nullable": False},
    {"name": "note", "type": "varchar"},
]
HEADER = "order_id,note\n"


def contract(path: str, **connector: str):  # type: ignore[no-untyped-def]
    return orders_contract({"kind": "files", "path": path, **connector}, columns=COLUMNS)


def land(root: Path, lake: Lake, path: str = "data/*.csv", **connector: str) -> Landed:
    return ingest(contract(path, **connector), root=root, lake=lake, now=NOW)


def quarantine(lake: Lake) -> list[tuple[str, str, str]]:
    return rows(lake, "raw.orders__quarantine", "_hw_source, _hw_reason, _hw_record")


def test_an_unreadable_file_is_quarantined_once_and_lands_when_fixed(
    tmp_path: Path, lake: Lake
) -> None:
    write(tmp_path / "data/a.csv", HEADER + "1,x\n2,y\n")
    write(tmp_path / "data/b.csv", "order_id,note,note\n3,z,z\n")
    first = land(tmp_path, lake)
    assert (first.rows, first.quarantined) == (2, 1)
    [(source, reason, record)] = quarantine(lake)
    assert source == "data/b.csv"
    assert reason.startswith("data/b.csv:1: the header names 'note' twice")
    assert "lands when it changes" in reason
    assert record.startswith("<whole file")

    again = land(tmp_path, lake)  # seen: not read again, nothing added twice
    assert (again.batch_id, again.rows, again.quarantined) == (None, 0, 0)
    assert len(quarantine(lake)) == 1

    write(tmp_path / "data/b.csv", HEADER + "3,z\n")  # fixed: a new key
    fixed = land(tmp_path, lake)
    assert (fixed.rows, fixed.quarantined, fixed.files) == (1, 0, ["data/b.csv"])
    assert rows(lake, "raw.orders", "order_id") == [(1,), (2,), (3,)]
    assert len(quarantine(lake)) == 1


def test_a_file_failing_midway_keeps_what_landed_and_says_so(
    tmp_path: Path, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A truncated gzip: the records before the break are in raw, the rest is one record."""
    monkeypatch.setattr(files_module, "PART_BYTES", 1 << 20)
    body = HEADER + "".join(f"{i},{'n' * 50}\n" for i in range(1, 600_001))
    data = gzip.compress(body.encode(), mtime=0)
    (tmp_path / "data").mkdir()
    (tmp_path / "data/a.csv.gz").write_bytes(data[: len(data) * 19 // 20])
    landed = land(tmp_path, lake, "data/*.csv.gz")
    assert landed.quarantined == 1
    [(source, reason, _)] = quarantine(lake)
    assert source == "data/a.csv.gz" and "gzip-compressed csv" in reason
    # how far Arrow's read-ahead got before the break is a matter of timing: what landed
    # is the file's first records, each once, and the quarantined record says how many
    assert landed.rows < 600_000
    if landed.rows:
        got = rows(lake, "raw.orders", "count(*), min(order_id), max(order_id)")[0]
        assert got == (landed.rows, 1, landed.rows)
        assert f"its first {landed.rows:,} records landed" in reason
    else:
        assert "records landed" not in reason


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_record_larger_than_a_block_lands_once_in_order(
    tmp_path: Path, lake: Lake, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setattr(files_module, "BLOCK_BYTES", 1 << 14)
    big = "b" * (1 << 18)  # 16 blocks
    notes = [f"n{i}" for i in range(3000)] + [big] + [f"m{i}" for i in range(3000)]
    if fmt == "csv":
        lines = [f"{i},{n}\n" for i, n in enumerate(notes, 1)]
    else:
        lines = [f'{{"order_id": {i}, "note": "{n}"}}\n' for i, n in enumerate(notes, 1)]
    lines.insert(10, "oops\n")  # a bad record before the large one: read twice, kept once
    write(tmp_path / f"data/a.{fmt}", (HEADER if fmt == "csv" else "") + "".join(lines))
    landed = land(tmp_path, lake, f"data/*.{fmt}", format=fmt)
    assert (landed.rows, landed.quarantined) == (len(notes), 1)
    assert len(quarantine(lake)) == 1
    got = rows(lake, "raw.orders", "order_id, length(note)")
    assert [r[0] for r in got] == list(range(1, len(notes) + 1))
    assert got[3000][1] == len(big)
    sources = rows(lake, "raw.orders", "count(DISTINCT _hw_source)")
    assert sources == [(len(notes),)], "every record once, each at its own position"


def test_bytes_that_are_not_utf8_quarantine_their_record_only(tmp_path: Path, lake: Lake) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data/a.csv").write_bytes(b"order_id,note\n1,caf\xe9\n2,ok\n3,\xff\n")
    landed = land(tmp_path, lake)
    assert (landed.rows, landed.quarantined) == (1, 2)
    bad = quarantine(lake)
    assert [b[0] for b in bad] == ["data/a.csv record 1", "data/a.csv record 3"]
    assert "invalid UTF-8 in column(s) note" in bad[0][1] and "encoding:" in bad[0][1]
    assert "\\xE9" in bad[0][2], "the record shows the byte"


def test_the_encoding_option_transcodes(tmp_path: Path, lake: Lake) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data/a.csv").write_bytes("order_id,note\n1,café\n".encode("latin-1"))
    land(tmp_path, lake, encoding="latin-1")
    assert rows(lake, "raw.orders", "note") == [("café",)]


def test_an_unterminated_quote_accounts_for_every_line(tmp_path: Path, lake: Lake) -> None:
    write(tmp_path / "data/a.csv", HEADER + '1,a\n"2,b\n3,c\n4,d\n')
    landed = land(tmp_path, lake)
    assert (landed.rows, landed.quarantined) == (1, 3)
    bad = quarantine(lake)
    assert [b[0] for b in bad] == ["data/a.csv:3", "data/a.csv:4", "data/a.csv:5"]
    assert bad[0][1].startswith("unterminated quote: lines 3-5 were read as one record")
    assert [b[2] for b in bad] == ['"2,b', "3,c", "4,d"]
    assert bad[1][1] == "part of the record read from line 3"


def test_a_quote_left_open_in_the_last_field_lands_nothing_it_swallowed(
    tmp_path: Path, lake: Lake
) -> None:
    write(tmp_path / "data/a.csv", HEADER + '1,a\n2,"b\n3,c\n4,d\n')
    landed = land(tmp_path, lake)
    assert (landed.rows, landed.quarantined) == (1, 3)
    bad = quarantine(lake)
    assert [b[0] for b in bad] == [
        "data/a.csv record 2",
        "data/a.csv record 2, line +1",
        "data/a.csv record 2, line +2",
    ]
    assert bad[0][1].startswith("unterminated quote: its field runs over the 2 line(s)")
    assert [b[2] for b in bad[1:]] == ["3,c", "4,d"]


def test_a_quoted_field_with_line_breaks_lands(tmp_path: Path, lake: Lake) -> None:
    write(tmp_path / "data/a.csv", HEADER + '1,"a\nb"\n2,"c\nd"\n')
    assert land(tmp_path, lake).rows == 2
    assert rows(lake, "raw.orders", "note") == [("a\nb",), ("c\nd",)]


def test_warnings_name_an_empty_match_a_folder_and_an_empty_file(
    tmp_path: Path, lake: Lake
) -> None:
    assert land(tmp_path, lake, "data/*.csv").warnings == [
        "connector.path data/*.csv matches no file"
    ]
    (tmp_path / "data").mkdir()
    assert "is a folder" in land(tmp_path, lake, "data").warnings[0]
    write(tmp_path / "data/a.csv", "")
    assert land(tmp_path, lake).warnings == ["data/a.csv is empty (0 bytes): nothing to land"]


def test_a_count_that_does_not_add_up_is_a_warning() -> None:
    job = _Job(contract("x"), Landed("raw.orders"), now=NOW, cutoff=None, state=Checkpoint())
    job.tally = {"data/a.csv": [10, 7, 2], "data/b.csv": [3, 3, 0]}
    job.reconcile()
    assert job.result.warnings == [
        "data/a.csv: 10 records read but 7 landed and 2 quarantined; 1 are unaccounted for "
        "(please report)"
    ]


def test_a_gzip_file_on_the_direct_lane_goes_the_careful_lane(tmp_path: Path, lake: Lake) -> None:
    (tmp_path / "data").mkdir()
    line = b'{"order_id": 1, "note": "x"}\n'
    (tmp_path / "data/a.jsonl").write_bytes(gzip.compress(line))
    (tmp_path / "data/b.jsonl").write_bytes(line.replace(b"1", b"2"))
    landed = land(tmp_path, lake, "data/*.jsonl")
    assert (landed.rows, landed.quarantined) == (2, 0)
    assert landed.direct == {"data/b.jsonl": "exact"}
    assert rows(lake, "raw.orders", "order_id, note") == [(1, "x"), (2, "x")]


def test_a_parquet_column_named_like_metadata_quarantines_the_file(
    tmp_path: Path, lake: Lake
) -> None:
    import pyarrow.parquet as pq

    (tmp_path / "data").mkdir()
    pq.write_table(
        pa.table({"order_id": [1], "_hw_batch_id": ["forged"]}), tmp_path / "data/a.parquet"
    )
    landed = land(tmp_path, lake, "data/*.parquet")
    assert (landed.rows, landed.quarantined) == (0, 1)
    assert "'_hw_batch_id' uses a name headwater reserves" in quarantine(lake)[0][1]
