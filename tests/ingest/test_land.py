"""Landing files into raw: typing by contract, quarantine with reasons, exactly-once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from headwater.contracts import Contract
from headwater.ingest import ingest
from headwater.zones.lake import Lake
from tests.ingest.raw import orders_contract, rows, write

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
COLUMNS = [
    {"name": "order_id", "type": "bigint", "nullable": False},
    {"name": "amount", "type": "decimal(10,2)"},
    {"name": "updated_at", "type": "timestamp"},
]


def contract(path: str, **overrides: Any) -> Contract:
    return orders_contract({"kind": "files", "path": path}, columns=COLUMNS, **overrides)


def test_csv_lands_typed_rows_with_metadata(tmp_path: Path, lake: Lake) -> None:
    write(
        tmp_path / "data/o1.csv",
        "order_id,amount,updated_at\n1,10.50,2026-10-01 10:00:00\n2,3,2026-10-02 11:00:00\n",
    )
    landed = ingest(contract("data/*.csv"), root=tmp_path, lake=lake, now=NOW)
    assert (landed.rows, landed.quarantined, landed.files) == (2, 0, ["data/o1.csv"])
    got = rows(lake, "raw.orders", "order_id, amount, updated_at, _hw_source, _hw_batch_id")
    assert [r[:2] for r in got] == [(1, pytest.approx(10.5)), (2, pytest.approx(3))]
    assert got[0][2] == datetime(2026, 10, 1, 10, 0)
    assert got[0][3] == "data/o1.csv record 1"
    assert got[0][4] == landed.batch_id
    schema = lake.schema("raw.orders")
    assert schema is not None and str(schema.field("amount").type) == "decimal128(10, 2)"


def test_bad_records_are_quarantined_with_reason_and_location(tmp_path: Path, lake: Lake) -> None:
    write(
        tmp_path / "data/o1.csv",
        "order_id,amount,updated_at\n1,10,2026-10-01\n"
        "2,12;50,2026-10-01\n,4,2026-10-01\n5,6,2026-10-01,oops\n",
    )
    landed = ingest(contract("data/*.csv"), root=tmp_path, lake=lake, now=NOW)
    assert (landed.rows, landed.quarantined) == (1, 3)
    bad = rows(lake, "raw.orders__quarantine", "_hw_source, _hw_reason, _hw_record")
    assert ("data/o1.csv record 2", "amount: cannot cast '12;50' to DECIMAL(10, 2)") in [
        b[:2] for b in bad
    ]
    assert ("data/o1.csv record 3", "order_id: required value is missing") in [b[:2] for b in bad]
    wrong_width = next(b for b in bad if "fields" in b[1])
    assert wrong_width == ("data/o1.csv:5", "expected 3 fields, found 4", "5,6,2026-10-01,oops")
    assert json.loads(next(b[2] for b in bad if "12;50" in b[1]))["amount"] == "12;50"


def test_landing_the_same_files_twice_is_a_no_op(tmp_path: Path, lake: Lake) -> None:
    write(tmp_path / "data/o1.csv", "order_id,amount,updated_at\n1,10,2026-10-01\nx,1,\n")
    spec = contract("data/*.csv")
    ingest(spec, root=tmp_path, lake=lake, now=NOW)
    snapshots = [len(lake.snapshots("raw.orders")), len(lake.snapshots("raw.orders__quarantine"))]
    again = ingest(spec, root=tmp_path, lake=lake, now=NOW)
    assert (again.rows, again.quarantined, again.already_landed, again.batch_id) == (0, 0, 1, None)
    assert [
        len(lake.snapshots("raw.orders")),
        len(lake.snapshots("raw.orders__quarantine")),
    ] == snapshots
    assert len(rows(lake, "raw.orders")) == 1
    assert len(rows(lake, "raw.orders__quarantine")) == 1


def test_only_new_files_land_on_the_next_run(tmp_path: Path, lake: Lake) -> None:
    write(tmp_path / "data/o1.csv", "order_id,amount,updated_at\n1,10,2026-10-01\n")
    spec = contract("data/*.csv")
    ingest(spec, root=tmp_path, lake=lake, now=NOW)
    write(tmp_path / "data/o2.csv", "order_id,amount,updated_at\n2,20,2026-10-02\n")
    landed = ingest(spec, root=tmp_path, lake=lake, now=NOW)
    assert (landed.files, landed.rows, landed.already_landed) == (["data/o2.csv"], 1, 1)
    assert landed.read == "1 new file (1 already landed)"
    assert [r[0] for r in rows(lake, "raw.orders", "order_id")] == [1, 2]


def test_jsonl_malformed_lines_and_unknown_fields_under_freeze(tmp_path: Path, lake: Lake) -> None:
    write(
        tmp_path / "data/e.jsonl",
        '{"order_id": 1, "amount": 2.5}\n{"order_id": 2, bad\n'
        '{"order_id": 3, "coupon": "X"}\n[1, 2]\n{"order_id": "zz"}\n',
    )
    spec = contract("data/*.jsonl", evolution="freeze")
    landed = ingest(spec, root=tmp_path, lake=lake, now=NOW)
    assert (landed.rows, landed.quarantined) == (1, 4)
    reasons = {
        src: reason
        for src, reason in rows(lake, "raw.orders__quarantine", "_hw_source, _hw_reason")
    }
    assert reasons == {
        "data/e.jsonl record 2": "malformed JSON: not a JSON object",
        "data/e.jsonl record 3": "unknown field(s) coupon (evolution: freeze)",
        "data/e.jsonl record 4": "malformed JSON: not a JSON object",
        "data/e.jsonl record 5": "order_id: cannot cast 'zz' to BIGINT",
    }


def test_evolve_adds_new_columns_and_keeps_old_rows(tmp_path: Path, lake: Lake) -> None:
    spec = contract("data/*.jsonl", evolution="evolve")
    write(tmp_path / "data/e1.jsonl", '{"order_id": 1, "amount": 2.5}\n')
    ingest(spec, root=tmp_path, lake=lake, now=NOW)
    write(tmp_path / "data/e2.jsonl", '{"order_id": 2, "coupon": "X"}\n')
    landed = ingest(spec, root=tmp_path, lake=lake, now=NOW)
    assert (landed.rows, landed.quarantined) == (1, 0)
    assert rows(lake, "raw.orders", "order_id, coupon") == [(1, None), (2, "X")]


def test_csv_unknown_column_under_freeze_is_quarantined(tmp_path: Path, lake: Lake) -> None:
    write(
        tmp_path / "data/o.csv",
        "order_id,amount,updated_at,coupon\n1,1,2026-10-01,\n2,1,2026-10-01,SAVE10\n",
    )
    landed = ingest(contract("data/*.csv", evolution="freeze"), root=tmp_path, lake=lake, now=NOW)
    assert (landed.rows, landed.quarantined) == (1, 1)
    assert rows(lake, "raw.orders__quarantine", "_hw_reason") == [
        ("unknown column 'coupon' (evolution: freeze)",)
    ]
    schema = lake.schema("raw.orders")
    assert schema is not None and "coupon" not in schema.names


def test_parquet_values_are_cast_and_checked(tmp_path: Path, lake: Lake) -> None:
    (tmp_path / "data").mkdir()
    pq.write_table(
        pa.table(
            {
                "order_id": pa.array(["1", "two"]),
                "amount": [1.5, 2.0],
                "updated_at": ["2026-10-01", "2026-10-02"],
            }
        ),
        tmp_path / "data/o.parquet",
    )
    landed = ingest(contract("data/*.parquet"), root=tmp_path, lake=lake, now=NOW)
    assert (landed.rows, landed.quarantined) == (1, 1)
    assert rows(lake, "raw.orders", "order_id") == [(1,)]


def test_late_rows_are_flagged_against_the_watermark(tmp_path: Path, lake: Lake) -> None:
    spec = contract("data/*.csv", watermark="updated_at - interval 2 hours")
    write(tmp_path / "data/o1.csv", "order_id,amount,updated_at\n1,1,2026-10-02 12:00:00\n")
    ingest(spec, root=tmp_path, lake=lake, now=NOW)
    write(
        tmp_path / "data/o2.csv",
        "order_id,amount,updated_at\n2,1,2026-10-02 11:00:00\n3,1,2026-10-02 09:00:00\n",
    )
    landed = ingest(spec, root=tmp_path, lake=lake, now=NOW)
    assert landed.late == 1
    assert rows(lake, "raw.orders", "order_id, _hw_late") == [(1, False), (2, False), (3, True)]
    assert (landed.event_min, landed.event_max) == ("2026-10-02T09:00:00", "2026-10-02T11:00:00")


def test_crash_between_quarantine_and_raw_commit_loses_and_duplicates_nothing(
    tmp_path: Path, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "data/o1.csv", "order_id,amount,updated_at\n1,1,2026-10-01\nx,1,\n")
    spec = contract("data/*.csv")
    real_append = Lake.append

    def crash_after_quarantine(self: Lake, name: str, parts: Any, **kwargs: Any) -> Any:
        before = kwargs.get("before_commit")

        def then_die() -> None:
            if before is not None:
                before()
            raise KeyboardInterrupt("simulated crash after the quarantine commit")

        if name == "raw.orders":
            kwargs["before_commit"] = then_die
        return real_append(self, name, parts, **kwargs)

    monkeypatch.setattr(Lake, "append", crash_after_quarantine)
    with pytest.raises(KeyboardInterrupt):
        ingest(spec, root=tmp_path, lake=lake, now=NOW)
    assert rows(lake, "raw.orders") == []
    assert len(rows(lake, "raw.orders__quarantine")) == 1
    monkeypatch.setattr(Lake, "append", real_append)
    landed = ingest(spec, root=tmp_path, lake=lake, now=NOW)
    assert landed.rows == 1
    assert len(rows(lake, "raw.orders")) == 1
    assert len(rows(lake, "raw.orders__quarantine")) == 1


def test_unreadable_format_is_a_clear_source_error(tmp_path: Path, lake: Lake) -> None:
    from headwater.errors import SourceError

    write(tmp_path / "data/o.txt", "hello\n")
    with pytest.raises(SourceError, match=r"cannot tell the format of o\.txt"):
        ingest(contract("data/*"), root=tmp_path, lake=lake, now=NOW)


@pytest.mark.parametrize(
    ("policy", "landed_rows", "quarantined"), [("discard_column", 2, 0), ("discard_row", 1, 1)]
)
def test_discard_policies(
    tmp_path: Path, lake: Lake, policy: str, landed_rows: int, quarantined: int
) -> None:
    write(
        tmp_path / "data/o.csv",
        "order_id,amount,updated_at,coupon\n1,1,2026-10-01,\n2,1,2026-10-01,SAVE10\n",
    )
    landed = ingest(contract("data/*.csv", evolution=policy), root=tmp_path, lake=lake, now=NOW)
    assert (landed.rows, landed.quarantined) == (landed_rows, quarantined)
    schema = lake.schema("raw.orders")
    assert schema is not None and "coupon" not in schema.names


NESTED = [
    {"name": "id", "type": "bigint"},
    {"name": "customer", "type": "struct(name varchar, address struct(city varchar, zip integer))"},
    {"name": "items", "type": "struct(sku varchar, qty integer)[]"},
    {"name": "tags", "type": "varchar[]"},
]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"items": [{"qty": 1}, {"qty": "many"}]}, 'items[1].qty: cannot cast "many" to INT'),
        ({"customer": {"address": {"zip": "x9"}}}, 'customer.address.zip: cannot cast "x9" to INT'),
        (
            {"customer": {"address": "nowhere"}},
            'customer.address: expected an object, found "nowhere"',
        ),
        ({"items": [{"qty": 1}, 5]}, "items[1]: expected an object, found 5"),
        ({"items": [{"qty": 1}, [2]]}, "items[1]: expected an object, found [2]"),
    ],
)
def test_a_nested_value_that_does_not_cast_is_quarantined_not_nulled(
    tmp_path: Path, lake: Lake, record: dict[str, Any], reason: str
) -> None:
    """json_transform NULLs a nested value that does not cast; landing finds it and says where."""
    good = [
        {"id": 1, "customer": {"name": "a", "address": {"city": "x", "zip": None}}},
        {"id": 2, "customer": {"name": None}, "items": [{"sku": None}], "tags": ["null", None]},
        {"id": 3, "customer": {"address": {"zip": "7", "floor": 2}}, "items": [], "tags": [1]},
    ]
    lines = [json.dumps(r) for r in [*good, {"id": 4, **record}]]
    write(tmp_path / "data/o.jsonl", "\n".join(lines) + "\n")
    spec = orders_contract({"kind": "files", "path": "data/*.jsonl"}, columns=NESTED)
    landed = ingest(spec, root=tmp_path, lake=lake, now=NOW)
    assert (landed.rows, landed.quarantined) == (3, 1)
    assert rows(lake, "raw.orders__quarantine", "_hw_source, _hw_reason") == [
        ("data/o.jsonl record 4", reason)
    ]
    landed_rows = rows(lake, "raw.orders", "id, customer, items, tags")
    assert landed_rows[2] == (3, {"name": None, "address": {"city": None, "zip": 7}}, [], ["1"])


def test_a_nested_parquet_value_that_does_not_cast_is_quarantined(
    tmp_path: Path, lake: Lake
) -> None:
    """TRY_CAST of a nested Parquet value NULLs what does not cast inside it; landing finds it."""
    (tmp_path / "data").mkdir()
    item = pa.struct([("sku", pa.string()), ("qty", pa.string())])
    pq.write_table(
        pa.table(
            {
                "id": [1, 2, 3],
                "items": pa.array(
                    [
                        [{"sku": "a", "qty": "1"}],
                        [{"sku": "b", "qty": "many"}],
                        [{"sku": None, "qty": None}],
                    ],
                    pa.list_(item),
                ),
            }
        ),
        tmp_path / "data/o.parquet",
    )
    columns = [
        {"name": "id", "type": "bigint"},
        {"name": "items", "type": "struct(sku varchar, qty integer)[]"},
    ]
    spec = orders_contract({"kind": "files", "path": "data/*.parquet"}, columns=columns)
    landed = ingest(spec, root=tmp_path, lake=lake, now=NOW)
    assert (landed.rows, landed.quarantined) == (2, 1)
    assert rows(lake, "raw.orders__quarantine", "_hw_source, _hw_reason") == [
        ("data/o.parquet record 2", 'items[0].qty: cannot cast "many" to INT')
    ]
    assert rows(lake, "raw.orders", "id, items") == [
        (1, [{"sku": "a", "qty": 1}]),
        (3, [{"sku": None, "qty": None}]),
    ]


def test_a_reason_quotes_a_long_value_cut_and_the_record_keeps_it_whole(
    tmp_path: Path, lake: Lake
) -> None:
    long = "x" * 500
    write(tmp_path / "data/e.jsonl", json.dumps({"order_id": long}) + "\n")
    landed = ingest(contract("data/*.jsonl"), root=tmp_path, lake=lake, now=NOW)
    assert (landed.rows, landed.quarantined) == (0, 1)
    [(reason, record)] = rows(lake, "raw.orders__quarantine", "_hw_reason, _hw_record")
    assert reason == f"order_id: cannot cast '{'x' * 80}…' to BIGINT"
    assert long in record
