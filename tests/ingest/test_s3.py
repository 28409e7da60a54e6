"""Files on object storage: a real S3-compatible server (moto in server mode)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from headwater.contracts import Contract
from headwater.errors import SourceError
from headwater.ingest import ingest
from headwater.zones.lake import Lake
from tests import s3
from tests.ingest.raw import orders_contract, rows

pytestmark = pytest.mark.s3
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
COLUMNS = [
    {"name": "order_id", "type": "bigint", "nullable": False},
    {"name": "amount", "type": "decimal(10,2)"},
    {"name": "note", "type": "varchar"},
]
SECRETS = {"S3_KEY": "testing", "S3_SECRET": "testing"}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    pytest.importorskip("s3fs", reason="the s3 extra is not installed")
    with s3.server() as url:
        yield url


@pytest.fixture
def bucket(endpoint: str, request: pytest.FixtureRequest) -> str:
    name = request.node.name.replace("_", "-")[:40].strip("-").lower()
    s3.bucket(endpoint, name)
    return name


def connector(endpoint: str, path: str) -> dict[str, Any]:
    return {
        "kind": "files",
        "path": path,
        "endpoint_url": endpoint,
        "storage_options": {
            "key": "${S3_KEY}",
            "secret": "${S3_SECRET}",
            "client_kwargs": {"region_name": "us-east-1"},
        },
    }


def contract(endpoint: str, path: str) -> Contract:
    return orders_contract(connector(endpoint, path), columns=COLUMNS)


def test_only_new_objects_land_on_the_second_run(endpoint: str, bucket: str, lake: Lake) -> None:
    fs = s3.filesystem(endpoint)
    fs.pipe(f"{bucket}/orders/a.csv", b"order_id,amount,note\n1,1.50,a\n2,x,b\n")
    fs.pipe(f"{bucket}/orders/b.jsonl", b'{"order_id": 3, "amount": 3}\n')
    spec = contract(endpoint, f"s3://{bucket}/orders/*.csv")
    first = ingest(spec, root=Path("."), lake=lake, now=NOW, environ=SECRETS)
    assert (first.rows, first.quarantined) == (1, 1)
    assert first.files == [f"s3://{bucket}/orders/a.csv"]
    reason, where = rows(lake, "raw.orders__quarantine", "_hw_reason, _hw_source")[0]
    assert (reason, where) == (
        "amount: cannot cast 'x' to DECIMAL(10, 2)",
        f"s3://{bucket}/orders/a.csv record 2",
    )
    assert ingest(spec, root=Path("."), lake=lake, now=NOW, environ=SECRETS).batch_id is None
    fs.pipe(f"{bucket}/orders/c.csv", b"order_id,amount,note\n4,4,c\n")
    # an object rewritten under the same key (new ETag) is new content: it lands again
    fs.pipe(f"{bucket}/orders/a.csv", b"order_id,amount,note\n1,1.50,a\n2,2.00,b\n")
    second = ingest(spec, root=Path("."), lake=lake, now=NOW, environ=SECRETS)
    assert sorted(second.files) == [f"s3://{bucket}/orders/a.csv", f"s3://{bucket}/orders/c.csv"]
    assert second.rows == 3
    assert [r[0] for r in rows(lake, "raw.orders", "order_id")] == [1, 1, 2, 4]


def test_jsonl_and_parquet_objects(endpoint: str, bucket: str, lake: Lake) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs = s3.filesystem(endpoint)
    fs.pipe(f"{bucket}/o/1.jsonl", b'{"order_id": 1, "amount": 1, "note": "x"}\n{bad json\n')
    with fs.open(f"{bucket}/o/2.parquet", "wb") as handle:
        pq.write_table(pa.table({"order_id": [2, 3], "amount": ["2.5", "3"]}), handle)
    spec = contract(endpoint, f"s3://{bucket}/o/*")
    landed = ingest(spec, root=Path("."), lake=lake, now=NOW, environ=SECRETS)
    assert (landed.rows, landed.quarantined) == (3, 1)
    assert landed.reasons == {"malformed JSON: not a JSON object": 1}


def test_a_dead_endpoint_fails_clearly_without_the_secret(
    endpoint: str, bucket: str, lake: Lake
) -> None:
    spec = contract("http://127.0.0.1:9", f"s3://{bucket}/orders/*.csv")
    options = {**spec.connector.storage_options, "config_kwargs": {"retries": {"max_attempts": 1}}}
    spec = spec.model_copy(
        update={"connector": spec.connector.model_copy(update={"storage_options": options})}
    )
    environ = {"S3_KEY": "AKIA-TEST", "S3_SECRET": "very-secret-value"}
    with pytest.raises(SourceError) as caught:
        ingest(spec, root=Path("."), lake=lake, now=NOW, environ=environ)
    text = caught.value.render()
    assert f"cannot list s3://{bucket}/orders/*.csv" in text
    assert "very-secret-value" not in text and "AKIA-TEST" not in text
    assert caught.value.retryable


@pytest.mark.slow
def test_a_1gb_object_lands_with_bounded_memory(endpoint: str, bucket: str, tmp_path: Path) -> None:
    """A 1 GB CSV object lands in a separate process whose memory grows by less than 450 MB
    (under half the object) while it lands: its peak over what it held before, since the
    imports alone hold 150 MB or more and vary with the machine's load and allocator."""
    fs = s3.filesystem(endpoint)
    line = b"%d,%d.25,note-with-some-padding-to-make-rows-wider-0123456789abcdef\n"
    block = b"".join(line % (i, i) for i in range(100_000))
    repeats = (1 << 30) // len(block) + 1
    with fs.open(f"{bucket}/big/orders.csv", "wb", block_size=64 << 20) as handle:
        handle.write(b"order_id,amount,note\n")
        for _ in range(repeats):
            handle.write(block)
    size = fs.info(f"{bucket}/big/orders.csv")["size"]
    assert size >= 1 << 30
    spec = contract(endpoint, f"s3://{bucket}/big/*.csv").model_dump(mode="json", by_alias=True)
    script = textwrap.dedent(
        f"""
        import json
        from datetime import UTC, datetime
        from pathlib import Path
        from headwater.contracts import Contract
        from headwater.ingest import ingest
        from headwater.zones.lake import Lake
        root = Path({str(tmp_path)!r})
        lake = Lake(f"sqlite:///{{root / 'catalog.db'}}", "lake", root)
        spec = Contract.model_validate(json.loads({json.dumps(json.dumps(spec))}))
        import pyarrow, duckdb, pyiceberg.table  # what landing imports, before the baseline
        before = Path("/proc/self/status").read_text()
        base = int(before.split("VmRSS:")[1].split()[0]) // 1024
        landed = ingest(spec, root=root, lake=lake, now=datetime.now(UTC))
        # VmHWM is this process's own peak; ru_maxrss would include the forking parent's
        status = Path("/proc/self/status").read_text()
        peak = int(status.split("VmHWM:")[1].split()[0]) // 1024
        done = {{"rows": landed.rows, "quarantined": landed.quarantined, "peak_mb": peak,
                 "grew_mb": peak - base}}
        print(json.dumps(done))
        """
    )
    env = {**os.environ, **SECRETS}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["rows"] == repeats * 100_000 and result["quarantined"] == 0
    assert result["grew_mb"] < 450, result  # 300 MB measured on an idle machine


def test_compressed_and_broken_objects(endpoint: str, bucket: str, lake: Lake) -> None:
    """A gzip object lands (by extension, or by its first bytes), one not UTF-8 in a record
    quarantines that record, and a truncated one is quarantined whole while the rest lands."""
    import gzip

    fs = s3.filesystem(endpoint)
    body = b"order_id,amount,note\n1,1.50,a\n2,2,b\n"
    fs.pipe(f"{bucket}/orders/a.csv.gz", gzip.compress(body))
    fs.pipe(f"{bucket}/orders/b.csv", gzip.compress(body.replace(b"1,", b"3,", 1)))
    fs.pipe(f"{bucket}/orders/c.csv", b"order_id,amount,note\n5,5,caf\xe9\n6,6,ok\n")
    fs.pipe(f"{bucket}/orders/d.csv.gz", gzip.compress(body)[:30])
    spec = contract(endpoint, f"s3://{bucket}/orders/*")
    landed = ingest(spec, root=Path("."), lake=lake, now=NOW, environ=SECRETS)
    assert (landed.rows, landed.quarantined) == (5, 2)
    assert rows(lake, "raw.orders", "order_id") == [(1,), (2,), (2,), (3,), (6,)]
    bad = dict(rows(lake, "raw.orders__quarantine", "_hw_source, _hw_reason"))
    assert "invalid UTF-8" in bad[f"s3://{bucket}/orders/c.csv record 1"]
    assert "gzip-compressed csv" in bad[f"s3://{bucket}/orders/d.csv.gz"]


def test_a_dead_endpoint_is_tried_twice_per_call_unless_the_user_says_otherwise() -> None:
    """botocore's own five tries inside each of s3fs's made a dead endpoint take 25 s a run."""
    pytest.importorskip("s3fs", reason="the s3 extra is not installed")
    from headwater.contracts.secrets import Secrets
    from headwater.ingest.files import _filesystem

    plain = contract("http://127.0.0.1:9", "s3://bucket/o/*.csv").connector
    ours = {"max_attempts": 5, "mode": "adaptive"}
    theirs = plain.model_copy(
        update={"storage_options": {**plain.storage_options, "config_kwargs": {"retries": ours}}}
    )

    made = _filesystem(plain, Secrets(SECRETS))
    kept = _filesystem(theirs, Secrets(SECRETS))

    assert made.config_kwargs["retries"] == {"max_attempts": 2, "mode": "standard"}
    assert kept.config_kwargs["retries"] == ours
