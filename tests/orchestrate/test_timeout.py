"""A build that runs past its `timeout:` is stopped: its statement interrupted, nothing
published, the error says which timeout; what does not read it goes on."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from headwater.orchestrate import Stores, run
from headwater.project import load_project

NOW = datetime(2026, 11, 1, tzinfo=UTC)
# minutes of work for DuckDB (a cross join of ten billion rows), no data needed
SLOW = "select count(*) as n from range(100000) a, range(100000) b where a.range + b.range < 0\n"


def project(root: Path, header: str) -> Path:
    (root / "models" / "marts").mkdir(parents=True)
    (root / "headwater.yml").write_text("name: t\ndefaults: {timeout: 30m}\n")
    (root / "models" / "marts" / "slow.sql").write_text(f"/* headwater\n{header}\n*/\n{SLOW}")
    (root / "models" / "marts" / "quick.sql").write_text("select 1 as one\n")
    (root / "models" / "marts" / "after.sql").write_text("select n from marts.slow\n")
    return root


def build(root: Path) -> object:
    loaded = load_project(root)
    stores = Stores.open(loaded)
    try:
        return run(loaded, stores, now=NOW, stages=("build",))
    finally:
        stores.close()


@pytest.mark.parametrize("kind", ["table", "incremental_by_key"])
def test_a_build_past_its_timeout_is_stopped_and_publishes_nothing(
    tmp_path: Path, kind: str
) -> None:
    header = "timeout: 1s" + (
        "" if kind == "table" else "\nkind: incremental_by_key\nunique_key: [n]\nupdated_column: n"
    )
    root = project(tmp_path, header)
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(build(root)), daemon=True)
    worker.start()
    worker.join(timeout=300)  # without the timeout the build would still be running
    assert done, "the build was not stopped"
    report = done[0]
    slow = report.models["marts.slow"]  # type: ignore[attr-defined]
    assert slow.status.value == "failed"
    assert "marts.slow ran past its timeout (1s) and was stopped; nothing was published" in (
        slow.error or ""
    )
    assert "slow.sql" in slow.error
    assert report.models["marts.after"].status.value == "skipped"  # type: ignore[attr-defined]
    assert report.models["marts.quick"].status.value == "built"  # type: ignore[attr-defined]
    stores = Stores.open(load_project(root))
    try:
        assert "marts.slow" not in stores.engine.objects()
        assert stores.engine.rows("select one from marts.quick") == [(1,)]
    finally:
        stores.close()


def test_a_bad_timeout_names_the_model_file(tmp_path: Path) -> None:
    from headwater.errors import SpecError

    root = project(tmp_path, "timeout: forever")
    with pytest.raises(SpecError, match=r"slow\.sql.*timeout"):
        load_project(root)


def test_a_landing_past_its_timeout_stops_between_pages_and_commits_nothing(
    tmp_path: Path,
) -> None:
    from tests.badinput.harness import hw, write
    from tests.httpapi import Api

    records = [{"id": i} for i in range(30)]
    contract = (
        "source: api.items\nschema_version: '1'\ndelivery: batch\nprivacy_level: internal\n"
        "timeout: 1s\nretries: 3\n"
        "connector:\n  kind: http\n  url: {url}/cursor/orders\n  records: data\n"
        "  pagination: {{kind: cursor, path: meta.next, param: cursor}}\n"
        "columns:\n  - {{name: id, type: bigint}}\n"
    )
    with Api(records, page_size=3) as api:
        api.stall(0.4, times=10)  # each page slow, none failing: only the timeout stops it
        write(tmp_path, "headwater.yml", "name: t\n")
        write(tmp_path, "contracts/items.yml", contract.format(url=api.url))
        outcome = hw(tmp_path, "ingest")
        pages = len([r for r in api.requests if r.listing])
    flat = " ".join(outcome.output.split())
    assert outcome.code == 1, outcome
    assert "the landing ran past its timeout after" in flat and "nothing was committed" in flat
    assert pages < 10  # it stopped asking for pages; a timeout is not retried
    stores = Stores.open(load_project(tmp_path))
    try:
        assert stores.lake.snapshots("raw.items") == []  # nothing landed
    finally:
        stores.close()
