"""`headwater plan` classifies each change before anything is built: breaking, non-breaking,
indirect, metadata-only; reformatting or editing docs rebuilds nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from headwater.change.plan import classify
from headwater.models.parse import parse_model
from headwater.orchestrate import Stores, run
from headwater.project import load_project
from tests.badinput.harness import csv_contract, hw, write

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def normalized(root: Path, sql: str) -> str:
    write(root, "models/marts/m.sql", sql)
    return parse_model(root / "models/marts/m.sql", root=root).normalized_sql


@pytest.mark.parametrize(
    ("old", "new", "change", "reason"),
    [
        ("select a, b from raw.t", "select a, b, c from raw.t", "non-breaking", "column c added"),
        ("select a, b from raw.t", "select a from raw.t", "breaking", "column b removed"),
        (
            "select a from raw.t",
            "select a from raw.t where a > 1",
            "breaking",
            "filter (where) changed",
        ),
        (
            "select a, count(*) as n from raw.t group by a",
            "select a, count(*) as n from raw.t group by all",
            "breaking",
            "grain (group by) changed",
        ),
        (
            "select a, b from raw.t",
            "select a, b + 1 as b from raw.t",
            "breaking",
            "computed differently",
        ),
        (
            "select a from raw.t",
            "select a from raw.t join raw.u using (a)",
            "breaking",
            "joins changed",
        ),
        (
            "select a from raw.t",
            "select a from raw.t union all select a from raw.u",
            "breaking",
            "set",
        ),
    ],
)
def test_a_query_change_is_classified_with_its_reason(
    tmp_path: Path, old: str, new: str, change: str, reason: str
) -> None:
    found, reasons = classify(normalized(tmp_path, old), normalized(tmp_path, new))
    assert str(found) == change and any(reason in r for r in reasons), reasons


def test_reformatting_and_comments_are_no_change(tmp_path: Path) -> None:
    one = normalized(tmp_path, "select a, b from raw.t where a > 1")
    other = normalized(tmp_path, "-- the same\nSELECT a,\n       b\nFROM raw.t\nWHERE a>1\n")
    assert one == other


ORDERS = csv_contract("shop.orders", id="bigint", amount="bigint")


def project(root: Path) -> Path:
    write(root, "headwater.yml", "name: t\n")
    write(root, "contracts/orders.yml", ORDERS)
    write(root, "data/a.csv", "id,amount\n1,10\n2,20\n")
    write(root, "models/clean/orders.sql", "select id, amount from raw.orders\n")
    write(root, "models/clean/orders.yml", "description: Orders.\n")
    write(root, "models/marts/total.sql", "select sum(amount) as total from clean.orders\n")
    write(root, "models/marts/other.sql", "select 1 as one\n")
    return root


def planned(root: Path) -> dict[str, dict[str, object]]:
    outcome = hw(root, "plan", "--format", "json")
    assert outcome.code == 0, outcome
    return {c["model"]: c for c in json.loads(outcome.output)["changes"]}


def built(root: Path) -> dict[str, str]:
    loaded = load_project(root)
    stores = Stores.open(loaded)
    try:
        report = run(loaded, stores, now=NOW)
    finally:
        stores.close()
    assert report.ok
    return {name: str(m.status) for name, m in report.models.items()}


def test_reformatting_sql_and_editing_docs_rebuilds_nothing(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert {c["change"] for c in planned(root).values()} == {"added"}
    built(root)
    assert planned(root) == {}
    write(
        root, "models/clean/orders.sql", "-- reformatted\nSELECT id,\n  amount\nFROM raw.orders\n"
    )
    write(root, "models/clean/orders.yml", "description: Every order.\nowner: ana@example.com\n")
    [docs] = planned(root).values()
    assert docs["model"] == "clean.orders" and docs["change"] == "metadata-only"
    statuses = built(root)
    assert set(statuses.values()) == {"up_to_date"}  # nothing rebuilt
    assert planned(root) == {}  # the docs are recorded with the version


def test_a_column_added_then_removed(tmp_path: Path) -> None:
    root = project(tmp_path)
    built(root)
    write(
        root,
        "models/clean/orders.sql",
        "select id, amount, amount * 2 as doubled from raw.orders\n",
    )
    changes = planned(root)
    assert changes["clean.orders"]["change"] == "non-breaking"
    assert changes["clean.orders"]["reasons"] == ["column doubled added"]
    assert changes["clean.orders"]["downstream"] == ["marts.total"]
    assert changes["marts.total"]["change"] == "indirect"
    assert changes["marts.total"]["reasons"] == ["it reads clean.orders, which change"]
    assert "marts.other" not in changes and not changes["clean.orders"]["destructive"]
    built(root)
    write(root, "models/clean/orders.sql", "select id, amount from raw.orders where id > 1\n")
    changes = planned(root)
    assert changes["clean.orders"]["change"] == "breaking"
    assert changes["clean.orders"]["reasons"] == [
        "its filter (where) changed",
        "column doubled removed",
    ]
    assert changes["clean.orders"]["destructive"]


def test_a_removed_model_is_shown_as_destructive(tmp_path: Path) -> None:
    root = project(tmp_path)
    built(root)
    (root / "models/marts/other.sql").unlink()
    outcome = hw(root, "plan")
    flat = " ".join(outcome.output.split())
    assert outcome.code == 0
    assert "marts.other" in flat and "removed (destructive)" in flat
    assert "0 model(s) to build, 2 reused" in flat
    [removed] = planned(root).values()
    assert removed["model"] == "marts.other" and removed["destructive"]
    assert removed["reasons"] == [
        "no longer in the project: its view is dropped (its table is kept)"
    ]
