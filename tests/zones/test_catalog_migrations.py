"""A catalog made by an earlier release upgrades in place, in order, without loss."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from headwater.errors import StoreError
from headwater.zones.catalog import Catalog, TaskRecord
from headwater.zones.catalog import migrations as migrations_module
from headwater.zones.catalog.migrations import MIGRATIONS, Migration, migrate

FIXTURE = Path(__file__).parent / "fixtures" / "catalog-7d6be1d.sqlite"
NEWEST = MIGRATIONS[-1].version


def _copy(tmp_path: Path) -> str:
    path = tmp_path / "catalog.db"
    shutil.copy(FIXTURE, path)
    return f"sqlite:///{path}"


def _rows(url: str, table: str) -> int:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return int(conn.execute(f"select count(*) from {table}").fetchone()[0])


def _tables(url: str) -> set[str]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}


def test_the_fixture_is_a_catalog_from_before_migrations() -> None:
    tables = _tables(f"sqlite:///{FIXTURE}")
    assert "hw_schema" not in tables and {"hw_runs", "iceberg_tables"} <= tables


def test_a_catalog_of_the_previous_release_is_migrated_and_read_without_loss(
    tmp_path: Path,
) -> None:
    url = _copy(tmp_path)
    before = {t: _rows(url, t) for t in _tables(url)}

    catalog = Catalog(url)
    try:
        assert catalog.schema_version == NEWEST
        # every row is still there, and readable through the catalog
        assert {t: _rows(url, t) for t in before} == before
        runs = catalog.recent_runs()
        assert [r["status"] for r in runs] == ["success", "success"]
        assert len(catalog.run_tasks(runs[0]["run_id"])) == 12
        versions = catalog.model_versions()
        assert len(versions) == 8 and all(v.physical.startswith("hw_") for v in versions.values())
        assert set(catalog.pointers("prod")) == {name for name, _ in versions}
        assert len(catalog.all_intervals()) == 1
        assert catalog.held("raw.orders") == {"b-held": "error rule(s) failed: amount_positive"}
        assert catalog.releases() == {"raw.orders": 1}
        assert len(catalog.check_history(limit=100)) == 20
        assert len(catalog.column_lineage()) == 75
        # and it takes new writes
        run_id = catalog.start_run("test", now=datetime(2026, 12, 5, tzinfo=UTC))
        catalog.record_task(run_id, TaskRecord(task="raw.orders", stage="ingest", status="landed"))
        catalog.end_run(run_id, status="success", summary={}, now=datetime(2026, 12, 5, tzinfo=UTC))
        assert len(catalog.recent_runs()) == 3
    finally:
        catalog.close()
    # the lake's Iceberg tables are untouched
    assert _rows(url, "iceberg_tables") == before["iceberg_tables"]
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        applied = conn.execute("select version, name from hw_schema order by version").fetchall()
    assert [v for v, _ in applied] == [m.version for m in MIGRATIONS]


def test_opening_a_migrated_catalog_again_changes_nothing(tmp_path: Path) -> None:
    url = _copy(tmp_path)
    Catalog(url).close()
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        first = conn.execute("select * from hw_schema").fetchall()
    Catalog(url).close()
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        assert conn.execute("select * from hw_schema").fetchall() == first


def test_a_fresh_catalog_starts_at_the_newest_version(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        assert catalog.schema_version == NEWEST
        assert catalog.recent_runs() == []
    finally:
        catalog.close()


def test_later_migrations_apply_in_order_once_each(tmp_path: Path) -> None:
    url = _copy(tmp_path)
    order: list[str] = []

    def add_note(conn: sa.Connection) -> None:
        order.append("note")
        conn.exec_driver_sql("ALTER TABLE hw_runs ADD COLUMN note TEXT")

    def fill_note(conn: sa.Connection) -> None:
        order.append("fill")
        conn.exec_driver_sql("UPDATE hw_runs SET note = 'migrated'")

    steps = [*MIGRATIONS, Migration(NEWEST + 1, "note", add_note)]
    steps.append(Migration(NEWEST + 2, "fill", fill_note))
    engine = sa.create_engine(url)
    try:
        assert migrate(engine, steps) == NEWEST + 2
        assert migrate(engine, steps) == NEWEST + 2  # nothing left to apply
        with engine.connect() as conn:
            notes = {r[0] for r in conn.exec_driver_sql("select note from hw_runs")}
    finally:
        engine.dispose()
    assert order == ["note", "fill"] and notes == {"migrated"}


def test_a_failing_migration_leaves_the_catalog_as_it_was(tmp_path: Path) -> None:
    url = _copy(tmp_path)
    Catalog(url).close()

    def broken(conn: sa.Connection) -> None:
        conn.exec_driver_sql("ALTER TABLE hw_runs ADD COLUMN half TEXT")
        raise RuntimeError("a bug in a migration")

    engine = sa.create_engine(url)
    try:
        with pytest.raises(RuntimeError):
            migrate(engine, [*MIGRATIONS, Migration(NEWEST + 1, "broken", broken)])
        assert migrations_module._version(engine) == NEWEST
    finally:
        engine.dispose()
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:  # its DDL rolled back too
        assert "half" not in [r[1] for r in conn.execute("pragma table_info(hw_runs)")]


def test_a_catalog_from_a_newer_headwater_is_refused_with_what_to_do(tmp_path: Path) -> None:
    url = _copy(tmp_path)
    Catalog(url).close()
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        conn.execute("insert into hw_schema values (999, 'from the future', '2030-01-01')")
    with pytest.raises(StoreError) as caught:
        Catalog(url)
    assert "newer headwater" in caught.value.message and "upgrade" in (caught.value.hint or "")


def _open_once(url: str) -> int:
    catalog = Catalog(url)
    catalog.close()
    return catalog.schema_version


def test_processes_opening_an_old_catalog_at_once_migrate_it_once(tmp_path: Path) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    url = _copy(tmp_path)
    # separate processes, as several `headwater` commands started together: the first to
    # switch the old file to WAL needs it to itself, the others wait rather than fail
    with ProcessPoolExecutor(6, mp_context=multiprocessing.get_context("fork")) as pool:
        versions = list(pool.map(_open_once, [url] * 6))
    assert versions == [NEWEST] * 6
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        applied = [v for (v,) in conn.execute("select version from hw_schema")]
    assert applied == [m.version for m in MIGRATIONS]


def test_a_table_an_earlier_build_made_with_fewer_columns_gets_them(tmp_path: Path) -> None:
    url = _copy(tmp_path)
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        conn.execute("alter table hw_tasks drop column quarantined")
        conn.execute("alter table hw_check_results drop column samples")
        tasks = conn.execute("select count(*) from hw_tasks").fetchone()[0]

    catalog = Catalog(url)
    try:
        run_id = catalog.recent_runs()[0]["run_id"]
        assert len(catalog.run_tasks(run_id)) == 12  # the rows there before, readable
        catalog.record_task(
            run_id, TaskRecord(task="m", stage="build", status="built", quarantined=3)
        )
    finally:
        catalog.close()
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        quarantined = [q for (q,) in conn.execute("select quarantined from hw_tasks")]
        columns = {r[1] for r in conn.execute("pragma table_info(hw_check_results)")}
    assert quarantined.count(None) == tasks and 3 in quarantined
    assert "samples" in columns


def test_a_table_lacking_a_required_column_is_refused_by_name(tmp_path: Path) -> None:
    url = _copy(tmp_path)
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        conn.execute("alter table hw_env_pointers drop column updated_at")
    with pytest.raises(StoreError) as caught:
        Catalog(url)
    assert "hw_env_pointers" in caught.value.message and "updated_at" in caught.value.message
    assert "move it aside" in (caught.value.hint or "")
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:  # nothing was applied
        assert "hw_schema" not in {
            r[0] for r in conn.execute("select name from sqlite_master where type='table'")
        }
