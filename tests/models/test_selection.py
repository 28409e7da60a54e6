"""`--select`: names, globs, tags and `+` expansions over the example project's DAG."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.errors import SpecError
from headwater.models.selection import select
from headwater.project import load_project


@pytest.fixture(scope="module")
def dag(shop_template: Path):  # type: ignore[no-untyped-def]
    return load_project(shop_template).dag


@pytest.mark.parametrize(
    ("selectors", "expected"),
    [
        (["marts.events_daily"], {"marts.events_daily"}),
        (["marts.events_daily+"], {"marts.events_daily", "marts.funnel_daily"}),
        (["+marts.customer_orders"], {"marts.customer_orders", "clean.customers", "clean.orders"}),
        (["+marts.events_daily+"], {"clean.events", "marts.events_daily", "marts.funnel_daily"}),
        (["clean.*"], {"clean.customers", "clean.events", "clean.orders"}),
        (
            ["clean.orders+ marts.funnel_daily"],
            {"clean.orders", "marts.customer_orders", "marts.revenue_daily", "marts.funnel_daily"},
        ),
    ],
)
def test_selectors(dag, selectors: list[str], expected: set[str]) -> None:  # type: ignore[no-untyped-def]
    assert select(dag, selectors) == expected


def test_tags_from_header_and_sidecar(shop: Path) -> None:
    sidecar = shop / "models/marts/customer_orders.yml"
    sidecar.write_text(sidecar.read_text() + "tags: [finance]\n")
    model = shop / "models/marts/revenue_daily.sql"
    model.write_text(model.read_text().replace("kind: view", "kind: view\ntags: [finance]"))
    assert select(load_project(shop).dag, ["tag:finance"]) == {
        "marts.customer_orders",
        "marts.revenue_daily",
    }


def test_a_selector_that_matches_nothing_says_so(dag) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError, match=r"matches no model.*did you mean 'marts\.events_daily'"):
        select(dag, ["marts.event_daily+"])
