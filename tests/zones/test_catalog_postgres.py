"""The catalog on a real PostgreSQL: the same project runs with `catalog:` set to a URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from headwater.orchestrate import Stores, run
from headwater.project import load_project
from tests import postgres
from tests.conftest import NOW

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    postgres.require()
    pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")
    with postgres.cluster() as url:
        yield url


def test_a_project_runs_with_its_catalog_on_postgresql(shop: Path, pg_url: str) -> None:
    settings = shop / "headwater.yml"
    settings.write_text(
        settings.read_text().replace("catalog: .headwater/catalog.db", f"catalog: {pg_url}"),
        encoding="utf-8",
    )
    project = load_project(shop)
    stores = Stores.open(project)
    try:
        first = run(project, stores, now=NOW)
        second = run(project, stores, now=NOW)
    finally:
        stores.close()
    assert first.ok and second.ok
    assert {m.status for m in second.models.values()} == {"up_to_date"}
    assert not (shop / ".headwater/catalog.db").exists()
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        runs = conn.execute(sa.text("select status from hw_runs")).scalars().all()
        iceberg = (
            conn.execute(sa.text("select table_namespace || '.' || table_name from iceberg_tables"))
            .scalars()
            .all()
        )
    engine.dispose()
    assert runs == ["success", "success"]
    assert {"raw.orders", "raw.orders__quarantine", "raw.events"} <= set(iceberg)


def test_four_processes_opening_an_old_catalog_on_postgresql_migrate_it_once(pg_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from headwater.zones.catalog import Catalog
    from headwater.zones.catalog.migrations import MIGRATIONS
    from headwater.zones.catalog.schema import SCHEMA_TABLES, metadata

    url = _database(pg_url, "old_catalog")
    engine = sa.create_engine(url)
    try:
        # the catalog as it was before migrations: its tables, one with a column fewer
        metadata.create_all(engine, tables=list(SCHEMA_TABLES))
        with engine.begin() as conn:
            conn.exec_driver_sql("alter table hw_tasks drop column quarantined")
            conn.exec_driver_sql(
                "insert into hw_runs values ('r1', 'run', now(), now(), 'success', '{}')"
            )

        def open_once(_: int) -> int:
            catalog = Catalog(url)  # an engine each: its own connections, as a process has
            catalog.close()
            return catalog.schema_version

        with ThreadPoolExecutor(4) as pool:
            versions = list(pool.map(open_once, range(4)))
        with engine.connect() as conn:
            applied = [v for (v,) in conn.exec_driver_sql("select version from hw_schema")]
            runs = conn.exec_driver_sql("select count(*) from hw_runs").scalar()
            columns = {c["name"] for c in sa.inspect(conn).get_columns("hw_tasks")}
    finally:
        engine.dispose()
    assert versions == [MIGRATIONS[-1].version] * 4
    assert applied == [m.version for m in MIGRATIONS]
    assert runs == 1 and "quarantined" in columns


def _database(server: str, name: str) -> str:
    """A new, empty database on the test cluster; its URL."""
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'drop database if exists "{name}"')
            conn.exec_driver_sql(f'create database "{name}"')
    finally:
        admin.dispose()
    return server.rsplit("/", 1)[0] + f"/{name}"
