"""`load:` says what a batch means — append, snapshot (a full copy) or merge (new versions by
key). Raw stays append-only in every mode; only what `raw.<name>` shows differs."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from tests.badinput.harness import SETTINGS, assert_clean_error, hw, write

CUSTOMERS = """\
source: crm.customers
schema_version: "1"
delivery: batch
privacy_level: internal
connector: {{kind: files, path: "data/customers/*.csv", format: csv}}
primary_key: [customer_id]
watermark: updated_at
{load}
columns:
  - {{name: customer_id, type: bigint, nullable: false}}
  - {{name: tier, type: varchar}}
  - {{name: updated_at, type: timestamp}}
"""


def _project(root: Path, load: str) -> Path:
    write(root, "headwater.yml", SETTINGS)
    write(root, "contracts/customers.yml", CUSTOMERS.format(load=load))
    return root


def _csv(root: Path, name: str, *rows: str, mtime: int | None = None) -> None:
    path = write(root, f"data/customers/{name}", "customer_id,tier,updated_at\n" + "".join(rows))
    if mtime is not None:  # a distinct mtime: an edit within the clock's tick is still a change
        os.utime(path, ns=(mtime, mtime))


def _rows(root: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(root / ".headwater" / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def _ingest(root: Path) -> str:
    outcome = hw(root, "ingest")
    assert outcome.code == 0, outcome
    return " ".join(outcome.output.split())


def test_a_snapshot_shows_the_latest_copy_and_keeps_every_earlier_one(tmp_path: Path) -> None:
    root = _project(tmp_path, "load: snapshot")
    _csv(root, "a.csv", "1,gold,2026-01-01\n", "2,silver,2026-01-01\n", mtime=1)
    _csv(root, "b.csv", "3,bronze,2026-01-01\n", mtime=1)
    _ingest(root)
    _csv(root, "a.csv", "1,platinum,2026-02-01\n", "2,silver,2026-01-01\n", mtime=2)
    _ingest(root)

    shown = _rows(root, "select customer_id, tier from raw.customers order by 1")
    assert shown == [(1, "platinum"), (2, "silver"), (3, "bronze")]
    history = _rows(root, "select tier, count(*) from raw.customers__history group by 1 order by 1")
    assert history == [("bronze", 2), ("gold", 1), ("platinum", 1), ("silver", 2)]
    assert len(_rows(root, "select distinct _hw_batch_id from raw.customers__history")) == 2

    assert "snapshot unchanged" in _ingest(root)  # nothing changed: no new batch
    assert len(_rows(root, "select distinct _hw_batch_id from raw.customers__history")) == 2

    (root / "data/customers/b.csv").unlink()  # a file gone from the source is gone from raw
    _ingest(root)
    assert _rows(root, "select customer_id from raw.customers order by 1") == [(1,), (2,)]


def test_a_snapshot_put_back_as_it_was_is_a_new_batch(tmp_path: Path) -> None:
    """An earlier copy's exact files again (same size, same mtime: an object restored) is
    still the newest copy, not a duplicate of the old batch."""
    root = _project(tmp_path, "load: snapshot")
    _csv(root, "a.csv", "1,gold,2026-01-01\n", mtime=1)
    _ingest(root)
    _csv(root, "a.csv", "1,lead,2026-01-01\n", mtime=2)
    _ingest(root)
    _csv(root, "a.csv", "1,gold,2026-01-01\n", mtime=1)
    _ingest(root)
    assert _rows(root, "select tier from raw.customers") == [("gold",)]
    assert len(_rows(root, "select distinct _hw_batch_id from raw.customers__history")) == 3


def test_a_snapshot_quarantine_shows_the_latest_copys_bad_records(tmp_path: Path) -> None:
    root = _project(tmp_path, "load: snapshot")
    _csv(root, "a.csv", "1,gold,2026-01-01\n", "x,silver,2026-01-01\n", mtime=1)
    _ingest(root)
    assert len(_rows(root, "select * from raw.customers__quarantine")) == 1
    _csv(root, "a.csv", "1,gold,2026-01-01\n", "2,silver,2026-01-01\n", mtime=2)
    _ingest(root)
    assert _rows(root, "select * from raw.customers__quarantine") == []
    assert len(_rows(root, "select * from raw.customers")) == 2


def test_merge_keeps_the_newest_version_and_a_late_older_one_does_not_win(tmp_path: Path) -> None:
    root = _project(tmp_path, "load: merge\nnewest_by: updated_at")
    _csv(root, "1.csv", "1,gold,2026-01-01 10:00\n", "2,silver,2026-01-01 10:00\n", mtime=1)
    _ingest(root)
    _csv(root, "2.csv", "1,platinum,2026-01-03 10:00\n", mtime=2)
    _ingest(root)
    _csv(root, "3.csv", "1,lead,2026-01-02 10:00\n", "3,bronze,2026-01-02 10:00\n", mtime=3)
    _ingest(root)  # lands last, but its version of customer 1 is older

    shown = _rows(root, "select customer_id, tier from raw.customers order by 1")
    assert shown == [(1, "platinum"), (2, "silver"), (3, "bronze")]
    assert len(_rows(root, "select * from raw.customers__history")) == 5
    # the view shows the table's columns: nothing of how it ranked the versions
    columns = [c for (c, *_) in _rows(root, "describe raw.customers")]
    history = [c for (c, *_) in _rows(root, "describe raw.customers__history")]
    assert columns == history
    assert columns[:3] == ["customer_id", "tier", "updated_at"]


def test_merge_without_newest_by_keeps_the_version_landed_last(tmp_path: Path) -> None:
    root = _project(tmp_path, "load: merge")
    _csv(root, "1.csv", "1,gold,2026-01-03\n", "1,silver,2026-01-03\n", mtime=1)
    _ingest(root)
    assert _rows(root, "select tier from raw.customers") == [("silver",)]  # later in the file
    _csv(root, "2.csv", "1,lead,2026-01-01\n", mtime=2)
    _ingest(root)
    assert _rows(root, "select tier from raw.customers") == [("lead",)]


def test_append_warns_that_a_changed_file_lands_again(tmp_path: Path) -> None:
    root = _project(tmp_path, "")
    _csv(root, "a.csv", "1,gold,2026-01-01\n", mtime=1)
    _ingest(root)
    _csv(root, "a.csv", "1,platinum,2026-01-01\n", mtime=2)
    output = _ingest(root)
    assert "data/customers/a.csv changed after it landed" in output
    assert "load: snapshot" in output
    assert len(_rows(root, "select * from raw.customers")) == 2  # append: both, as it says


SCD2 = """\
/* headwater
kind: scd2
unique_key: [customer_id]
updated_column: updated_at
*/
select customer_id, tier, updated_at from raw.customers
"""

BY_TIME = """\
/* headwater
kind: incremental_by_time
time_column: day
interval: day
start: 2026-01-01
*/
select cast(updated_at as date) as day, tier, count(*) as customers
from raw.customers
where updated_at >= :start and updated_at < :end
group by 1, 2
"""


@pytest.mark.parametrize("load", ["load: snapshot", "load: merge"])
def test_incremental_models_over_a_snapshot_or_merge_source_equal_a_full_rebuild(
    tmp_path: Path, load: str
) -> None:
    """An scd2 model over a snapshot source is dbt's snapshot, rebuildable from raw history;
    an interval model restates what a new copy changed."""
    root = _project(tmp_path, load)
    write(root, "models/clean/customer_history.sql", SCD2)
    write(root, "models/marts/tiers_daily.sql", BY_TIME)
    _csv(root, "a.csv", "1,gold,2026-01-01\n", "2,silver,2026-01-02\n", mtime=1)
    assert hw(root, "run").code == 0
    _csv(root, "a.csv", "1,platinum,2026-01-05\n", "2,silver,2026-01-02\n", mtime=2)
    assert hw(root, "run").code == 0
    _csv(root, "a.csv", "1,platinum,2026-01-05\n", "2,gold,2026-01-03\n", mtime=3)
    assert hw(root, "run").code == 0

    queries = {
        "history": "select customer_id, tier, valid_from, valid_to from clean.customer_history "
        "order by all",
        "daily": "select * from marts.tiers_daily order by all",
    }
    incremental = {k: _rows(root, q) for k, q in queries.items()}
    assert hw(root, "build", "--full-refresh").code == 0
    rebuilt = {k: _rows(root, q) for k, q in queries.items()}
    assert incremental == rebuilt
    assert [r[:2] for r in incremental["history"]] == [
        (1, "gold"),
        (1, "platinum"),
        (2, "gold"),
        (2, "silver"),
    ]
    days = incremental["daily"]
    assert [(str(d), t, n) for d, t, n in days] == [
        ("2026-01-03", "gold", 1),
        ("2026-01-05", "platinum", 1),
    ]


@pytest.mark.parametrize(
    ("load", "names"),
    [
        ("load: merge\nprimary_key: []", ("contracts/customers.yml", "load", "primary_key")),
        ("newest_by: updated_at", ("contracts/customers.yml", "newest_by", "load: merge")),
        ("load: merge\nnewest_by: updatd_at", ("contracts/customers.yml", "updated_at")),
        ("load: sometimes", ("contracts/customers.yml", "load", "snapshot")),
    ],
)
def test_load_mistakes_are_located(tmp_path: Path, load: str, names: tuple[str, ...]) -> None:
    root = _project(tmp_path, load)
    if "primary_key: []" in load:
        text = (
            (root / "contracts/customers.yml")
            .read_text()
            .replace("primary_key: [customer_id]\n", "")
        )
        (root / "contracts/customers.yml").write_text(text)
    assert_clean_error(hw(root, "dag"), *names)


def test_a_snapshot_refuses_an_incremental_connector(tmp_path: Path) -> None:
    root = _project(tmp_path, "load: snapshot")
    text = (root / "contracts/customers.yml").read_text()
    files = 'connector: {kind: files, path: "data/customers/*.csv", format: csv}'
    sql = "connector:\n  kind: sql\n  url: sqlite:///x.db\n  table: customers\n"
    sql += "  incremental: {column: updated_at}"
    (root / "contracts/customers.yml").write_text(text.replace(files, sql))
    assert_clean_error(hw(root, "dag"), "contracts/customers.yml", "incremental", "load: merge")


def test_a_snapshot_has_no_late_rows(tmp_path: Path) -> None:
    """Every copy holds the old times again: that is not late data."""
    root = _project(tmp_path, "load: snapshot")
    _csv(root, "a.csv", "1,gold,2026-01-01\n", "2,gold,2026-03-01\n", mtime=1)
    _ingest(root)
    _csv(root, "a.csv", "1,lead,2026-01-01\n", "2,gold,2026-03-01\n", mtime=2)
    _ingest(root)
    assert _rows(root, "select count(*) from raw.customers__history where _hw_late") == [(0,)]


def test_back_on_append_the_history_view_goes(tmp_path: Path) -> None:
    root = _project(tmp_path, "load: snapshot")
    _csv(root, "a.csv", "1,gold,2026-01-01\n", mtime=1)
    _ingest(root)
    assert _rows(root, "select count(*) from raw.customers__history") == [(1,)]
    _project(tmp_path, "")
    _ingest(root)
    shown = _rows(
        root,
        "select view_name from duckdb_views() where schema_name = 'raw' union all "
        "select table_name from duckdb_tables() where schema_name = 'raw' order by 1",
    )
    assert shown == [("customers",), ("customers__quarantine",)]
