"""The team setup: the project's catalog on PostgreSQL, shared with Spark through Iceberg's JDBC
catalog (issue #21, point 2): the example project runs end to end and equals the embedded
default's marts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests import postgres
from tests.spark import marts_after_a_run, require

pytestmark = [pytest.mark.spark, pytest.mark.postgres]


def test_spark_shares_a_postgresql_catalog(shop_template: Path, tmp_path: Path) -> None:
    require()
    postgres.require()
    embedded = tmp_path / "embedded"
    shutil.copytree(shop_template, embedded)
    expected = marts_after_a_run(embedded)
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
        assert marts_after_a_run(team) == expected
