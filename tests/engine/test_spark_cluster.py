"""A real cluster once (issue #21, point 5): a standalone Spark master and two workers on
127.0.0.1, started from pyspark's own scripts and stopped by their PIDs, run the example
project end to end — the same marts as the embedded default. The team setup of the README's
"When one machine is not enough": the catalog on PostgreSQL, the lake on S3 (moto in server
mode), the models on the cluster."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from headwater.engine.spark import SparkEngine
from headwater.orchestrate import Stores
from tests import postgres, s3
from tests.spark import marts_after_a_run, standalone

pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.s3]


def _on_the_cluster(stores: Stores) -> None:
    """The work went to the cluster's two executors, not a local session, over a catalog on
    PostgreSQL and a lake on S3: every version the cluster wrote is in the bucket."""
    assert isinstance(stores.engine, SparkEngine)
    context = stores.engine.session.sparkContext
    assert context.master.startswith("spark://")
    assert context._jsc.sc().getExecutorMemoryStatus().size() - 1 == 2  # not the driver
    assert stores.catalog.url.startswith("postgresql")
    assert stores.lake.warehouse == "s3://team-lake/shop"
    location = stores.engine.rows("SHOW TABLES IN hw_marts")
    assert location, "no version was written"
    table = f"hw_marts.{location[0][1]}"
    files = stores.engine.rows(f"SELECT file_path FROM {table}.files")
    assert files and all(f[0].startswith("s3://team-lake/shop/_warehouse/") for f in files)


def test_a_standalone_cluster_runs_the_example_project_on_postgresql_and_s3(
    shop_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    postgres.require()
    embedded = tmp_path / "embedded"
    shutil.copytree(shop_template, embedded)
    expected = marts_after_a_run(embedded)
    monkeypatch.setenv("LAKE_KEY", "team-key")
    monkeypatch.setenv("LAKE_SECRET", "team-secret")
    with postgres.cluster() as url, s3.server() as endpoint, standalone(workers=2) as master:
        s3.bucket(endpoint, "team-lake")
        clustered = tmp_path / "clustered"
        shutil.copytree(shop_template, clustered)
        settings = clustered / "headwater.yml"
        kept = [
            ln
            for ln in settings.read_text().splitlines()
            if not ln.startswith(("engine:", "catalog:", "lake:"))
        ]
        team = [
            f"catalog: '{url}'",
            "lake: s3://team-lake/shop",
            f"lake_storage: {{endpoint_url: '{endpoint}', key: '${{LAKE_KEY}}', "
            "secret: '${LAKE_SECRET}', region: us-east-1}",
            "engine: spark",
            f"spark: {{master: '{master}', conf: {{spark.executor.memory: 512m, "
            "spark.cores.max: '2'}}",
        ]
        settings.write_text("\n".join([*kept, *team, ""]))
        assert marts_after_a_run(clustered, _on_the_cluster) == expected
