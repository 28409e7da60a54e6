"""What a Spark write's profile reads of the data files it committed, where the lake is
(engine/spark_measure.py::profile_files): files on S3, read through Arrow's S3 file system
with the lake's settings; local files, by DuckDB's own reader unless their path would be
read as a pattern."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from headwater.engine.base import QUANTILES, ColumnStats
from headwater.engine.spark import SparkEngine
from headwater.engine.spark_measure import Written
from tests import s3


@pytest.mark.s3
def test_a_version_on_an_s3_lake_is_profiled_from_its_files() -> None:
    with s3.server() as endpoint:
        s3.bucket(endpoint, "lake")
        store = s3.filesystem(endpoint)
        files = []
        parts = (
            {"status": ["a"] * 6 + ["b"] * 3 + [None], "n": list(range(10))},
            {"status": ["a", "c", "b", "a"], "n": [10, 11, 12, None]},
        )
        for part, columns in enumerate(parts):
            key = f"lake/shop/_warehouse/m/t/data/{part}.parquet"
            with store.open(key, "wb") as out:
                pq.write_table(pa.table(columns), out)
            files.append((f"s3://{key}", store.size(key)))
        io = {
            "s3.endpoint": endpoint,
            "s3.access-key-id": "testing",
            "s3.secret-access-key": "testing",
            "client.region": "us-east-1",
            "s3.path-style-access": "true",
            "s3.force-virtual-addressing": "false",
        }
        engine = SparkEngine(session=None, io=io)  # type: ignore[arg-type]  # no Spark needed
        metadata = {
            "status": ColumnStats(may_be_null=True, nulls=1),
            "n": ColumnStats(may_be_null=True, lower=0, upper=12, nulls=1),
        }
        kinds = {"status": "text", "n": "number"}
        try:
            found = engine._profiled(Written(14, metadata, kinds, files))
            assert found["status"].top == ("a", "b", "c")
            assert (found["status"].distinct, found["status"].nulls) == (3, 1)
            assert found["n"].mean == pytest.approx(6.0)
            assert (found["n"].distinct, found["n"].upper) == (13, 12)
            assert found["n"].quantiles is not None and len(found["n"].quantiles) > 0
            # files it cannot read: what the metadata said (the profile then scans)
            gone = [(f"s3://no-such-bucket/{i}.parquet", 1) for i in range(2)]
            assert engine._profiled(Written(14, metadata, kinds, gone)) == metadata
        finally:
            engine._local.close()


def test_local_files_are_profiled_whatever_their_path(tmp_path: Path) -> None:
    """A lake in a folder whose name DuckDB's reader would take for a pattern (`[`) is read
    through Arrow; the sketches are drawn from about SAMPLE rows, the rest over every row."""
    import duckdb
    import pyarrow.fs as pafs

    from headwater.engine.base import SAMPLE
    from headwater.engine.spark_measure import profile_files

    kinds = {"n": "number", "status": "text", "flag": "bool"}
    rows = 3 * SAMPLE
    for folder in ("plain", "odd [1] *"):
        data = tmp_path / folder
        data.mkdir()
        files = []
        for part in range(3):
            path = data / f"{part}.parquet"
            numbers = list(range(part * SAMPLE, (part + 1) * SAMPLE))
            pq.write_table(
                pa.table(
                    {
                        "n": numbers,
                        "status": ["a" if n % 3 else "b" for n in numbers],
                        "flag": [n % 4 == 0 for n in numbers],
                    }
                ),
                path,
            )
            files.append(str(path))
        with duckdb.connect() as connection:
            found = profile_files(files, kinds, rows, connection, pafs.LocalFileSystem())
        assert found["n"].mean == pytest.approx((rows - 1) / 2), folder  # every row
        assert found["n"].distinct == pytest.approx(rows, rel=0.05), folder
        median = dict(zip(QUANTILES, found["n"].quantiles or (), strict=True))[0.5]
        assert median == pytest.approx(rows / 2, rel=0.02), folder  # drawn from every file
        assert found["status"].top == ("a", "b") and found["flag"].top == (False, True), folder
