"""The example project's models built on Spark equal DuckDB's, row by row (issue #21).

The raw zone is landed once, by Python; the same build then runs on each engine — DuckDB in
its warehouse file, Spark in the Iceberg warehouse catalog beside the lake — and every model
is compared whole. Documented differences only: Spark's timestamps come back without a time
zone (they are UTC, the session's zone), and a sum of doubles may differ in its last bits
(the order of the additions)."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from headwater.engine.spark import WAREHOUSE, SparkEngine
from headwater.orchestrate import RunReport, Stores, run
from headwater.project import Project, load_project
from tests.conftest import NOW
from tests.spark import spark

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def both(
    shop_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Project, Stores, SparkEngine, RunReport]]:
    root = tmp_path_factory.mktemp("spark_build") / "shop"
    shutil.copytree(shop_template, root)
    project = load_project(root)
    stores = Stores.open(project)
    run(project, stores, now=NOW)  # landed by Python, built by DuckDB
    duckdb = stores.engine
    try:
        with spark(stores.catalog.url, stores.lake.warehouse) as engine:
            stores.engine = engine
            report = run(project, stores, now=NOW, stages=("build",))
            yield project, stores, engine, report
    finally:
        stores.engine = duckdb
        stores.close()


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    return value


def _rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    plain = [{k: _plain(v) for k, v in row.items()} for row in rows]
    return sorted(plain, key=lambda r: tuple(repr(v) for v in r.values()))


def test_every_model_builds_on_spark_and_passes_its_rules(
    both: tuple[Project, Stores, SparkEngine, RunReport],
) -> None:
    project, _, _, report = both
    assert {m.name: m.status.value for m in report.models.values()} == dict.fromkeys(
        project.models, "built"
    )
    assert report.checks and all(c.passed or not c.blocking for c in report.checks)


def test_every_model_equals_duckdbs_row_by_row(
    both: tuple[Project, Stores, SparkEngine, RunReport],
) -> None:
    project, stores, engine, _ = both
    for name in project.models:
        on_spark = engine.read(f"SELECT * FROM {name}").to_pylist()
        on_duckdb = stores.engine.read(f"SELECT * FROM {name}").to_pylist()
        assert on_spark, name
        assert _rows(on_spark) == _rows(on_duckdb), name


def test_versions_are_iceberg_tables_any_iceberg_reader_can_read(
    both: tuple[Project, Stores, SparkEngine, RunReport],
) -> None:
    from pyiceberg.catalog.sql import SqlCatalog

    _, stores, engine, report = both
    built = report.models["marts.customer_orders"]  # kind: table
    assert built.physical and built.physical.startswith("hw_marts.")
    objects = engine.objects()
    assert objects[built.physical].value == "TABLE"
    assert objects["marts.customer_orders"].value == "VIEW"  # the environment's pointer
    view = report.models["marts.revenue_daily"].physical or ""
    assert objects[view].value == "VIEW"  # kind: view
    warehouse = SqlCatalog(WAREHOUSE, uri=stores.catalog.url, warehouse=stores.lake.warehouse)
    table = warehouse.load_table(built.physical).scan().to_arrow()
    assert table.num_rows == built.rows and table.num_rows > 0  # counted by the write
