"""What a Spark write's profile reads of the data files it committed, with Arrow, where the
lake is: text's top values (engine/spark_observe.py::top_values) from a lake on S3."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from headwater.engine.spark import SparkEngine
from tests import s3

pytestmark = pytest.mark.s3


def test_top_values_are_counted_in_files_on_an_s3_lake() -> None:
    with s3.server() as endpoint:
        s3.bucket(endpoint, "lake")
        store = s3.filesystem(endpoint)
        files = []
        for part, values in enumerate((["a"] * 6 + ["b"] * 3 + [None], ["a", "c", "b", "a"])):
            key = f"lake/shop/_warehouse/m/t/data/{part}.parquet"
            with store.open(key, "wb") as out:
                pq.write_table(pa.table({"status": values}), out)
            files.append((f"s3://{key}", len(values)))
        io = {
            "s3.endpoint": endpoint,
            "s3.access-key-id": "testing",
            "s3.secret-access-key": "testing",
            "client.region": "us-east-1",
            "s3.path-style-access": "true",
            "s3.force-virtual-addressing": "false",
        }
        engine = SparkEngine(session=None, io=io)  # type: ignore[arg-type]  # no Spark needed
        assert engine._top_values(files, ["status"], seed=7) == {"status": ("a", "b", "c")}
        # files it cannot read: no top values (the profile then counts them with a query)
        gone = [(f"s3://no-such-bucket/{i}.parquet", 1) for i in range(2)]
        assert engine._top_values(gone, ["status"], seed=7) == {}
