"""The example project's deliberate defects are caught by exactly the rules meant to catch them,
with the metric observed and the keys of the rows at fault."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from headwater.contracts import RuleType
from headwater.orchestrate import RunReport, Stores
from headwater.project import Project


def _orders_where(root: Path, broken: Any) -> list[int]:
    """Ids of the source orders (CSV files) for which `broken(row)` holds."""
    ids = []
    for path in sorted((root / "data" / "orders").glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            ids += [int(r["order_id"]) for r in csv.DictReader(handle) if broken(r)]
    return ids


def _expected(root: Path) -> dict[str, tuple[float, list[Any] | None]]:
    """rule → (metric, the key values of its samples), the orders' read from the source."""
    negative = _orders_where(root, lambda r: r["amount"].startswith("-"))
    unknown = _orders_where(root, lambda r: r["customer_id"] == "99999")
    backwards = _orders_where(root, lambda r: r["updated_at"] < r["ordered_at"])
    assert len(negative) == len(unknown) == len(backwards) == 1  # one defect of each
    return {
        "customers_id_unique": (1, [42]),
        "customers_email_format": (2, [11, 12]),
        "customers_country_known": (1, [21]),
        "events_type_known": (2, None),  # event ids are random; checked by type below
        "orders_amount_positive": (1, negative),
        "orders_customer_known": (1, unknown),
        "orders_schema": (1, ["coupon"]),
        "orders_updated_after_ordered": (1, backwards),
    }


def _keys(samples: list[dict[str, Any]]) -> list[Any]:
    first = next(iter(samples[0]))  # the key (or the column, for schema) comes first
    return sorted(s[first] for s in samples)


def test_each_defect_fails_exactly_its_rule(built_shop: tuple[Project, Stores, RunReport]) -> None:
    project, _, report = built_shop
    failed = {r.rule.name: r for r in report.checks if not r.passed}
    caught = _expected(project.root)

    assert set(failed) == set(caught)
    for name, (metric, keys) in caught.items():
        assert failed[name].metric == metric, name
        if keys is not None:
            assert _keys(failed[name].samples) == keys, name
    assert {s["event_type"] for s in failed["events_type_known"].samples} == {"pageview"}
    assert failed["orders_customer_known"].samples == [
        {"order_id": caught["orders_customer_known"][1][0], "customer_id": 99999}
    ]
    assert failed["orders_schema"].samples == [
        {"column": "coupon", "expected": None, "found": "VARCHAR"}
    ]


def test_the_example_carries_every_rule_type(built_shop: tuple[Project, Stores, RunReport]) -> None:
    _, _, report = built_shop
    used = {r.rule.type for r in report.checks}

    assert used == set(RuleType)
    # a first run: volume and drift have nothing earlier to compare with yet
    compared = (RuleType.VOLUME, RuleType.DRIFT)
    assert all(r.metric is not None for r in report.checks if r.rule.type not in compared)
    assert all(r.passed for r in report.checks if r.rule.type in compared)
