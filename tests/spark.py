"""A real Spark session for tests: pyspark's own local JVM (`local[2]`), over a project's
catalog and lake. Marked `spark`; without pyspark or Java the test is skipped, except under
CI=true, where `.ci/run` installs both and their absence fails it. The jars come from Maven
Central into `$HEADWATER_CACHE/jars` through headwater's own resolver (engine/maven.py)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.engine.spark import SparkEngine, SparkOptions

if TYPE_CHECKING:
    from headwater.orchestrate import Stores


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    return value


def rows_compared(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` as two engines' results are compared: in one order, with the documented
    differences evened out — Spark's timestamps come back without a time zone (they are UTC),
    and a sum of doubles may differ in its last bits (the order of the additions)."""
    plain = [{k: _plain(v) for k, v in row.items()} for row in rows]
    return sorted(plain, key=lambda r: tuple(repr(v) for v in r.values()))


def marts_after_a_run(
    root: Path, check: Callable[[Stores], None] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Run the project at `root` (as `headwater run` does), `check` its stores, and read
    every mart as the engines' results are compared (`rows_compared`)."""
    from headwater.orchestrate import Stores, run
    from headwater.project import load_project
    from tests.conftest import NOW

    project = load_project(root)
    stores = Stores.open(project)
    try:
        report = run(project, stores, now=NOW)
        assert report.ok, report.summary()
        if check is not None:
            check(stores)
        return {
            name: rows_compared(stores.engine.read(f"SELECT * FROM {name}").to_pylist())
            for name in project.models
            if name.startswith("marts.")
        }
    finally:
        stores.close()


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


@contextmanager
def standalone(workers: int = 2) -> Iterator[str]:
    """A standalone Spark cluster on 127.0.0.1 — a master and `workers` workers of one core
    and 1 GB each, started with pyspark's own `bin/spark-class` and stopped by their PIDs —
    as its master URL (spark://127.0.0.1:<port>)."""
    import signal
    import subprocess
    import tempfile
    import time
    from pathlib import Path

    import pyspark

    from tests.observe.receivers import free_port

    require()
    spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_HOME": str(spark_class.parents[1])}
    started: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="hw-spark-") as scratch:
        logs = Path(scratch)

        def start(name: str, *args: str) -> subprocess.Popen[bytes]:
            log = (logs / f"{name}.log").open("wb")
            process = subprocess.Popen(
                [str(spark_class), *args], env=env, stdout=log, stderr=subprocess.STDOUT
            )
            started.append(process)
            return process

        def wait_for(name: str, text: str) -> None:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if text in (logs / f"{name}.log").read_text(errors="replace"):
                    return
                if started[-1].poll() is not None:
                    break
                time.sleep(0.5)
            raise RuntimeError(f"{name} did not start:\n{(logs / f'{name}.log').read_text()}")

        try:
            start(
                "master",
                "org.apache.spark.deploy.master.Master",
                "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(free_port()),
            )  # fmt: skip
            wait_for("master", "I have been elected leader")
            for i in range(workers):
                start(
                    f"worker{i}",
                    "org.apache.spark.deploy.worker.Worker",
                    url,
                    "--host", "127.0.0.1", "--cores", "1", "--memory", "1g",
                    "--webui-port", str(free_port()), "--work-dir", str(logs / f"work{i}"),
                )  # fmt: skip
                wait_for(f"worker{i}", "Successfully registered with master")
            yield url
        finally:
            for process in reversed(started):  # ours only, by PID
                process.send_signal(signal.SIGTERM)
            for process in reversed(started):
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
