"""Incremental ≡ full rebuild, for any arrival sequence (hypothesis).

Events arrive in random batches: in order, out of order, late inside and beyond the watermark,
duplicates redelivered. After every batch one project runs incrementally and a twin project
rebuilds with `full_refresh`; every incremental model must hold the same rows in both.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from headwater.orchestrate import Stores, run
from headwater.orchestrate.stores import LakeStores
from headwater.project import load_project
from headwater.zones import history
from tests.engines import ENGINES, SPARK

T0 = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 1, tzinfo=UTC)
INCREMENTAL = [
    "marts.daily",
    "marts.daily_whole",
    "marts.hourly",
    "marts.positive",
    "marts.latest",
    "marts.history",
    "marts.current",
]

FILES = {
    "headwater.yml": "name: prop\n",
    "contracts/events.yml": """
source: test.events
schema_version: "1"
delivery: batch
watermark: "occurred_at - interval 1 hour"
privacy_level: internal
connector: {kind: files, path: "data/*.jsonl"}
primary_key: [event_id]
columns:
  - {name: event_id, type: varchar, nullable: false}
  - {name: kind, type: varchar}
  - {name: amount, type: integer}
  - {name: occurred_at, type: timestamptz, nullable: false}
""",
    "models/clean/events.sql": """
select event_id, kind, amount, occurred_at
from raw.events
qualify row_number() over (partition by event_id order by _hw_ingested_at, _hw_source) = 1
""",
    "models/marts/daily.sql": """/* headwater
kind: incremental_by_time
time_column: day
batch_size: 2
*/
select date_trunc('day', occurred_at) as day, kind, count(*) as n, sum(amount) as total
from clean.events
where occurred_at >= :start and occurred_at < :end
group by 1, 2
""",
    # no batch_size: its first and full builds write every interval in one statement
    "models/marts/daily_whole.sql": """/* headwater
kind: incremental_by_time
time_column: day
*/
select date_trunc('day', occurred_at) as day, kind, count(*) as n, sum(amount) as total
from clean.events
where occurred_at >= :start and occurred_at < :end
group by 1, 2
""",
    "models/marts/positive.sql": """/* headwater
kind: append
*/
select event_id, kind, amount, occurred_at, _hw_late as late
from raw.events
where amount >= 0
""",
    "models/marts/latest.sql": """/* headwater
kind: incremental_by_key
unique_key: [event_id]
updated_column: occurred_at
deleted_column: deleted
*/
select event_id, kind, amount, occurred_at, amount < 0 as deleted
from raw.events
""",
    "models/marts/current.sql": """/* headwater
kind: incremental_by_key
unique_key: [event_id]
updated_column: occurred_at
deleted_column: deleted
truncated_column: truncated
*/
select case when amount = 0 then null else event_id end as event_id, kind, amount, occurred_at,
       amount < 0 as deleted, amount = 0 as truncated
from raw.events
""",
    "models/marts/history.sql": """/* headwater
kind: scd2
unique_key: [event_id]
updated_column: occurred_at
deleted_column: deleted
*/
select event_id, kind, occurred_at, amount < 0 as deleted
from raw.events
""",
    "models/marts/hourly.sql": """/* headwater
kind: incremental_by_time
time_column: hour
interval: hour
lookback: 3 hours
batch_size: 7
*/
select date_trunc('hour', occurred_at) as hour, count(distinct event_id) as events
from raw.events
where occurred_at >= :start and occurred_at < :end
group by 1
""",
}

event = st.tuples(
    st.integers(0, 40),
    st.sampled_from(["a", "b", "c"]),
    st.integers(-5, 50),
    st.integers(0, 24 * 6),
)
arrivals = st.lists(st.lists(event, min_size=1, max_size=25), min_size=1, max_size=4)


CI = os.environ.get("CI") == "true"


EXAMPLES = int(os.environ.get("HEADWATER_PROPERTY_EXAMPLES", "10"))
# on Spark an example takes about 30 s (each run starts a session's jobs): fewer of them, the
# other engines' examples covering the arrival orders
SPARK_EXAMPLES = max(1, EXAMPLES // 4)
FIRST = [[(0, "a", 22, 31)], [(11, "a", 0, 0)]]  # once found: an empty quarantine table


def _examples(count: int) -> settings:
    """`count` examples, no deadline; in CI a fixed seed and no shrinking."""
    return settings(
        max_examples=count,
        deadline=None,
        derandomize=CI,
        phases=[Phase.explicit, Phase.generate] if CI else list(Phase),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


# every example runs real ingests and builds (about a second each): few examples, and in CI a
# fixed seed and no shrinking, so the suite stays fast and a failure prints its arrival sequence
@pytest.mark.parametrize("engine", ENGINES, indirect=True)
@_examples(EXAMPLES)
@given(arrivals)
@example(FIRST)
def test_incremental_runs_equal_a_full_rebuild(
    engine: str, batches: list[list[tuple[int, str, int, int]]]
) -> None:
    """Every model kind, on every engine (the `engine` fixture)."""
    with tempfile.TemporaryDirectory() as tmp:
        _agree(Path(tmp), batches, "append")


@pytest.mark.parametrize("engine", [SPARK], indirect=True)
@_examples(SPARK_EXAMPLES)
@given(arrivals)
@example(FIRST)
@example([[(1, "a", 10, 0), (2, "a", 20, 0)], [(1, "b", 11, 5), (2, "a", -1, 6)], [(9, "a", 0, 3)]])
def test_incremental_runs_equal_a_full_rebuild_on_spark(
    engine: str, batches: list[list[tuple[int, str, int, int]]]
) -> None:
    """The same property on Spark: updates, deletes, a truncation and late rows among the
    explicit examples, random arrivals besides."""
    with tempfile.TemporaryDirectory() as tmp:
        _agree(Path(tmp), batches, "append")


@pytest.mark.parametrize("load", ["snapshot", "merge"])
@_examples(EXAMPLES // 2)
@given(arrivals)
@example([[(0, "a", 22, 31), (1, "b", 3, 2)], [(1, "a", 0, 0)], [(0, "c", 5, 90)]])
def test_incremental_runs_equal_a_full_rebuild_under_every_load(
    load: str, batches: list[list[tuple[int, str, int, int]]]
) -> None:
    """A snapshot source's every batch is a full copy that replaces the one before (the file
    is rewritten); a merge source's are new versions by key, newest by event time."""
    with tempfile.TemporaryDirectory() as tmp:
        _agree(Path(tmp), batches, load)


@pytest.mark.parametrize("load", ["append", "snapshot", "merge"])
@_examples(max(1, EXAMPLES // 5))
@given(st.lists(st.lists(event, min_size=1, max_size=10), min_size=4, max_size=6))
@example([[(0, "a", 1, 50)], [(1, "b", 2, 60)], [(2, "a", 3, 1)], [(0, "c", 4, 70)]])
def test_incremental_runs_equal_a_full_rebuild_once_snapshots_expire(
    load: str, batches: list[list[tuple[int, str, int, int]]]
) -> None:
    """Raw tables keeping one snapshot in Iceberg: every older one is read from the batch
    index (its batch id, event range and late rows), so nothing a build decides changes."""
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        patch.setattr(history, "KEEP", 1)
        incremental = _agree(Path(tmp), batches, load)
        stores = LakeStores.open(load_project(incremental))
        try:
            kept, every = stores.lake.recent("raw.events"), stores.lake.snapshots("raw.events")
        finally:
            stores.close()
        assert len(kept) <= 2 < len(batches) == len(every)


def test_a_late_batch_restates_only_the_intervals_it_touched(engine: str, tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    _arrive(root, 0, [(i, "a", 1, hour) for i, hour in enumerate(range(0, 24 * 5, 6))])
    _run(root, full_refresh=False, minutes=0)
    _arrive(root, 1, [(100, "b", 2, 30), (101, "b", 2, 31)])  # day 2, two days before the max
    report = _run(root, full_refresh=False, minutes=1)
    daily = report.models["marts.daily"]
    assert (daily.intervals, daily.restated, daily.late_rows) == (1, 1, 2)
    hourly = report.models["marts.hourly"]
    assert (hourly.intervals, hourly.restated) == (2 + 3, 2 + 3)  # the two late hours + lookback
    assert report.models["marts.positive"].rows == 20 + 2
    again = _run(root, full_refresh=False, minutes=2)
    assert {m.status for m in again.models.values()} == {"up_to_date"}


def _agree(tmp: Path, batches: list[list[tuple[int, str, int, int]]], load: str) -> Path:
    """After each batch, an incremental run and a full rebuild of twin projects hold the same
    rows in every incremental model; returns the incremental project."""
    incremental, full = (_project(tmp / n, load=load) for n in ("inc", "full"))
    for number, batch in enumerate(batches):
        for root in (incremental, full):
            _arrive(root, number, batch, copy=load == "snapshot")
        _run(incremental, full_refresh=False, minutes=number)
        _run(full, full_refresh=True, minutes=number)
        for model in INCREMENTAL:
            assert _rows(incremental, model) == _rows(full, model), (
                f"{model} differs after batch {number} ({load})"
            )
    return incremental


def _project(root: Path, *, load: str = "append") -> Path:
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name == "contracts/events.yml":
            text += f"load: {load}\n" + ("newest_by: occurred_at\n" if load == "merge" else "")
        path.write_text(text, encoding="utf-8")
    (root / "data").mkdir()
    return root


def _arrive(
    root: Path, number: int, batch: list[tuple[int, str, int, int]], *, copy: bool = False
) -> None:
    """Batch `number` arrives as a new file, or (`copy`) as the one file's new content."""
    lines = [
        json.dumps(
            {
                "event_id": f"e{i}",
                "kind": kind,
                "amount": amount,
                "occurred_at": (T0 + timedelta(hours=hour)).isoformat(),
            }
        )
        for i, kind, amount, hour in batch
    ]
    path = root / ("data/current.jsonl" if copy else f"data/batch_{number:03d}.jsonl")
    path.write_text("\n".join(lines) + "\n")
    os.utime(path, ns=(number + 1, number + 1))  # a change even within one clock tick


def _run(root: Path, *, full_refresh: bool, minutes: int) -> object:
    project = load_project(root)
    stores = Stores.open(project)
    try:
        report = run(
            project, stores, now=NOW + timedelta(minutes=minutes), full_refresh=full_refresh
        )
    finally:
        stores.close()
    assert report.ok, report.summary()
    return report


def _rows(root: Path, model: str) -> list[tuple[object, ...]]:
    """The rows of `model`, read on the project's engine (the `engine` fixture's), in one
    order; moments in UTC with its zone (Spark's come back without one: they are UTC)."""
    stores = Stores.open(load_project(root))
    try:
        table = stores.engine.read(exp.select(exp.Star()).from_(exp.to_table(model)))
    finally:
        stores.close()
    return sorted((tuple(map(_utc, row.values())) for row in table.to_pylist()), key=repr)


def _utc(value: object) -> object:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def test_incremental_by_key_inserts_updates_and_deletes(engine: str, tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    _arrive(root, 0, [(1, "a", 10, 0), (2, "a", 20, 0)])  # insert two keys
    _run(root, full_refresh=False, minutes=0)
    assert _rows(root, "marts.latest") == [("e1", "a", 10, T0, False), ("e2", "a", 20, T0, False)]
    _arrive(root, 1, [(1, "b", 11, 5), (2, "a", -1, 6)])  # update e1, delete e2
    _run(root, full_refresh=False, minutes=1)
    assert _rows(root, "marts.latest") == [("e1", "b", 11, T0 + timedelta(hours=5), False)]
    _arrive(root, 2, [(2, "c", 30, 3), (1, "z", 99, 1)])  # older versions arrive late
    _run(root, full_refresh=False, minutes=2)
    assert _rows(root, "marts.latest") == [("e1", "b", 11, T0 + timedelta(hours=5), False)]


def test_scd2_keeps_full_history_across_updates_and_deletes(engine: str, tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    h = lambda n: T0 + timedelta(hours=n)  # noqa: E731
    _arrive(root, 0, [(1, "a", 10, 0), (2, "a", 20, 0)])
    _run(root, full_refresh=False, minutes=0)
    _arrive(root, 1, [(1, "b", 11, 5), (2, "a", -1, 6)])  # e1 changes, e2 is deleted
    _run(root, full_refresh=False, minutes=1)
    _arrive(root, 2, [(1, "c", 12, 3)])  # a version of e1 that happened in between, late
    _run(root, full_refresh=False, minutes=2)
    assert _rows(root, "marts.history") == [
        ("e1", "a", h(0), False, h(0), h(3)),
        ("e1", "b", h(5), False, h(5), None),
        ("e1", "c", h(3), False, h(3), h(5)),
        ("e2", "a", h(0), False, h(0), h(6)),
    ]


def test_a_first_build_writes_every_interval_in_one_statement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """...unless the model sets `batch_size` (marts.daily, 2 days a query); later runs insert
    the new intervals."""
    from sqlglot import exp

    from tests.engines import engine_named

    root = _project(tmp_path / "p")
    _arrive(root, 0, [(i, "a", 1, hour) for i, hour in enumerate(range(0, 24 * 5, 6))])
    with engine_named("recording", monkeypatch) as log:
        first = _run(root, full_refresh=False, minutes=0)

        def writes(model: str) -> list[str]:
            physical = first.models[model].physical
            assert physical is not None
            table = physical.split(".")[-1]
            return [
                type(s).__name__
                for s in log
                if isinstance(s, exp.Create | exp.Insert | exp.Delete)
                and (target := s.this.this if isinstance(s.this, exp.Schema) else s.this)
                and isinstance(target, exp.Table)
                and target.name == table
            ]

        assert writes("marts.daily_whole") == ["Create"]
        assert writes("marts.daily") == ["Create", *["Insert"] * 3]  # 5 days, 2 a query
        assert first.models["marts.daily_whole"].rows == first.models["marts.daily"].rows
        log.clear()
        _arrive(root, 1, [(100, "b", 2, 24 * 5 + 1)])  # a sixth day
        later = _run(root, full_refresh=False, minutes=1)
        assert later.models["marts.daily_whole"].intervals == 1
        assert writes("marts.daily_whole") == ["Insert"]
    assert _rows(root, "marts.daily_whole") == _rows(root, "marts.daily")


def test_a_truncation_removes_every_row_it_does_not_predate(engine: str, tmp_path: Path) -> None:
    """A change log's TRUNCATE (here: amount 0) empties what came before it; what comes after,
    or arrives late but is newer, stays; an older row arriving late does not come back."""
    root = _project(tmp_path / "p")
    _arrive(root, 0, [(1, "a", 10, 0), (2, "a", 20, 1)])
    _run(root, full_refresh=False, minutes=0)
    _arrive(root, 1, [(9, "a", 0, 5), (3, "b", 30, 6)])  # truncated at hour 5, then e3
    _run(root, full_refresh=False, minutes=1)
    h = lambda n: T0 + timedelta(hours=n)  # noqa: E731
    assert [r[0] for r in _rows(root, "marts.current")] == ["e3"]
    _arrive(root, 2, [(1, "z", 11, 4), (4, "c", 40, 7)])  # e1 older than the truncation: gone
    _run(root, full_refresh=False, minutes=2)
    assert _rows(root, "marts.current") == [
        ("e3", "b", 30, h(6), False, False),
        ("e4", "c", 40, h(7), False, False),
    ]
