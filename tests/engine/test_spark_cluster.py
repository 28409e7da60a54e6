"""A real cluster once (issue #21, point 5): a standalone Spark master and two workers on
127.0.0.1, started from pyspark's own scripts and stopped by their PIDs, run the example
project end to end — the same marts as the embedded default."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from headwater.engine.spark import SparkEngine
from headwater.orchestrate import Stores, run
from headwater.project import load_project
from tests.conftest import NOW
from tests.spark import rows_compared, standalone

pytestmark = pytest.mark.spark


def _marts(root: Path) -> dict[str, list[dict[str, object]]]:
    project = load_project(root)
    stores = Stores.open(project)
    try:
        report = run(project, stores, now=NOW)
        assert report.ok, report.summary()
        if isinstance(stores.engine, SparkEngine):  # the work went to the cluster's executors
            context = stores.engine.session.sparkContext
            assert context.master.startswith("spark://")
            executors = context._jsc.sc().getExecutorMemoryStatus().size() - 1  # not the driver
            assert executors == 2
        return {
            name: rows_compared(stores.engine.read(f"SELECT * FROM {name}").to_pylist())
            for name in project.models
            if name.startswith("marts.")
        }
    finally:
        stores.close()


def test_a_standalone_cluster_runs_the_example_project(shop_template: Path, tmp_path: Path) -> None:
    embedded = tmp_path / "embedded"
    shutil.copytree(shop_template, embedded)
    expected = _marts(embedded)
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
        assert _marts(clustered) == expected
