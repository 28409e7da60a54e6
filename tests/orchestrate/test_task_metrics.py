"""Each task of a run records what it read, what it wrote and how long it waited: the
history `headwater metrics` and the anomaly rules read."""

from __future__ import annotations

from headwater.orchestrate.report import RunReport
from headwater.orchestrate.stores import Stores
from headwater.project import Project


def test_an_ingest_records_records_read_and_bytes_written(
    built_shop: tuple[Project, Stores, RunReport],
) -> None:
    _project, stores, report = built_shop
    tasks = {t["task"]: t for t in stores.catalog.run_tasks(report.run_id)}
    for landed in report.landed:
        task = tasks[landed.table]
        assert task["rows_in"] == landed.rows + landed.quarantined + landed.skipped
        table = stores.lake.table(landed.table)
        assert table is not None
        files = sum(f.file.file_size_in_bytes for f in table.scan().plan_files())
        # one batch per table so far: what its commit added is all the table holds
        assert task["bytes"] == files > 0
        assert task["queued_s"] is not None


def test_a_build_records_the_rows_of_what_it_read(
    built_shop: tuple[Project, Stores, RunReport],
) -> None:
    project, stores, report = built_shop
    tasks = {t["task"]: t for t in stores.catalog.run_tasks(report.run_id)}
    rows = {t: r["rows"] for t, r in tasks.items()}
    checked = 0
    for name, model in project.models.items():
        if tasks.get(name, {}).get("status") != "built":
            continue
        parents = [rows.get(d) for d in model.depends_on]
        if None in parents:
            continue  # a view's rows are not counted
        assert tasks[name]["rows_in"] == sum(p for p in parents if p is not None), name
        checked += 1
    assert checked >= 5
