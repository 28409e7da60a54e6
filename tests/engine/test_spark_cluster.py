"""A real cluster once (issue #21, point 5): a standalone Spark master and two workers on
127.0.0.1, started from pyspark's own scripts and stopped by their PIDs, run the example
project end to end — the same marts as the embedded default."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from headwater.engine.spark import SparkEngine
from headwater.orchestrate import Stores
from tests.spark import marts_after_a_run, standalone

pytestmark = pytest.mark.spark


def _on_the_cluster(stores: Stores) -> None:
    """The work went to the cluster's two executors, not a local session."""
    assert isinstance(stores.engine, SparkEngine)
    context = stores.engine.session.sparkContext
    assert context.master.startswith("spark://")
    assert context._jsc.sc().getExecutorMemoryStatus().size() - 1 == 2  # not the driver


def test_a_standalone_cluster_runs_the_example_project(shop_template: Path, tmp_path: Path) -> None:
    embedded = tmp_path / "embedded"
    shutil.copytree(shop_template, embedded)
    expected = marts_after_a_run(embedded)
    with standalone(workers=2) as master:
        clustered = tmp_path / "clustered"
        shutil.copytree(shop_template, clustered)
        settings = clustered / "headwater.yml"
        kept = [ln for ln in settings.read_text().splitlines() if not ln.startswith("engine:")]
        spark = (
            f"spark: {{master: '{master}', conf: {{spark.executor.memory: 512m, "
            "spark.cores.max: '2'}}"
        )
        settings.write_text("\n".join([*kept, "engine: spark", spark, ""]))
        assert marts_after_a_run(clustered, _on_the_cluster) == expected
