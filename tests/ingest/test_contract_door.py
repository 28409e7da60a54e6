"""The contract at the door: schemas inferred and pinned per schema_version, and what a raw
table records of its contract (privacy level, PII tags, schema)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from headwater.contracts import Contract
from headwater.ingest import ingest
from headwater.zones.lake import Lake
from tests.ingest.raw import orders_contract, rows, write

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def contract(path: str, **overrides: Any) -> Contract:
    return orders_contract({"kind": "files", "path": path}, **overrides)


def record(i: int, **extra: Any) -> str:
    value = {
        "id": i,
        "at": f"2026-10-01T{i:02d}:00:00+00:00",
        "day": "2026-10-01",
        "amount": i + 0.5,
        "customer": {"name": f"c{i}", "tier": "gold"},
        "items": [{"sku": "a", "qty": i}],
        "tags": ["x"],
        **extra,
    }
    return json.dumps(value) + "\n"


def pinned(lake: Lake, version: str = "1") -> dict[str, str]:
    found = json.loads(lake.properties("raw.orders")[f"schema.{version}"])
    return {c["name"]: c.get("type", "VARCHAR") for c in found}


def test_first_load_infers_nested_types_and_pins_them(tmp_path: Path, lake: Lake) -> None:
    write(tmp_path / "in/1.jsonl", record(1) + record(2))
    landed = ingest(contract("in/*.jsonl"), root=tmp_path, lake=lake, now=NOW)
    assert (landed.rows, landed.quarantined) == (2, 0)
    assert pinned(lake) == {
        "id": "BIGINT",
        "at": "TIMESTAMPTZ",
        "day": "DATE",
        "amount": "DOUBLE",
        "customer": 'STRUCT("name" TEXT, "tier" TEXT)',
        "items": 'STRUCT("sku" TEXT, "qty" BIGINT)[]',
        "tags": "TEXT[]",
    }
    got = rows(lake, "raw.orders", 'id, "at", day, customer, items, tags')[1]
    assert got == (
        2,
        datetime(2026, 10, 1, 2, tzinfo=UTC),
        date(2026, 10, 1),
        {"name": "c2", "tier": "gold"},
        [{"sku": "a", "qty": 2}],
        ["x"],
    )


def test_later_batches_are_held_to_the_pinned_schema(tmp_path: Path, lake: Lake) -> None:
    spec = contract("in/*.jsonl", evolution="freeze")
    write(tmp_path / "in/1.jsonl", record(1))
    ingest(spec, root=tmp_path, lake=lake, now=NOW)
    write(tmp_path / "in/2.jsonl", record(2, coupon="X1") + record(3) + record(4, id="four"))
    landed = ingest(spec, root=tmp_path, lake=lake, now=NOW)
    assert (landed.rows, landed.quarantined) == (1, 2)
    bad = rows(lake, "raw.orders__quarantine", "_hw_source, _hw_reason")
    assert bad == [
        ("in/2.jsonl record 1", "unknown field(s) coupon (evolution: freeze)"),
        ("in/2.jsonl record 3", "id: cannot cast 'four' to BIGINT"),
    ]


def test_a_new_schema_version_is_inferred_and_pinned_beside_the_old(
    tmp_path: Path, lake: Lake
) -> None:
    write(tmp_path / "in/1.jsonl", record(1))
    ingest(contract("in/*.jsonl"), root=tmp_path, lake=lake, now=NOW)
    write(tmp_path / "in/2.jsonl", json.dumps({"id": 2, "channel": "web"}) + "\n")
    ingest(contract("in/*.jsonl", schema_version="2"), root=tmp_path, lake=lake, now=NOW)
    assert pinned(lake, "2") == {"id": "BIGINT", "channel": "TEXT"}
    assert "customer" in pinned(lake, "1")


def test_csv_text_takes_the_narrowest_type_every_value_fits(tmp_path: Path, lake: Lake) -> None:
    write(
        tmp_path / "in/1.csv",
        "id,price,flag,day,at,naive,note\n"
        "1,1.5,true,2026-10-01,2026-10-01T10:00:00Z,2026-10-01 10:00:00,a\n"
        "2,2,false,2026-10-02,2026-10-01T11:00:00+02:00,2026-10-01 11:00:00,\n",
    )
    ingest(contract("in/*.csv"), root=tmp_path, lake=lake, now=NOW)
    assert pinned(lake) == {
        "id": "BIGINT",
        "price": "DOUBLE",
        "flag": "BOOLEAN",
        "day": "DATE",
        "at": "TIMESTAMPTZ",
        "naive": "TIMESTAMP",
        "note": "TEXT",
    }
    assert rows(lake, "raw.orders", '"at"') == [
        (datetime(2026, 10, 1, 9, tzinfo=UTC),),  # 11:00+02:00
        (datetime(2026, 10, 1, 10, tzinfo=UTC),),
    ]


def test_privacy_level_and_pii_tags_are_recorded_with_the_table(tmp_path: Path, lake: Lake) -> None:
    write(tmp_path / "in/1.csv", "id,email\n1,a@example.com\n")
    spec = contract(
        "in/*.csv",
        privacy_level="restricted",
        owner="crm@example.com",
        columns=[{"name": "id", "type": "bigint"}, {"name": "email", "pii": "email"}],
    )
    ingest(spec, root=tmp_path, lake=lake, now=NOW)
    props = lake.properties("raw.orders")
    assert props["privacy_level"] == "restricted"
    assert json.loads(props["pii"]) == {"email": "email"}
    assert (props["owner"], props["source"], props["schema_version"]) == (
        "crm@example.com",
        "shop.orders",
        "1",
    )
    batch = lake.snapshots("raw.orders")[-1].properties
    assert (batch["privacy_level"], batch["pii"]) == ("restricted", {"email": "email"})
