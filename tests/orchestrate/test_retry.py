"""A task is tried again on an error a retry may fix, as `defaults.retries` and
`defaults.timeout` allow, and never on any other."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from headwater.errors import SourceError, SpecError, TransientEngineError, TransientSourceError
from headwater.orchestrate.retry import Retrying
from tests.badinput.harness import csv_contract, hw, write
from tests.httpapi import Api


class Clock:
    """Time that passes only when the retrier sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def failing(*errors: Exception) -> tuple[list[int], object]:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "landed"

    return calls, attempt


def test_a_retryable_error_is_tried_again_with_growing_waits() -> None:
    clock = Clock()
    calls, attempt = failing(TransientSourceError("503"), TransientSourceError("timeout"))
    draws: list[tuple[float, float]] = []

    def longest(low: float, high: float) -> float:  # the jitter's draw at its top
        draws.append((low, high))
        return high

    retrying = Retrying(3, 3600, sleep=clock.sleep, clock=lambda: clock.now, uniform=longest)
    assert retrying.call(attempt) == "landed"  # type: ignore[arg-type]
    assert len(calls) == 3 and [e.message for e in retrying.failures] == ["503", "timeout"]
    assert retrying.attempts == 3
    # full jitter: each wait is drawn from zero up to a cap that doubles
    assert draws == [(0.0, 1.0), (0.0, 2.0)] and clock.waits == [1.0, 2.0]


def test_waits_are_jittered_between_zero_and_their_cap() -> None:
    clock = Clock()
    rng = random.Random(7)
    _, attempt = failing(*[TransientEngineError(f"conflict #{i}") for i in range(8)])
    retrying = Retrying(
        8, 10**6, first_wait=0.5, sleep=clock.sleep, clock=lambda: clock.now, uniform=rng.uniform
    )
    seen: list[float] = []
    retrying.on_retry = lambda err, wait: seen.append(wait)
    assert retrying.call(attempt) == "landed"  # type: ignore[arg-type]
    caps = [0.5 * 2**n for n in range(8)]
    assert seen == clock.waits and len(seen) == 8
    assert all(0 <= wait <= cap for wait, cap in zip(seen, caps, strict=True))
    assert len({round(w / c, 6) for w, c in zip(seen, caps, strict=True)}) == 8  # not in step


def test_any_other_error_is_not_retried() -> None:
    clock = Clock()
    calls, attempt = failing(SourceError("no such file"), SpecError("bad"))
    with pytest.raises(SourceError):
        Retrying(5, 3600, sleep=clock.sleep, clock=lambda: clock.now).call(attempt)  # type: ignore[arg-type]
    assert len(calls) == 1 and clock.waits == []


def test_retries_and_time_run_out() -> None:
    clock = Clock()
    calls, attempt = failing(*[TransientSourceError(f"#{i}") for i in range(10)])
    with pytest.raises(TransientSourceError, match="#2"):
        Retrying(2, 3600, sleep=clock.sleep, clock=lambda: clock.now).call(attempt)  # type: ignore[arg-type]
    assert len(calls) == 3
    clock = Clock()
    calls, attempt = failing(*[TransientSourceError(f"#{i}") for i in range(10)])
    with pytest.raises(TransientSourceError):  # the next wait would pass the 5 s budget
        Retrying(10, 5, sleep=clock.sleep, clock=lambda: clock.now).call(attempt)  # type: ignore[arg-type]
    assert clock.now <= 5 and len(calls) < 10


CONTRACT = """\
source: shop_api.orders
schema_version: "1"
delivery: batch
privacy_level: internal
connector:
  kind: http
  url: {url}/cursor/orders
  records: data
  pagination: {{kind: cursor, path: meta.next, param: cursor}}
  retries: 0
columns:
  - {{name: id, type: bigint, nullable: false}}
  - {{name: updated_at, type: timestamptz}}
"""
T0 = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.mark.parametrize("retries", [0, 1])
def test_a_run_lands_an_api_that_failed_once_when_the_project_allows_a_retry(
    tmp_path: Path, retries: int
) -> None:
    records = [{"id": i, "updated_at": (T0 + timedelta(hours=i)).isoformat()} for i in range(5)]
    with Api(records) as api:
        api.fail(503, times=1)  # the connector itself retries nothing (retries: 0)
        write(tmp_path, "headwater.yml", f"name: shop\ndefaults: {{retries: {retries}}}\n")
        write(tmp_path, "contracts/orders.yml", CONTRACT.format(url=api.url))
        outcome = hw(tmp_path, "ingest")
    if retries:
        assert outcome.code == 0, outcome
        flat = " ".join(outcome.output.split())
        assert "5 rows" in flat and "landed on attempt 2, after:" in flat and "503" in flat
    else:
        assert outcome.code == 1 and "503" in outcome.output, outcome


def test_a_contract_s_own_retries_win_over_the_project_default(tmp_path: Path) -> None:
    records = [{"id": i, "updated_at": (T0 + timedelta(hours=i)).isoformat()} for i in range(3)]
    with Api(records) as api:
        api.fail(503, times=1)
        write(tmp_path, "headwater.yml", "name: shop\ndefaults: {retries: 0}\n")
        write(tmp_path, "contracts/orders.yml", CONTRACT.format(url=api.url) + "retries: 1\n")
        outcome = hw(tmp_path, "ingest")
    assert outcome.code == 0, outcome
    assert "landed on attempt 2" in " ".join(outcome.output.split())


def test_a_bad_contract_timeout_names_the_field(tmp_path: Path) -> None:
    write(tmp_path, "headwater.yml", "name: shop\n")
    write(
        tmp_path,
        "contracts/orders.yml",
        CONTRACT.format(url="http://127.0.0.1:9") + "timeout: soon\n",
    )
    outcome = hw(tmp_path, "ingest")
    assert outcome.code == 3 and "orders.yml" in outcome.output and "timeout" in outcome.output, (
        outcome
    )


ITEMS = csv_contract("shop.items", id="bigint", v="bigint")
LATEST = """\
/* headwater
kind: incremental_by_key
unique_key: [id]
updated_column: v
*/
select id, v from raw.items
"""


def _items_project(root: Path, retries: int) -> Path:
    write(root, "headwater.yml", f"name: t\ndefaults: {{retries: {retries}, backoff: 10ms}}\n")
    write(root, "contracts/items.yml", ITEMS)
    write(root, "models/marts/latest.sql", LATEST)
    write(root, "data/a.csv", "id,v\n1,1\n2,1\n3,1\n")
    return root


def _run_while_a_writer_holds(root: Path, release_after: int) -> tuple[object, list[object]]:
    """Run with another transaction holding a delete of one of the model's rows (a real DuckDB
    write conflict), rolled back after `release_after` retries (never, if 0)."""
    from headwater.observe import TaskStatus
    from headwater.orchestrate import Stores, run
    from headwater.project import load_project

    project = load_project(root)
    stores = Stores.open(project)
    try:
        run(project, stores, now=T0)
        physical = stores.catalog.pointers("prod")["marts.latest"]
        write(root, "data/b.csv", "id,v\n1,2\n")
        other = stores.engine.cursor()
        other.execute("BEGIN TRANSACTION")
        other.execute(f'DELETE FROM "hw_marts"."{physical.split(".")[-1]}" WHERE id = 1')
        retries: list[object] = []

        def sink(event: object) -> None:
            if getattr(event, "status", None) is TaskStatus.RETRYING:
                retries.append(event)
                if len(retries) == release_after:
                    other.execute("ROLLBACK")

        report = run(project, stores, now=T0 + timedelta(hours=1), sink=sink)
        return report, retries
    finally:
        stores.close()


def test_a_build_failing_on_a_write_conflict_is_retried_until_it_succeeds(
    tmp_path: Path,
) -> None:
    report, retries = _run_while_a_writer_holds(_items_project(tmp_path, retries=3), 2)
    latest = report.models["marts.latest"]  # type: ignore[attr-defined]
    assert latest.status.value == "built" and latest.attempts == 3, latest
    assert len(retries) == 2 and all("onflict" in r.detail["error"] for r in retries)  # type: ignore[attr-defined]
    from headwater.orchestrate import Stores
    from headwater.project import load_project

    stores = Stores.open(load_project(tmp_path))
    try:
        rows = stores.engine.rows("select id, v from marts.latest order by id")
        tasks = stores.catalog.run_tasks(report.run_id)  # type: ignore[attr-defined]
    finally:
        stores.close()
    assert rows == [(1, 2), (2, 1), (3, 1)]
    assert [t["attempts"] for t in tasks if t["task"] == "marts.latest"] == [3]


def test_a_build_out_of_retries_fails_with_the_last_error(tmp_path: Path) -> None:
    report, retries = _run_while_a_writer_holds(_items_project(tmp_path, retries=1), 0)
    latest = report.models["marts.latest"]  # type: ignore[attr-defined]
    assert latest.status.value == "failed" and latest.attempts == 2
    assert len(retries) == 1 and "onflict" in (latest.error or "")


def test_a_permanent_build_error_is_not_retried(tmp_path: Path) -> None:
    write(tmp_path, "headwater.yml", "name: t\ndefaults: {retries: 5, backoff: 10ms}\n")
    write(tmp_path, "models/marts/broken.sql", "select no_such_column from range(3)\n")
    from headwater.orchestrate import Stores, run
    from headwater.project import load_project

    project = load_project(tmp_path)
    stores = Stores.open(project)
    seen: list[object] = []
    try:
        report = run(project, stores, now=T0, sink=seen.append)
    finally:
        stores.close()
    broken = report.models["marts.broken"]
    assert broken.status.value == "failed" and broken.attempts == 1
    assert not [e for e in seen if getattr(e, "status", None) == "retrying"]
