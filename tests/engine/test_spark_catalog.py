"""Spark reads the lake the Python side wrote, and the Python side reads what Spark writes:
one Iceberg catalog (the project's database over JDBC), one lake (issue #21, point 2)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlglot import exp

from headwater.engine.spark import CATALOG, SparkEngine, jdbc_catalog
from headwater.errors import EngineError, SpecError
from headwater.orchestrate import Stores, run
from headwater.project import load_project
from tests.conftest import NOW
from tests.spark import spark

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def landed(
    shop_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stores, SparkEngine]]:
    """The example project run on DuckDB (its raw zone landed by Python), and a Spark session
    over its catalog and lake."""
    root = tmp_path_factory.mktemp("spark") / "shop"
    shutil.copytree(shop_template, root)
    project = load_project(root)
    stores = Stores.open(project)
    run(project, stores, now=NOW)
    try:
        with spark(stores.catalog.url, stores.lake.warehouse) as engine:
            yield stores, engine
    finally:
        stores.close()


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return sorted(
        (tuple(row.values()) for row in table.to_pylist()), key=lambda r: tuple(map(repr, r))
    )


def test_spark_reads_every_raw_table_the_python_side_landed(
    landed: tuple[Stores, SparkEngine],
) -> None:
    stores, engine = landed
    raw = [n for n in stores.lake.table_names() if n.startswith("raw.")]
    assert "raw.orders" in raw
    for name in raw:
        iceberg = stores.lake.table(name)
        assert iceberg is not None
        expected = iceberg.scan().to_arrow()
        got = engine.read(exp.select(exp.Star()).from_(exp.to_table(f"{CATALOG}.{name}")))
        assert got.column_names == expected.column_names, name
        assert got.num_rows == expected.num_rows > 0 or name.endswith("__quarantine")
        assert _rows(got.cast(expected.schema)) == _rows(expected), name
    lake_orders = f"{CATALOG}.raw.orders"  # the lake's table; `raw.orders` is the raw view
    # nothing made where the process runs: Spark's own folder is in a lake's (the first
    # project's to start Spark in this process)
    folder = engine.session.conf.get("spark.sql.warehouse.dir", "") or ""
    assert folder.endswith("/_warehouse/_session") and str(Path.cwd()) not in folder
    # nor Spark's warnings and progress bars on the user's terminal: errors only
    options = engine.session.conf.get("spark.driver.extraJavaOptions", "") or ""
    log4j = Path(options.split("-Dlog4j.configurationFile=")[1].split()[0])
    assert "rootLogger.level = error" in log4j.read_text()
    assert engine.session.conf.get("spark.ui.showConsoleProgress") == "false"
    assert engine.row_counts([lake_orders]) == {lake_orders: stores.lake.row_count("raw.orders")}


def test_what_spark_writes_the_python_side_reads(landed: tuple[Stores, SparkEngine]) -> None:
    stores, engine = landed
    engine.execute(f"CREATE NAMESPACE IF NOT EXISTS {CATALOG}.hw_spark")
    engine.execute(
        f"CREATE OR REPLACE TABLE {CATALOG}.hw_spark.by_status USING iceberg AS SELECT status, "
        f"count(*) AS orders, sum(amount) AS amount FROM {CATALOG}.raw.orders GROUP BY status"
    )
    written = stores.lake.table("hw_spark.by_status")
    assert written is not None
    got = {r["status"]: r["orders"] for r in written.scan().to_arrow().to_pylist()}
    (expected,) = stores.engine.rows(
        "SELECT count(DISTINCT status), count(*) FROM (SELECT * FROM raw.orders)"
    )
    assert len(got) == expected[0] and sum(got.values()) == stores.lake.row_count("raw.orders")


def test_named_parameters_and_errors(landed: tuple[Stores, SparkEngine]) -> None:
    _, engine = landed
    query = exp.select(exp.Count(this=exp.Star()).as_("n")).from_(f"{CATALOG}.raw.orders")
    query = query.where(exp.column("status").eq(exp.Placeholder(this="status")))
    (paid,) = engine.rows(query, {"status": "paid"})
    assert paid[0] > 0
    with pytest.raises(EngineError) as caught:
        engine.read(f"SELECT no_such_column FROM {CATALOG}.raw.orders")
    assert "no_such_column" in str(caught.value) and "statement:" in (caught.value.hint or "")


def test_the_catalog_url_in_jdbc_form(tmp_path: Path) -> None:
    sqlite = jdbc_catalog(f"sqlite:///{tmp_path}/catalog.db")
    assert sqlite.url.startswith(f"jdbc:sqlite:{tmp_path}/catalog.db?") and not sqlite.properties
    assert "transaction_mode=IMMEDIATE" in sqlite.url
    assert sqlite.driver.name == "sqlite-jdbc"
    pg = jdbc_catalog("postgresql+psycopg://hw:s%40cret@db.internal:5433/catalog?sslmode=require")
    assert pg.url == "jdbc:postgresql://db.internal:5433/catalog?sslmode=require"
    assert pg.properties == {"jdbc.user": "hw", "jdbc.password": "s@cret"}
    with pytest.raises(SpecError, match="mysql"):
        jdbc_catalog("mysql://x/y")
    with pytest.raises(SpecError, match="in-memory"):
        jdbc_catalog("sqlite://")


def test_quantiles_of_dates_and_moments(landed: tuple[Stores, SparkEngine]) -> None:
    _, engine = landed
    for kind in ("date", "timestamp"):
        start = exp.cast(exp.Literal.string("2026-01-01"), "date")
        days = exp.cast(exp.func("date_add", start, exp.cast(exp.column("id"), "int")), kind)
        rows = exp.select(days.as_("d")).from_(exp.func("range", exp.Literal.number(11)))
        median = engine.quantiles(exp.column("d"), [0.5], moment=True)
        (found,) = engine.rows(exp.select(median.as_("q")).from_(rows.subquery("_days")))
        assert found[0] == [1767657600000000.0], kind  # 2026-01-06, in microseconds


def test_two_projects_in_one_process_each_see_their_own_catalog(
    landed: tuple[Stores, SparkEngine], tmp_path: Path
) -> None:
    """One Spark context a process, a session of its own per project: opening a second
    project's engine while the first is open neither fails nor shows it the first's tables."""
    stores, first = landed
    other = Stores.open(load_project(_fresh(tmp_path)))
    other.lake.prepare()  # as opening a Spark project's stores does
    try:
        with spark(other.catalog.url, other.lake.warehouse) as second:
            assert second.session.sparkContext is first.session.sparkContext  # no new JVM
            second.execute(f"CREATE NAMESPACE IF NOT EXISTS {CATALOG}.only_here")
            second.execute(f"CREATE TABLE {CATALOG}.only_here.t USING iceberg AS SELECT 1 AS x")
            assert second.rows(f"SELECT x FROM {CATALOG}.only_here.t") == [(1,)]
            assert other.lake.table("only_here.t") is not None
            assert stores.lake.table("only_here.t") is None
            with pytest.raises(EngineError, match="only_here"):
                first.rows(f"SELECT x FROM {CATALOG}.only_here.t")
            # and the first still reads its own lake
            assert first.row_counts([f"{CATALOG}.raw.orders"])
    finally:
        other.close()


def _fresh(root: Path) -> Path:
    (root / "headwater.yml").write_text("name: other\n")
    return root
