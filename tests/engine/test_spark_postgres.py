"""The team setup: the project's catalog on PostgreSQL, shared with Spark through Iceberg's JDBC
catalog (issue #21, point 2): the example project runs end to end and equals the embedded
default's marts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from headwater.orchestrate import Stores, run
from headwater.project import load_project
from tests import postgres
from tests.conftest import NOW
from tests.spark import require, rows_compared

pytestmark = [pytest.mark.spark, pytest.mark.postgres]


def _marts(root: Path) -> dict[str, list[dict[str, object]]]:
    project = load_project(root)
    stores = Stores.open(project)
    try:
        report = run(project, stores, now=NOW)
        assert report.ok, report.summary()
        return {
            name: rows_compared(stores.engine.read(f"SELECT * FROM {name}").to_pylist())
            for name in project.models
            if name.startswith("marts.")
        }
    finally:
        stores.close()


def test_spark_shares_a_postgresql_catalog(shop_template: Path, tmp_path: Path) -> None:
    require()
    postgres.require()
    embedded = tmp_path / "embedded"
    shutil.copytree(shop_template, embedded)
    expected = _marts(embedded)
    with postgres.cluster() as url:
        team = tmp_path / "team"
        shutil.copytree(shop_template, team)
        settings = team / "headwater.yml"
        kept = [
            line
            for line in settings.read_text().splitlines()
            if not line.startswith(("engine:", "catalog:"))
        ]
        extra = [f"catalog: '{url}'", "engine: spark", "spark: {master: 'local[2]'}", ""]
        settings.write_text("\n".join([*kept, *extra]))
        assert _marts(team) == expected
