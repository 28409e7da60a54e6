"""A lake on object storage: `lake: s3://bucket/prefix`, reached as `lake_storage:` says, on a
real S3-compatible server (moto in server mode). The example project runs on it end to end on
the embedded default and equals a run on a local lake; nothing of the lake is written to the
machine; `headwater sql` reads the raw views there and nothing else; a store that cannot be
reached or a bucket that does not exist is named before anything runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import headwater
from headwater.errors import StoreError
from headwater.orchestrate import Stores
from headwater.project import load_project
from tests import s3
from tests.spark import marts_after_a_run, rows_compared

pytestmark = pytest.mark.s3
SECRETS = {"LAKE_KEY": "lake-key-id", "LAKE_SECRET": "lake-secret-value-7"}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with s3.server() as url:
        s3.bucket(url, "lake")
        yield url


def on_s3(root: Path, endpoint: str, lake: str = "s3://lake/shop") -> Path:
    """The project at `root` with its lake on the moto server (keys from the environment)."""
    settings = root / "headwater.yml"
    kept = [ln for ln in settings.read_text().splitlines() if not ln.startswith("lake:")]
    storage = (
        f"lake_storage: {{endpoint_url: '{endpoint}', key: '${{LAKE_KEY}}', "
        "secret: '${LAKE_SECRET}', region: us-east-1}"
    )
    settings.write_text("\n".join([*kept, f"lake: {lake}", storage, ""]))
    return root


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


def _headwater(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "headwater", *args, "-p", str(root)],
        capture_output=True,
        text=True,
        env={**os.environ, **SECRETS},
        timeout=300,
        check=False,
    )


def test_the_example_project_runs_on_an_s3_lake_as_on_a_local_one(
    shop_template: Path, tmp_path: Path, endpoint: str, keys: None
) -> None:
    local = tmp_path / "local"
    shutil.copytree(shop_template, local)
    expected = marts_after_a_run(local)
    shutil.copytree(shop_template, tmp_path / "remote")
    remote = on_s3(tmp_path / "remote", endpoint)

    def lake_is_remote(stores: Stores) -> None:
        assert not stores.lake.local and stores.lake.folder is None
        assert stores.lake.warehouse == "s3://lake/shop"
        raw = stores.lake.files("raw.orders")
        assert raw and all(path.startswith("s3://lake/shop/raw/orders/") for path in raw)

    assert marts_after_a_run(remote, lake_is_remote) == expected
    # the raw zone and the published products are objects in the bucket, none on this machine
    objects = s3.filesystem(endpoint).find("lake/shop")
    assert any(o.startswith("lake/shop/raw/orders/data/") for o in objects)
    assert any(o.startswith("lake/shop/raw/orders/metadata/") for o in objects)
    assert not (remote / ".headwater" / "lake").exists()
    # the data API's reads (here Python's `headwater.read`) come from the bucket too
    served = headwater.read("marts.events_daily", project=remote).to_pylist()
    assert rows_compared(served) == expected["marts.events_daily"]


def test_headwater_sql_reads_the_raw_zone_on_s3_and_nothing_else(
    shop: Path, endpoint: str, keys: None
) -> None:
    root = on_s3(shop, endpoint, "s3://lake/sql")
    assert _headwater(root, "ingest").returncode == 0
    s3.bucket(endpoint, "elsewhere")
    with s3.filesystem(endpoint).open("elsewhere/secret.csv", "w") as out:
        out.write("a\n1\n")

    counted = _headwater(root, "sql", "select count(*) as n from raw.orders", "--format", "json")
    assert counted.returncode == 0, counted.stderr
    assert json.loads(counted.stdout)[0]["n"] > 0
    # the sandbox holds the lake's prefix only: not another bucket, nor a sibling prefix
    for path in ("s3://elsewhere/secret.csv", "s3://lake/sqlx/x.csv"):
        refused = _headwater(root, "sql", f"select * from read_csv('{path}')")
        assert refused.returncode != 0
        assert "Permission Error" in refused.stderr and "--allow-files" in refused.stderr
    allowed = _headwater(
        root, "sql", "select * from read_csv('s3://elsewhere/secret.csv')", "--allow-files"
    )
    assert allowed.returncode == 0, allowed.stderr


def test_a_missing_bucket_is_named_before_anything_runs(
    shop: Path, endpoint: str, keys: None
) -> None:
    root = on_s3(shop, endpoint, "s3://no-such-bucket/shop")
    with pytest.raises(StoreError) as raised:
        Stores.open(load_project(root))
    text = raised.value.render()
    assert "headwater.yml:" in text and "lake" in text
    assert "'no-such-bucket'" in text and "does not exist" in text
    ran = _headwater(root, "run")
    assert ran.returncode != 0 and "Traceback" not in ran.stderr
    assert "no-such-bucket" in ran.stderr


def test_an_object_store_that_does_not_answer_is_named_and_no_key_is_shown(
    shop: Path, keys: None
) -> None:
    with s3.server() as gone:
        pass  # its port is free again: nothing listens there
    root = on_s3(shop, gone)
    ran = _headwater(root, "run")
    assert ran.returncode != 0 and "Traceback" not in ran.stderr
    assert "cannot reach the lake s3://lake/shop" in ran.stderr
    assert "lake_storage" in ran.stderr  # what to check
    assert all(value not in ran.stderr for value in SECRETS.values())


def test_a_lake_storage_setting_that_does_not_exist_is_refused_with_a_suggestion(
    shop: Path, endpoint: str
) -> None:
    settings = shop / "headwater.yml"
    settings.write_text(settings.read_text() + f"lake_storage: {{endpoint: '{endpoint}'}}\n")
    ran = _headwater(shop, "dag")
    assert ran.returncode != 0
    assert "endpoint_url" in ran.stderr  # did you mean
