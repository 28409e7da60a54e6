"""`headwater lineage TABLE.COLUMN`: a column's chain down to raw columns, or out to marts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headwater.cli.main import app

runner = CliRunner()


def hw(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def project(shop_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project, never run: lineage needs only its files and a catalog."""
    root = tmp_path_factory.mktemp("lineage") / "shop"
    shutil.copytree(shop_template, root, ignore=shutil.ignore_patterns("data"))
    return root


def test_upstream_reaches_raw_columns(project: Path) -> None:
    code, out = hw("lineage", "marts.customer_orders.revenue", "-p", str(project))
    assert code == 0, out
    assert out.splitlines() == [
        "marts.customer_orders.revenue",
        "├── clean.orders.amount",
        "│   └── raw.orders.amount",
        "└── clean.orders.status",
        "    └── raw.orders.status",
    ]


def test_count_star_reaches_raw_events_through_the_rows_of_clean_events(project: Path) -> None:
    code, out = hw("lineage", "marts.events_daily.event_count", "--upstream", "-p", str(project))
    assert code == 0, out
    assert out.splitlines() == [
        "marts.events_daily.event_count",
        "└── clean.events (rows)",
        "    ├── raw.events (rows)",
        "    ├── raw.events._hw_ingested_at",
        "    ├── raw.events.event_id",
        "    └── raw.events.event_type",
    ]


def test_downstream_goes_out_to_the_marts(project: Path) -> None:
    code, out = hw("lineage", "raw.orders.amount", "--downstream", "-p", str(project))
    assert code == 0, out
    assert out.splitlines() == [
        "raw.orders.amount",
        "└── clean.orders.amount",
        "    ├── marts.customer_orders.revenue",
        "    └── marts.revenue_daily.revenue",
    ]


def test_a_column_reached_twice_is_expanded_once(project: Path) -> None:
    code, out = hw("lineage", "raw.events.event_type", "--downstream", "-p", str(project))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[:3] == [
        "raw.events.event_type",
        "├── clean.events (rows)",  # its WHERE keeps known event types
        "│   ├── marts.events_daily (rows)",
    ]
    # events_daily's rows derive from both clean.events' rows and clean.events.event_type
    assert "└── clean.events.event_type" in lines
    assert "    ├── marts.events_daily (rows) (see above)" in lines
    assert out.count("marts.funnel_daily.purchases") == 2  # via event_count, and via event_type


def test_unknown_column_is_one_line_with_did_you_mean(project: Path) -> None:
    code, out = hw("lineage", "marts.events_daily.event_cnt", "-p", str(project))
    assert code == 2
    assert out == (
        "error: 'marts.events_daily' has no column 'event_cnt'; "
        "did you mean marts.events_daily.event_count?\n"
    )


def test_unknown_table_is_one_line_with_did_you_mean(project: Path) -> None:
    code, out = hw("lineage", "events_daily.event_count", "-p", str(project))
    assert code == 2
    assert out == "error: unknown table 'events_daily'; did you mean 'marts.events_daily'?\n"
    code, out = hw("lineage", "marts.events_daily", "-p", str(project))
    assert code == 2
    assert out == (
        "error: 'marts.events_daily' is a table; name one of its columns; "
        "e.g. marts.events_daily.day\n"
    )


def test_a_model_that_cannot_be_traced_is_a_warning_naming_its_file(
    shop_template: Path, tmp_path: Path
) -> None:
    root = tmp_path / "shop"
    shutil.copytree(shop_template, root, ignore=shutil.ignore_patterns("data"))
    (root / "models/marts/broken.sql").write_text(
        "select o.order_id, nope from clean.orders as o join clean.customers as c "
        "on c.customer_id = o.customer_id\n",
        encoding="utf-8",
    )
    for _ in range(2):  # reported again on the next run, not hidden by the stored lineage
        code, out = hw("lineage", "marts.revenue_daily.revenue", "-p", str(root))
        assert code == 0, out
        assert out.splitlines()[0] == (
            "warning: models/marts/broken.sql: column lineage of 'nope': "
            "cannot tell which table 'nope' comes from"
        )
        assert "raw.orders.amount" in out
    code, out = hw("lineage", "marts.broken.order_id", "-p", str(root))
    assert out.splitlines()[1:] == [
        "marts.broken.order_id",
        "└── clean.orders.order_id",
        "    └── raw.orders.order_id",
    ]
