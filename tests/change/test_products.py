"""Data products: every served model's data is published to the lake before an environment
shows it — one snapshot per data state, written once whichever environment shows it first —
and releases keep serving the products of the data they held."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

import headwater
from headwater.errors import UsageError
from headwater.orchestrate.stores import LakeStores
from headwater.project import load_project
from tests.badinput.harness import hw, write
from tests.change.test_releases import ok, project


def served(root: Path) -> Path:
    project(root)
    write(root, "models/clean/order_log.yml", "serve: true\n")
    write(root, "models/marts/total.yml", "serve: {aggregates: true}\n")
    return root


def products(root: Path) -> list[Any]:
    stores = LakeStores.open(load_project(root))
    try:
        held = stores.catalog.product_tables()
        return sorted((t, sorted(k)) for t, k in held.items())
    finally:
        stores.close()


def warehouse(root: Path, view: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(f"select * from {view} order by all").fetchall()


def rows(table: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(r.values()) for r in table.to_pylist())


def test_a_run_publishes_served_models_only_with_the_data_readers_see(tmp_path: Path) -> None:
    root = served(tmp_path)
    ok(root, "run")
    tables = [t for t, _ in products(root)]
    assert len(tables) == 2
    assert all(
        t.startswith(("products.clean__order_log__", "products.marts__total__")) for t in tables
    )
    for model in ("clean.order_log", "marts.total"):
        assert rows(headwater.read(model, project=root)) == warehouse(root, model)
    with pytest.raises(UsageError, match=r"clean\.orders is not served"):
        headwater.read("clean.orders", project=root)


def test_a_data_refresh_is_a_new_snapshot_and_a_release_keeps_its_own(tmp_path: Path) -> None:
    root = served(tmp_path)
    ok(root, "run")
    first = warehouse(root, "clean.order_log")
    write(root, "data/b.csv", "id,amount\n3,30\n")
    ok(root, "run")  # the append model takes the batch in: same version, new data
    second = warehouse(root, "clean.order_log")
    assert len(second) == 3 and len(first) == 2
    assert rows(headwater.read("clean.order_log", project=root)) == second
    # one product table per version; the refresh added a data state (a snapshot) to it
    [(_, keys)] = [p for p in products(root) if "order_log" in p[0]]
    assert len(keys) == 2
    # release 1 served the first data state, and still does
    assert rows(headwater.read("clean.order_log", project=root, as_of=1)) == first


def test_a_new_version_is_a_new_release_and_the_old_one_stays_readable(tmp_path: Path) -> None:
    root = served(tmp_path)
    ok(root, "run")
    write(root, "models/marts/total.sql", "select sum(amount) * 2 as total from clean.orders\n")
    ok(root, "apply")
    assert rows(headwater.read("marts.total", project=root)) == [(60,)]
    assert rows(headwater.read("marts.total", project=root, as_of=1)) == [(30,)]
    with pytest.raises(UsageError, match="no release 99 of prod"):
        headwater.read("marts.total", project=root, as_of=99)


def test_promoting_serves_the_same_product_without_writing_it_again(tmp_path: Path) -> None:
    root = served(tmp_path)
    ok(root, "run")
    write(root, "models/marts/total.sql", "select sum(amount) * 2 as total from clean.orders\n")
    ok(root, "apply", "--env", "dev")
    before = products(root)
    ok(root, "promote", "dev", "--to", "prod")
    assert products(root) == before
    assert rows(headwater.read("marts.total", project=root)) == [(60,)]
    for model in ("clean.order_log", "marts.total"):
        assert rows(headwater.read(model, project=root)) == rows(
            headwater.read(model, project=root, env="dev")
        )


def test_gc_drops_products_nothing_serves_any_more(tmp_path: Path) -> None:
    root = served(tmp_path)
    write(root, "headwater.yml", "name: t\nreleases: {keep: 1, retention: 0s}\n")
    ok(root, "run")
    write(root, "models/marts/total.sql", "select sum(amount) * 2 as total from clean.orders\n")
    ok(root, "apply")
    old = [t for t, _ in products(root) if "marts__total" in t]
    assert len(old) == 2
    listed = hw(root, "gc")
    assert listed.code == 0 and "1 unserved data product" in " ".join(listed.output.split())
    ok(root, "gc", "--delete")
    left = [t for t, _ in products(root) if "marts__total" in t]
    assert len(left) == 1 and left[0] in old
    assert rows(headwater.read("marts.total", project=root)) == [(60,)]
    lake = root / ".headwater" / "lake" / "products"
    assert sorted(p.name for p in lake.iterdir() if "marts__total" in p.name) == [
        left[0].split(".", 1)[1]
    ]
