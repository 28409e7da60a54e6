"""A contract change that breaks what raw already holds needs a new schema_version: without
one, `plan` refuses it and nothing lands; widening a type or adding a column does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headwater.orchestrate.stores import LakeStores
from headwater.project import load_project
from tests.badinput.harness import hw, write

CONTRACT = """\
source: shop.orders
schema_version: "{version}"
delivery: batch
privacy_level: internal
connector: {{kind: files, path: "data/*.csv", format: csv}}
columns:
{columns}
rules:
  - {{name: known_status, type: valid_values, target: status, values: [{values}]}}
"""
COLUMNS = {
    "id": "  - {name: id, type: bigint, nullable: false}",
    "status": "  - {name: status, type: varchar}",
    "amount": "  - {name: amount, type: int}",
}


def contract(
    root: Path, version: str = "1", values: str = "new, paid, shipped", **types: str
) -> None:
    columns = {**COLUMNS, **{n: f"  - {{name: {n}, type: {t}}}" for n, t in types.items()}}
    shown = "\n".join(c for c in columns.values() if "REMOVED" not in c)
    write(
        root, "contracts/orders.yml", CONTRACT.format(version=version, columns=shown, values=values)
    )


@pytest.fixture
def landed(tmp_path: Path) -> Path:
    write(tmp_path, "headwater.yml", "name: t\n")
    contract(tmp_path)
    write(tmp_path, "data/a.csv", "id,status,amount\n1,new,10\n2,paid,20\n")
    assert hw(tmp_path, "ingest").code == 0
    return tmp_path


def plan_json(root: Path) -> tuple[int, list[dict[str, object]]]:
    outcome = hw(root, "plan", "--format", "json")
    return outcome.code, json.loads(outcome.output)["contracts"]


def batches(root: Path) -> int:
    stores = LakeStores.open(load_project(root))
    try:
        return len(stores.lake.snapshots("raw.orders"))
    finally:
        stores.close()


def test_a_removed_column_without_a_new_version_is_refused_and_nothing_lands(
    landed: Path,
) -> None:
    contract(landed, amount="REMOVED")
    code, [change] = plan_json(landed)
    assert code == 3 and change["refused"] and change["breaking"] == ["column amount removed"]
    write(landed, "data/b.csv", "id,status\n3,new\n")
    before = batches(landed)
    outcome = hw(landed, "ingest")
    flat = " ".join(outcome.output.split())
    assert outcome.code == 1
    assert "raw.orders: a breaking change under schema_version '1', which the raw table" in flat
    assert "column amount removed" in flat and "raise its schema_version (e.g. '2')" in flat
    assert "contracts/orders.yml" in flat
    assert batches(landed) == before  # nothing landed


def test_narrowed_valid_values_are_breaking(landed: Path) -> None:
    contract(landed, values="new, paid")
    code, [change] = plan_json(landed)
    assert code == 3 and change["breaking"] == [
        "valid values of status narrowed: shipped no longer allowed"
    ]
    contract(landed, values="new, paid, shipped, returned")  # widened: fine
    code, changes = plan_json(landed)
    assert code == 0 and changes == []


def test_a_widened_type_and_an_added_column_are_compatible(landed: Path) -> None:
    contract(landed, amount="bigint", note="varchar")
    code, [change] = plan_json(landed)
    assert code == 0 and not change["refused"] and change["breaking"] == []
    assert change["compatible"] == ["column amount widened from INT to BIGINT", "column note added"]


def test_a_retyped_column_is_refused_under_any_version(landed: Path) -> None:
    contract(landed, version="2", amount="varchar")
    code, [change] = plan_json(landed)
    assert code == 3 and change["refused"]
    assert change["impossible"] == ["column amount retyped from INT to VARCHAR"]
    write(landed, "data/b.csv", "id,status,amount\n3,new,ten\n")
    outcome = hw(landed, "ingest")
    flat = " ".join(outcome.output.split())
    assert outcome.code == 1 and outcome.crashed is None
    assert "its columns can only widen" in flat and "add a new column" in flat


def test_a_removed_column_under_a_new_version_lands(landed: Path) -> None:
    contract(landed, version="2", amount="REMOVED")
    code, [change] = plan_json(landed)
    assert code == 0 and not change["refused"]
    assert change["breaking"] == ["column amount removed"]
    assert change["recorded_schema_version"] == "1" and change["schema_version"] == "2"
    write(landed, "data/b.csv", "id,status\n3,new\n")
    assert hw(landed, "ingest").code == 0
    code, changes = plan_json(landed)  # what landed is the new version now
    assert code == 0 and changes == []
