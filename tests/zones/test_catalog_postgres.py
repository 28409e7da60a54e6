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
