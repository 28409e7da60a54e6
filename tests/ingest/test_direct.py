"""The direct lane (DuckDB reads and writes whole JSON-lines files) lands exactly what the
careful lane lands: every test runs the same files through both, into two lakes, and compares
raw, quarantine, the counts, the snapshot summary and the manifest statistics.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from headwater.contracts import Contract
from headwater.ingest import direct, ingest, land
from headwater.ingest.land import Landed
from headwater.zones.lake import Lake
from tests.ingest.raw import orders_contract, rows, write

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
COLUMNS = [
    {"name": "id", "type": "BIGINT", "nullable": False},
    {"name": "n", "type": "INTEGER"},
    {"name": "amount", "type": "DECIMAL(10,2)"},
    {"name": "ratio", "type": "DOUBLE"},
    {"name": "ok", "type": "BOOLEAN"},
    {"name": "day", "type": "DATE"},
    {"name": "at", "type": "TIMESTAMPTZ", "nullable": False},
    {"name": "local_at", "type": "TIMESTAMP"},
    {"name": "name", "type": "VARCHAR"},
    {
        "name": "customer",
        "type": "STRUCT(name VARCHAR, tier VARCHAR, address STRUCT(city VARCHAR, zip VARCHAR))",
    },
    {"name": "items", "type": "STRUCT(sku VARCHAR, qty INTEGER)[]"},
    {"name": "tags", "type": "VARCHAR[]"},
]


def record(i: int, **changes: Any) -> dict[str, Any]:
    """A record with every declared key; `changes` replace values (None: JSON null), and a
    key mapped to `...` is left out."""
    value: dict[str, Any] = {
        "id": i,
        "n": i % 7,
        "amount": f"{i}.25" if i % 3 else i + 0.5,
        "ratio": 1e2 / (i + 1),
        "ok": i % 2 == 0,
        "day": f"2026-10-{1 + i % 28:02d}",
        "at": [
            f"2026-10-01T{i % 24:02d}:00:00Z",
            f"2026-10-01 {i % 24:02d}:30:00+02:00",
            f"2026-10-01T{i % 24:02d}:15:00.123456+00:00",
        ][i % 3],
        "local_at": f"2026-10-02 {i % 24:02d}:00:00",
        "name": ["plain", 'quote " and \\ slash', "ünïcödé ✓", "", "line\nbreak"][i % 5],
        "customer": {"name": f"c{i}", "tier": None, "address": {"city": "Oslo", "zip": None}},
        "items": [{"sku": f"s{k}", "qty": k} for k in range(i % 3)],
        "tags": None if i % 4 == 0 else ["x", "y"][: i % 3],
    }
    value.update(changes)
    return {k: v for k, v in value.items() if v is not ...}


def lines(*records: dict[str, Any] | str, newline: str = "\n") -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + newline for r in records)


@dataclass
class Both:
    """The same run through both lanes."""

    direct: Landed
    careful: Landed
    direct_lake: Lake
    careful_lake: Lake


@pytest.fixture
def both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    lakes = {
        lane: Lake(f"sqlite:///{tmp_path / f'{lane}.db'}", f"lake-{lane}", tmp_path)
        for lane in ("direct", "careful")
    }

    def run(spec: Contract) -> Both:
        landed = ingest(spec, root=tmp_path, lake=lakes["direct"], now=NOW)
        with monkeypatch.context() as patch:
            patch.setattr(land, "direct_files", lambda *args, **kwargs: [])
            careful = ingest(spec, root=tmp_path, lake=lakes["careful"], now=NOW)
        assert careful.direct == {}
        assert_same(landed, careful, lakes["direct"], lakes["careful"])
        return Both(landed, careful, lakes["direct"], lakes["careful"])

    yield run


def assert_same(direct: Landed, careful: Landed, a: Lake, b: Lake) -> None:
    shown = ("rows", "quarantined", "late", "skipped", "event_min", "event_max", "reasons")
    assert {k: getattr(direct, k) for k in shown} == {k: getattr(careful, k) for k in shown}
    for table in ("raw.orders", "raw.orders__quarantine"):
        assert rows(a, table) == rows(b, table)
        assert a.schema(table) == b.schema(table)
    # the same commit, but for the bytes it wrote: the lanes write the same rows to different
    # files (row groups, compression)
    committed = [
        {k: v for k, v in lake.snapshots("raw.orders")[-1].properties.items() if k != "bytes"}
        for lake in (a, b)
    ]
    assert committed[0] == committed[1]
    if direct.batch_id:
        assert a.batch_stats("raw.orders", direct.batch_id) == b.batch_stats(
            "raw.orders", careful.batch_id or ""
        )
    # pyiceberg reads the data files DuckDB wrote by their field ids, as any engine would
    table = a.table("raw.orders")
    if table is not None and table.current_snapshot() is not None:
        scanned = table.scan().to_arrow().sort_by("_hw_source")
        expected = b.table("raw.orders").scan().to_arrow().sort_by("_hw_source")  # type: ignore[union-attr]
        assert scanned.to_pylist() == expected.to_pylist()


def contract(**overrides: Any) -> Contract:
    spec = {
        "columns": COLUMNS,
        "watermark": "at - interval 2 hours",
        "primary_key": ["id"],
        **overrides,
    }
    return orders_contract({"kind": "files", "path": "in/*.jsonl"}, **spec)


def test_exact_files_land_in_one_parse_as_the_careful_lane_lands_them(
    tmp_path: Path, both: Any
) -> None:
    write(tmp_path / "in/a.jsonl", lines(*[record(i) for i in range(1, 40)]))
    # CRLF, blank lines, a byte-order mark and no final newline
    text = "\ufeff" + lines(*[record(i) for i in range(40, 60)], newline="\r\n")
    write(tmp_path / "in/b.jsonl", text.replace("\r\n", "\r\n\r\n", 3).rstrip("\r\n"))
    run = both(contract())
    assert run.direct.direct == {"in/a.jsonl": "exact", "in/b.jsonl": "exact"}, run.direct.careful
    assert (run.direct.rows, run.direct.quarantined) == (59, 0)
    assert rows(run.direct_lake, "raw.orders", "_hw_source")[:2] == [
        ("in/a.jsonl record 1",),
        ("in/a.jsonl record 10",),
    ]


def test_the_direct_files_are_iceberg_data_files_with_field_ids(tmp_path: Path, both: Any) -> None:
    write(tmp_path / "in/a.jsonl", lines(*[record(i) for i in range(1, 5)]))
    run = both(contract())
    assert run.direct.direct == {"in/a.jsonl": "exact"}
    schema = pq.read_schema(run.direct_lake.files("raw.orders")[0])
    customer = schema.field("customer")
    assert customer.metadata[b"PARQUET:field_id"] == b"10"
    assert customer.type.field("address").type.field("city").metadata == {
        b"PARQUET:field_id": str(
            run.direct_lake.table("raw.orders")
            .schema()
            .find_field("customer.address.city")
            .field_id  # type: ignore[union-attr]
        ).encode()
    }


def test_omitted_keys_and_extra_nested_keys_take_the_read_json_tier(
    tmp_path: Path, both: Any
) -> None:
    omitted = [record(i, n=..., tags=..., customer={"name": "c"}) for i in range(1, 20)]
    write(tmp_path / "in/omitted.jsonl", lines(*omitted))
    nested = [record(i, customer={"name": "c", "vip": True}) for i in range(20, 30)]
    write(tmp_path / "in/nested.jsonl", lines(*nested))
    run = both(contract())
    assert run.direct.direct == {"in/nested.jsonl": "read_json", "in/omitted.jsonl": "read_json"}
    assert run.direct.rows == 29


def test_a_new_key_under_evolve_becomes_a_text_column_in_both_lanes(
    tmp_path: Path, both: Any
) -> None:
    news = [record(i, coupon=["A1", 5, {"k": [1, 2.5]}, None, True][i % 5]) for i in range(1, 11)]
    write(tmp_path / "in/new.jsonl", lines(*news))
    write(tmp_path / "in/old.jsonl", lines(*[record(i) for i in range(11, 15)]))
    run = both(contract())
    assert run.direct.direct == {"in/new.jsonl": "read_json", "in/old.jsonl": "exact"}
    assert rows(run.direct_lake, "raw.orders", "id, coupon")[:3] == [
        (1, "5"),
        (2, '{"k":[1,2.5]}'),
        (3, None),
    ]
    # a later exact file lands NULL in the column the table grew
    write(tmp_path / "in/later.jsonl", lines(record(99)))
    run = both(contract())
    assert run.direct.direct == {"in/later.jsonl": "exact"}


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(record(3, id="three"), id="a top-level value that does not cast"),
        pytest.param(record(3, items=[{"sku": "s", "qty": "many"}]), id="a nested value"),
        pytest.param(record(3, at=None), id="a required value missing"),
        pytest.param('{"id": 3, "at": ', id="malformed JSON"),
        pytest.param("   ", id="a line of spaces"),
        pytest.param("[1, 2]", id="a JSON array"),
        pytest.param(lines(record(3)).rstrip("\n") + "\x01tail", id="a control character"),
    ],
)
def test_a_file_with_a_bad_record_goes_the_careful_lane(
    tmp_path: Path, both: Any, bad: dict[str, Any] | str
) -> None:
    write(tmp_path / "in/bad.jsonl", lines(record(1), record(2), bad, record(4)))
    write(tmp_path / "in/good.jsonl", lines(record(5), record(6)))
    run = both(contract())
    assert run.direct.direct == {"in/good.jsonl": "exact"}
    assert list(run.direct.careful) == ["in/bad.jsonl"]
    assert run.direct.rows + run.direct.quarantined >= 5


@pytest.mark.parametrize("policy", ["freeze", "discard_row", "discard_column"])
def test_unknown_keys_follow_the_evolution_policy(tmp_path: Path, both: Any, policy: str) -> None:
    write(tmp_path / "in/a.jsonl", lines(record(1), record(2, coupon="X"), record(3)))
    run = both(contract(evolution=policy))
    if policy == "discard_column":
        assert run.direct.direct == {"in/a.jsonl": "read_json"}
        assert (run.direct.rows, run.direct.quarantined) == (3, 0)
    else:
        assert list(run.direct.careful) == ["in/a.jsonl"]
        assert (run.direct.rows, run.direct.quarantined) == (2, 1)


def test_rules_that_quarantine_are_checked_by_the_direct_lane_too(
    tmp_path: Path, both: Any
) -> None:
    rule = {
        "name": "small",
        "type": "valid_values",
        "target": "n",
        "values": [1, 2, 3],
        "on_fail": "quarantine",
    }
    write(tmp_path / "in/fails.jsonl", lines(record(1, n=9), record(2, n=1)))
    write(tmp_path / "in/passes.jsonl", lines(record(3, n=1), record(4, n=2)))
    run = both(contract(rules=[rule]))
    assert run.direct.direct == {"in/passes.jsonl": "exact"}
    assert (run.direct.rows, run.direct.quarantined) == (3, 1)


def test_late_rows_and_event_ranges_match(tmp_path: Path, both: Any) -> None:
    first = [record(i, at=f"2026-10-02T{i:02d}:00:00Z") for i in range(10, 20)]
    write(tmp_path / "in/1.jsonl", lines(*first))
    both(contract())
    early = [record(i, at=f"2026-10-02T{i:02d}:00:00Z") for i in range(1, 24, 4)]
    write(tmp_path / "in/2.jsonl", lines(*early))
    run = both(contract())
    assert run.direct.direct == {"in/2.jsonl": "exact"}
    assert run.direct.late == 4  # before 19:00 - 2 hours


@pytest.mark.parametrize("blank_lines", [False, True])
def test_a_large_file_is_read_in_runs_of_records_one_per_core(
    tmp_path: Path, both: Any, monkeypatch: pytest.MonkeyPatch, blank_lines: bool
) -> None:
    """A file alone is read in runs of records, one per core; records keep their numbers
    (blank lines are not records, in either lane)."""
    monkeypatch.setattr(direct, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(direct.os, "cpu_count", lambda: 3)
    text = lines(*[record(i) for i in range(1, 301)])
    if blank_lines:
        text = text.replace("\n", "\n\n", 40)
    write(tmp_path / "in/big.jsonl", text)
    runs = direct._chunked([direct_file(tmp_path / "in/big.jsonl")], 3)
    assert [u.skip for u in runs] == [0, runs[0].limit, 2 * (runs[0].limit or 0)]
    assert runs[-1].limit is None
    run = both(contract())
    assert run.direct.direct == {"in/big.jsonl": "exact"}
    assert run.direct.rows == 300
    assert len(run.direct_lake.files("raw.orders")) == 3


def test_runs_past_the_last_record_write_nothing(
    tmp_path: Path, both: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The number of records is estimated: a run past the end is empty and adds no file."""
    monkeypatch.setattr(direct, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(
        direct,
        "_chunks",
        lambda file, count: [
            direct._Unit(file, skip=0, limit=100),
            direct._Unit(file, skip=100, limit=300),
            direct._Unit(file, skip=400),
        ],
    )
    write(tmp_path / "in/big.jsonl", lines(*[record(i) for i in range(1, 301)]))
    run = both(contract())
    assert (run.direct.direct, run.direct.rows) == ({"in/big.jsonl": "exact"}, 300)
    assert len(run.direct_lake.files("raw.orders")) == 2


def direct_file(path: Path) -> direct.SourceFile:
    return direct.SourceFile(str(path), path.name, "jsonl", path.stat().st_size, "0")


@pytest.mark.parametrize("key_lists", [1000, 1], ids=["lists-folded", "line-by-line"])
def test_the_first_pass_counts_records_other_lines_repeated_and_unknown_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key_lists: int
) -> None:
    """The first pass folds each distinct key list of a file in Python; a file with more
    lists than it keeps is checked line by line in SQL, with the same answer."""
    from headwater.engine import duckdb_files
    from headwater.engine.base import FileCheck

    monkeypatch.setattr(duckdb_files, "KEY_LISTS", key_lists)
    path = tmp_path / "a.jsonl"
    found = [
        '{"id": 1, "at": "x"}',
        '{"at": "x", "id": 2}',  # another order: another list
        "",
        '{"id": 3, "at": "x", "coupon": "A", "zeta": 1}',
        '  {"id": 4, "id": 5}',  # a key twice, after spaces
        "[1, 2]",  # JSON, not an object
        '"text"',
        '{"id": 6, "at": "x", "coupon": null}',
    ]
    write(path, "\n".join(found) + "\n")
    files = duckdb_files.DuckDBFiles(1)
    try:
        checked = files.check(str(path), ["id", "at"])
    finally:
        files.close()
    assert checked == FileCheck(
        records=7, not_objects=2, repeated_keys=1, unknown=("coupon", "zeta")
    )


@pytest.mark.parametrize(
    ("first", "misfits"),
    [
        pytest.param(record(1), False, id="exactly the declared keys"),
        pytest.param(record(1, n=...), True, id="a top-level key missing"),
        pytest.param(record(1, coupon="X"), True, id="another top-level key"),
        pytest.param(record(1, customer={"name": "c"}), True, id="a nested key missing"),
        pytest.param(record(1, items=[{"sku": "s"}]), True, id="a key missing in a list"),
        pytest.param(record(1, customer=None, items=None), False, id="nulls for structs"),
        pytest.param('{"id": 1, "at": ', False, id="not JSON: the exact tier refuses it"),
        pytest.param('{"id": ' + "[" * 5000 + "]" * 5000 + "}", False, id="nested too deep"),
    ],
)
def test_the_exact_tier_is_not_tried_on_a_file_whose_first_lines_do_not_fit(
    tmp_path: Path, first: dict[str, Any] | str, misfits: bool
) -> None:
    shape = direct._shape_of({c.name: direct.sql_type(c.type) for c in contract().columns})
    path = tmp_path / "a.jsonl"
    write(path, lines(first, *[record(i) for i in range(2, 5)]))
    assert direct._misfits(str(path), shape) is misfits
    assert not direct._misfits(str(tmp_path / "gone.jsonl"), shape)  # the lanes report it
    # only the head is read: a misfit after it is the exact tier's to find
    write(path, lines(*[record(i) for i in range(1, 400)], record(400, n=...)))
    assert not direct._misfits(str(path), shape, head=4096)


def test_a_file_that_visibly_misfits_goes_straight_to_the_read_json_tier(
    tmp_path: Path, both: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiers: list[str] = []
    write_one = direct.DirectLane._write
    monkeypatch.setattr(
        direct.DirectLane,
        "_write",
        lambda self, unit, path, copy, params, tier: (
            tiers.append(tier) or write_one(self, unit, path, copy, params, tier)
        ),
    )
    write(tmp_path / "in/a.jsonl", lines(record(1, n=...), *[record(i) for i in range(2, 9)]))
    run = both(contract())
    assert run.direct.direct == {"in/a.jsonl": "read_json"}
    assert tiers == ["read_json"]
