"""A real Spark session for tests: pyspark's own local JVM (`local[2]`), over a project's
catalog and lake. Marked `spark`; without pyspark or Java the test is skipped, except under
CI=true, where `.ci/run` installs both and their absence fails it. The jars come from Maven
Central into `$HEADWATER_CACHE/jars` through headwater's own resolver (engine/maven.py)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from headwater.engine.spark import SparkEngine, SparkOptions


def available() -> bool:
    return shutil.which("java") is not None and importlib.util.find_spec("pyspark") is not None


def require() -> None:
    import pytest

    if available():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("pyspark or java is missing under CI=true (.ci/run installs them)")
    pytest.skip("pyspark / java not installed: no Spark session")


@contextmanager
def spark(catalog_url: str, warehouse: str) -> Iterator[SparkEngine]:
    """A local session over the catalog at `catalog_url` and the lake at `warehouse`, stopped
    after (the JVM stays up for the next session of the same test process)."""
    require()
    engine = SparkEngine.open(catalog_url, warehouse, SparkOptions(master="local[2]"))
    try:
        yield engine
    finally:
        engine.close()
