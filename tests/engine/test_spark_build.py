"""`headwater run` of the example project with `engine: spark` equals the same run on DuckDB,
model by model, row by row (issue #21).

Two copies of the project run from the same files at the same moment: one on the embedded
default, one with `engine: spark` in headwater.yml (a local session; ingestion lands through
Python either way, the contracts' rules and every model run on Spark). Documented differences
only: Spark's timestamps come back without a time zone (they are UTC, the session's zone),
and a sum of doubles may differ in its last bits (the order of the additions)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from headwater.engine.base import TOP
from headwater.engine.spark import WAREHOUSE, SparkEngine
from headwater.orchestrate import RunReport, Stores, run
from headwater.project import Project, load_project
from tests.conftest import NOW
from tests.spark import require, rows_compared

pytestmark = pytest.mark.spark

Ran = tuple[Project, Stores, RunReport]


def _ran(root: Path) -> Iterator[Ran]:
    project = load_project(root)
    stores = Stores.open(project)
    try:
        yield project, stores, run(project, stores, now=NOW)
    finally:
        stores.close()


@pytest.fixture(scope="module")
def on_duckdb(shop_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    root = tmp_path_factory.mktemp("on_duckdb") / "shop"
    shutil.copytree(shop_template, root)
    yield from _ran(root)


@pytest.fixture(scope="module")
def on_spark(shop_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    require()
    root = tmp_path_factory.mktemp("on_spark") / "shop"
    shutil.copytree(shop_template, root)
    settings = root / "headwater.yml"
    kept = [line for line in settings.read_text().splitlines() if not line.startswith("engine:")]
    settings.write_text("\n".join([*kept, "engine: spark", "spark: {master: 'local[2]'}", ""]))
    yield from _ran(root)


def test_the_run_on_spark_lands_builds_and_judges_as_on_duckdb(
    on_duckdb: Ran, on_spark: Ran
) -> None:
    project, _, spark_run = on_spark
    _, _, duckdb_run = on_duckdb
    assert isinstance(on_spark[1].engine, SparkEngine)
    assert spark_run.ok, spark_run.summary()
    assert {m.name: m.status.value for m in spark_run.models.values()} == dict.fromkeys(
        project.models, "built"
    )
    assert [(x.table, x.rows, x.quarantined) for x in spark_run.landed] == [
        (x.table, x.rows, x.quarantined) for x in duckdb_run.landed
    ]
    verdicts = {(c.target, c.rule.name): (c.passed, c.metric) for c in duckdb_run.checks}
    assert {(c.target, c.rule.name): (c.passed, c.metric) for c in spark_run.checks} == verdicts


def test_every_model_equals_duckdbs_row_by_row(on_duckdb: Ran, on_spark: Ran) -> None:
    project, spark_stores, _ = on_spark
    duckdb_stores = on_duckdb[1]
    for name in project.models:
        on_spark_rows = spark_stores.engine.read(f"SELECT * FROM {name}").to_pylist()
        on_duckdb_rows = duckdb_stores.engine.read(f"SELECT * FROM {name}").to_pylist()
        assert on_spark_rows, name
        assert rows_compared(on_spark_rows) == rows_compared(on_duckdb_rows), name


def test_versions_are_iceberg_tables_any_iceberg_reader_can_read(on_spark: Ran) -> None:
    from pyiceberg.catalog.sql import SqlCatalog

    _, stores, report = on_spark
    built = report.models["marts.customer_orders"]  # kind: table
    assert built.physical and built.physical.startswith("hw_marts.")
    objects = stores.engine.objects()
    assert objects[built.physical].value == "TABLE"
    assert objects["marts.customer_orders"].value == "VIEW"  # the environment's pointer
    view = report.models["marts.revenue_daily"].physical or ""
    assert objects[view].value == "VIEW"  # kind: view
    warehouse = SqlCatalog(WAREHOUSE, uri=stores.catalog.url, warehouse=stores.lake.warehouse)
    table = warehouse.load_table(built.physical).scan().to_arrow()
    assert table.num_rows == built.rows and table.num_rows > 0  # counted by the write


def test_a_raw_view_is_replaced_only_when_what_it_shows_changed(
    on_spark: Ran, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each raw view carries the snapshot it shows (its comment: a view property on Spark),
    so a build after no landing replaces none, where each would be a commit of the catalog."""
    from sqlglot import exp

    from headwater.engine.base import ObjectKind
    from headwater.orchestrate.raw import refresh_raw_views

    project, stores, _ = on_spark
    engine = stores.engine
    stored = engine.stored("raw.orders")
    assert stored is not None and stored.kind is ObjectKind.VIEW
    assert (stored.comment or "").startswith(stores.lake.version("raw.orders") or "?")
    assert engine.stored("raw.no_such_table") is None
    sent: list[str] = []
    executing = engine.execute

    def recorded(statement: Any, params: Any = None) -> Any:
        sent.append(engine.render(statement))
        return executing(statement, params)

    monkeypatch.setattr(engine, "execute", recorded)
    assert refresh_raw_views(project, stores) == {}
    assert [s for s in sent if "VIEW" in s.upper()] == []  # nothing replaced
    # a view whose comment names another snapshot is made again, in place
    stale = exp.Comment(
        this=exp.to_table("raw.orders"), kind="VIEW", expression=exp.Literal.string("stale")
    )
    executing(stale)
    assert (engine.stored("raw.orders") or stored).comment == "stale"
    refresh_raw_views(project, stores)
    assert any(s.startswith("CREATE OR REPLACE VIEW raw.orders ") for s in sent), sent
    assert engine.stored("raw.orders") == stored


def test_every_versions_profile_equals_duckdbs(on_duckdb: Ran, on_spark: Ran) -> None:
    """Spark measures a version as it writes it (engine/spark_measure.py); DuckDB scans it and
    reads its own statistics: the same counts, bounds and means, distinct counts within the
    error of two HyperLogLogs, quantiles of the same values, the same most frequent values."""
    from headwater.quality.profile import TableProfile

    project, spark_stores, _ = on_spark
    duckdb_stores = on_duckdb[1]

    def latest(stores: Stores, model: str) -> TableProfile:
        found = [p for p in stores.catalog.profile_history(model) if p.kind == "version"]
        assert found, model
        return TableProfile.from_json(found[-1].rows, found[-1].columns)

    def plain(value: object) -> object:  # Spark's instants are UTC, DuckDB's naive
        return value.removesuffix("+00:00") if isinstance(value, str) else value

    compared = few = 0
    for model in project.models:
        if project.models[model].config.kind.value in ("view", "ephemeral"):
            continue
        on_spark, on_duckdb = latest(spark_stores, model), latest(duckdb_stores, model)
        assert on_spark.rows == on_duckdb.rows, model
        assert on_spark.columns.keys() == on_duckdb.columns.keys(), model
        for name, expected in on_duckdb.columns.items():
            got, where = on_spark.columns[name], f"{model}.{name}"
            assert (got.kind, got.nulls, got.shown) == (
                expected.kind,
                expected.nulls,
                expected.shown,
            ), where
            assert (plain(got.min), plain(got.max)) == (plain(expected.min), plain(expected.max))
            assert got.mean == pytest.approx(expected.mean), where
            assert got.distinct == pytest.approx(expected.distinct, rel=0.1, abs=2), where
            assert (got.quantiles is None) == (expected.quantiles is None), where
            # the most frequent values: both engines' approx_top_k over every row here; all
            # of them where they are few (else ties, as unique keys, may keep others)
            assert (got.top is None) == (expected.top is None), where
            if expected.top is not None and got.top is not None:
                assert len(got.top) == len(expected.top), where
                if (expected.distinct or 0) <= TOP:
                    assert set(got.top) == set(expected.top), where
                    few += 1
            compared += 1
    assert compared > 20 and few > 3


def test_headwater_sql_queries_the_warehouse_on_spark_read_only(
    on_duckdb: Ran, on_spark: Ran
) -> None:
    import json

    from typer.testing import CliRunner

    from headwater.cli.main import app

    project = on_spark[0]

    def sql(*args: str) -> Any:
        return CliRunner().invoke(
            app, ["sql", "-p", str(project.root), *args], env={"COLUMNS": "200"}
        )

    counted = sql("SELECT COUNT(*) AS n FROM marts.customer_orders", "--format", "json")
    assert counted.exit_code == 0, counted.output
    expected = on_duckdb[1].engine.rows("SELECT COUNT(*) FROM marts.customer_orders")[0][0]
    assert json.loads(counted.stdout) == [{"n": expected}]
    dropped = sql("DROP TABLE marts.customer_orders")
    assert dropped.exit_code != 0 and "--write" in dropped.output
    files, java = "SELECT * FROM parquet.`/etc`", "SELECT reflect('java.util.UUID', 'randomUUID')"
    for reaching in (files, java):
        refused = sql(reaching)
        assert refused.exit_code != 0 and "--allow-files" in refused.output, reaching
    assert on_spark[1].engine.rows("SELECT COUNT(*) FROM marts.customer_orders")[0][0] == expected


def test_a_role_reads_the_same_masked_rows_on_spark_as_on_duckdb(
    on_duckdb: Ran, on_spark: Ran
) -> None:
    """`headwater sql --role`: the row policy, the masks and the restricted column, built
    into the query (govern/guard.py) and run by each engine, give the same rows."""
    import json

    from typer.testing import CliRunner

    from headwater.cli.main import app
    from headwater.cli.sql import run_as_role

    policies = (
        "salt: ${HW_TEST_SALT}\n"  # one salt for both projects: the same hashes
        "masks: {email: email, name: restricted}\n"
        "roles:\n"
        "  analyst:\n"
        "    grants: ['clean.*']\n"
        "    rows: {clean.customers: \"country <> 'DE'\"}\n"
        "  hasher: {grants: ['clean.*'], masks: {tag:email: hash}}\n"
    )
    query = "SELECT * FROM clean.customers ORDER BY customer_id LIMIT 50"
    seen = {}
    for name, ran in (("duckdb", on_duckdb), ("spark", on_spark)):
        root = ran[0].root
        (root / "policies.yml").write_text(policies)
        try:
            for role in ("analyst", "hasher"):
                if name == "spark":  # as a user runs it
                    done = CliRunner().invoke(
                        app,
                        ["sql", "-p", str(root), query, "--role", role, "--format", "json"],
                        env={"COLUMNS": "200", "HW_TEST_SALT": "pepper"},
                    )
                    assert done.exit_code == 0, (role, done.output)
                    seen[name, role] = json.loads(done.stdout)
                else:  # the fixture holds DuckDB's file: the command's steps on its engine
                    with pytest.MonkeyPatch.context() as env:
                        env.setenv("HW_TEST_SALT", "pepper")
                        guarded, _ = run_as_role(load_project(root), ran[1].engine, query, role)
                    rows = ran[1].engine.read(guarded).to_pylist()
                    seen[name, role] = json.loads(json.dumps(rows, default=str))  # as printed
        finally:
            (root / "policies.yml").unlink()
    for role in ("analyst", "hasher"):
        assert seen["spark", role] == seen["duckdb", role], role
    analyst = seen["spark", "analyst"]
    assert analyst and "full_name" not in analyst[0]
    assert all(r["country"] != "DE" and "***" in r["email"] for r in analyst)
