"""Backfills: a range of an incremental_by_time model's intervals written again, in parallel,
resumably; what they leave equals a full refresh, and the next run has nothing to do.

The project: raw events over 90 days (Jan-Mar 2026), a clean model, and `marts.daily`, daily
totals with an `error` uniqueness rule and a rule routing large totals to its quarantine. A
twin project built with a full refresh is what every backfill must equal.
"""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

import headwater.orchestrate.backfill as backfilling
from headwater.errors import HeadwaterError, ModelError, TransientEngineError, UsageError
from headwater.observe import Event
from headwater.orchestrate import RunReport, Stores, run
from headwater.orchestrate.backfill import BackfillReport, Request, VersionState
from headwater.project import load_project

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 90
END = T0 + timedelta(days=DAYS)
NOW = datetime(2026, 4, 2, tzinfo=UTC)
MODEL = "marts.daily"
SLOW = """
  -- slow on purpose (about 0.1 s an interval): a kill or Ctrl-C lands mid-backfill, also
  -- when a loaded machine starves the test that polls for the moment to send it
  and (select sum(hash(i)) from range(10000000) as t(i)) is not null"""
DAILY = """/* headwater
kind: incremental_by_time
time_column: day
*/
select date_trunc('day', occurred_at) as day, kind, count(*) as n, sum(amount) as total
from clean.events
where occurred_at >= :start and occurred_at < :end{slow}
group by 1, 2
"""
FILES = {
    "headwater.yml": "name: backfills\ndefaults: {backoff: 10ms}\n",
    "contracts/events.yml": """
source: test.events
schema_version: "1"
delivery: batch
{watermark}privacy_level: internal
connector: {{kind: files, path: "data/*.jsonl"}}
primary_key: [event_id]
columns:
  - {{name: event_id, type: varchar, nullable: false}}
  - {{name: kind, type: varchar}}
  - {{name: amount, type: integer}}
  - {{name: occurred_at, type: timestamptz, nullable: false}}
""",
    "models/clean/events.sql": "select event_id, kind, amount, occurred_at from raw.events\n",
    "models/marts/daily.yml": """rules:
  - {name: one_row_per_day_and_kind, type: uniqueness, target: "day, kind", threshold: 0}
  - {name: modest_totals, type: valid_values, target: total, max: 330, on_fail: quarantine}
""",
}


def make_project(root: Path, *, slow: bool = False, watermark: bool = True) -> Path:
    """The project with 3,000 events over the 90 days (the same ones in every copy)."""
    for name, text in {**FILES, "models/marts/daily.sql": DAILY}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("events.yml"):
            text = text.format(watermark='watermark: "occurred_at - interval 1 hour"\n' * watermark)
        elif name.endswith("daily.sql"):
            text = text.format(slow=SLOW if slow else "")
        path.write_text(text, encoding="utf-8")
    rng = random.Random(7)
    events = [
        {
            "event_id": f"e{i}",
            "kind": rng.choice("abc"),
            "amount": rng.randint(0, 50),
            "occurred_at": (T0 + timedelta(seconds=rng.randrange(DAYS * 86400))).isoformat(),
        }
        for i in range(3000)
    ]
    arrive(root, "events", events)
    return root


def arrive(root: Path, name: str, events: list[dict[str, Any]]) -> None:
    (root / "data").mkdir(exist_ok=True)
    lines = [json.dumps(e) for e in events]
    (root / "data" / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_project(root: Path, **options: Any) -> RunReport:
    project = load_project(root)
    stores = Stores.open(project)
    try:
        report = run(project, stores, now=NOW, **options)
    finally:
        stores.close()
    assert report.ok, report.summary()
    return report


def backfill(
    root: Path,
    start: datetime = T0,
    end: datetime = END,
    *,
    model: str = MODEL,
    events: list[Event] | None = None,
    **options: Any,
) -> BackfillReport:
    project = load_project(root)
    stores = Stores.open(project)
    sink = events.append if events is not None else (lambda event: None)
    try:
        request = Request(model, start, end, **options)
        return backfilling.backfill(project, stores, request, now=NOW, sink=sink)
    finally:
        stores.close()


def rows(root: Path, table: str = MODEL) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True) as conn:
        return sorted(conn.sql(f"select * from {table}").fetchall(), key=repr)


def catalog(root: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(root / ".headwater/catalog.db") as conn:
        return conn.execute(query).fetchall()


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[Any, ...]]]:
    """What a full refresh of the project holds: the model and its quarantine."""
    root = make_project(tmp_path_factory.mktemp("full") / "p")
    run_project(root, full_refresh=True)
    return {t: rows(root, t) for t in (MODEL, f"{MODEL}__quarantine")}


@pytest.fixture
def upstream_built(tmp_path: Path) -> Path:
    """The project with its data landed and clean.events built; marts.daily never built."""
    root = make_project(tmp_path / "p")
    report = run_project(root, select=["clean.events"])
    assert set(report.models) == {"clean.events"}
    return root


def test_a_model_never_built_is_filled_in_parallel_then_published(
    upstream_built: Path, refreshed: dict[str, list[tuple[Any, ...]]]
) -> None:
    report = backfill(upstream_built, parallel=4)
    assert report.ok, report.failed
    assert report.version is VersionState.NEW
    assert (report.intervals, report.written, report.skipped) == (DAYS, DAYS, 0)
    assert report.published and not report.remaining
    assert rows(upstream_built) == refreshed[MODEL]
    assert rows(upstream_built, f"{MODEL}__quarantine") == refreshed[f"{MODEL}__quarantine"]
    assert refreshed[f"{MODEL}__quarantine"], "the quarantine rule routes nothing: no test"
    assert {c.rule.name: c.passed for c in report.checks} == {
        "one_row_per_day_and_kind": True,
        "modest_totals": True,  # what failed it was routed out
    }

    after = run_project(upstream_built).models[MODEL]
    assert (after.status, after.error) == ("up_to_date", None)


@pytest.mark.parametrize("finish", ["backfill --only-missing", "run"])
def test_a_partial_backfill_is_published_once_the_rest_is_written(
    upstream_built: Path, refreshed: dict[str, list[tuple[Any, ...]]], finish: str
) -> None:
    february = datetime(2026, 2, 1, tzinfo=UTC)
    january = backfill(upstream_built, T0, february, parallel=2)
    assert january.ok and not january.published
    assert january.remaining == [(february.replace(tzinfo=None), END.replace(tzinfo=None))]
    assert catalog(upstream_built, "select name from hw_env_pointers") == [("clean.events",)]

    if finish == "run":
        finished = run_project(upstream_built).models[MODEL]
        assert (finished.status, finished.intervals) == ("built", DAYS - 31)
    else:
        rest = backfill(upstream_built, parallel=3, only_missing=True)
        assert (rest.version, rest.present, rest.written) == ("unpublished", 31, DAYS - 31)
        assert rest.published
    assert rows(upstream_built) == refreshed[MODEL]
    assert run_project(upstream_built).models[MODEL].status == "up_to_date"


def test_backfilling_the_published_version_twice_changes_nothing(
    tmp_path: Path, refreshed: dict[str, list[tuple[Any, ...]]]
) -> None:
    root = make_project(tmp_path / "p")
    run_project(root)
    state = (
        'select name, fingerprint, start, "end" from hw_intervals order by 1, 3',
        "select name, fingerprint, data_key, rows, inputs from hw_model_versions order by 1",
        "select * from hw_env_pointers order by 1, 2",
    )
    before = [catalog(root, q) for q in state]
    for _ in range(2):
        report = backfill(root, datetime(2026, 1, 20, tzinfo=UTC), END, parallel=4)
        assert report.ok and report.version is VersionState.PUBLISHED
        assert (report.written, report.published) == (DAYS - 19, False)
        assert rows(root) == refreshed[MODEL]
        assert [catalog(root, q) for q in state] == before
    after = run_project(root).models[MODEL]
    assert (after.status, after.error) == ("up_to_date", None)  # not "changed outside"


def test_a_unit_failing_an_error_rule_is_rolled_back_and_a_resume_writes_only_it(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path / "p")
    (root / "models/marts/daily.yml").write_text(
        FILES["models/marts/daily.yml"]
        + "  - {name: known_kinds, type: valid_values, target: kind, values: [a, b, c]}\n"
    )
    run_project(root)
    # a batch with an unknown kind on Jan 10 lands; clean.events is rebuilt with it
    bad = {"event_id": "x1", "kind": "zzz", "amount": 1, "occurred_at": "2026-01-10T12:00:00Z"}
    arrive(root, "late", [bad])
    run_project(root, select=["clean.events"])
    before = rows(root)

    events: list[Event] = []
    report = backfill(root, T0, datetime(2026, 1, 20, tzinfo=UTC), parallel=3, events=events)
    jan10 = (datetime(2026, 1, 10), datetime(2026, 1, 11))
    assert [f.span for f in report.failed] == [jan10]
    assert "known_kinds" in report.failed[0].error
    assert (report.status, report.written) == ("failed", 18)
    assert [e.detail["start"] for e in events if e.status == "blocked"] == [jan10[0]]
    assert rows(root) == before  # Jan 10 rolled back: its rows as before
    assert catalog(root, "select status from hw_backfills") == [("failed",)]

    (root / "models/marts/daily.yml").write_text(FILES["models/marts/daily.yml"])  # the fix
    again = backfill(root, T0, datetime(2026, 1, 20, tzinfo=UTC), parallel=3)
    assert again.ok and again.resumed
    assert (again.skipped, again.written, again.backfill_id) == (18, 1, report.backfill_id)
    assert ("zzz" in {r[1] for r in rows(root)}) and len(rows(root)) == len(before) + 1
    # the catalog counted the new row: the next run finds the version as recorded, and
    # writes again only what the batch the version had not seen touched
    after = run_project(root).models[MODEL]
    assert (after.status, after.error, after.intervals, after.restated) == ("built", None, 1, 1)
    assert after.rows == len(rows(root))  # continued from the rows the backfill counted


def test_a_write_conflict_is_retried(upstream_built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write = backfilling.replace_interval
    failed: list[object] = []

    def conflicting(job: Any, span: Any) -> Any:
        if not failed:
            failed.append(span)
            raise TransientEngineError("TransactionContext Error: Conflict on tuple deletion!")
        return write(job, span)

    monkeypatch.setattr(backfilling, "replace_interval", conflicting)
    events: list[Event] = []
    report = backfill(upstream_built, T0, datetime(2026, 1, 8, tzinfo=UTC), events=events)
    assert report.ok and report.written == 7 and failed
    assert [e.detail["start"] for e in events if e.status == "retrying"] == [failed[0][0]]  # type: ignore[index]


def test_the_range_is_rounded_out_to_whole_intervals_and_cut_to_the_data(
    upstream_built: Path,
) -> None:
    report = backfill(
        upstream_built, datetime(2025, 12, 20, 5, tzinfo=UTC), datetime(2026, 1, 3, 1, tzinfo=UTC)
    )
    assert report.span == (datetime(2025, 12, 20), datetime(2026, 1, 4))
    assert report.covered == [(datetime(2026, 1, 1), datetime(2026, 1, 4))]
    assert report.written == 3
    assert [n for n in report.notes if "never been published" not in n] == [
        "--start 2025-12-20 05:00 is inside a day: rounded down to 2025-12-20",
        "--end 2026-01-03 01:00 is inside a day: rounded up to 2026-01-04",
        "marts.daily's data covers [2026-01-01, 2026-04-01): backfilling [2026-01-01, 2026-01-04)",
    ]


@pytest.mark.parametrize(
    ("model", "start", "end", "message"),
    [
        ("marts.dialy", T0, END, "no model named 'marts.dialy'; did you mean 'marts.daily'?"),
        ("daily", T0, END, "no model named 'daily'; did you mean 'marts.daily'?"),
        ("clean.events", T0, END, "clean.events is a table model: only incremental_by_time"),
        (MODEL, END, T0, "--start 2026-04-01 is not before --end 2026-01-01"),
        (MODEL, END, END + timedelta(days=9), "[2026-04-01, 2026-04-10) holds none of"),
    ],
)
def test_what_cannot_be_backfilled_says_why(
    upstream_built: Path, model: str, start: datetime, end: datetime, message: str
) -> None:
    with pytest.raises(UsageError) as raised:
        backfill(upstream_built, start, end, model=model)
    assert message in raised.value.render()
    assert raised.value.exit_code == 2


def test_what_it_reads_must_be_built_first(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    with pytest.raises(UsageError, match=r"reads clean\.events, which has never been built"):
        backfill(root)
    run_project(root, select=["clean.events"])
    (root / "models/clean/events.sql").write_text(
        "select event_id, kind, amount, occurred_at from raw.events where amount >= 0\n"
    )
    with pytest.raises(UsageError, match=r"reads clean\.events, whose SQL .* changed") as raised:
        backfill(root)
    assert raised.value.hint == "build it first: headwater run -s clean.events"


def test_a_published_version_changed_outside_headwater_is_left_to_a_run(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    physical = run_project(root).models[MODEL].physical
    with duckdb.connect(str(root / ".headwater/warehouse.duckdb")) as conn:
        conn.execute(f"delete from {physical} where day < '2026-01-05'")
    with pytest.raises(UsageError, match=r"the catalog recorded .* \(changed outside") as raised:
        backfill(root)
    assert raised.value.hint == f"`headwater run -s {MODEL}` rebuilds it whole, every interval"


def test_a_model_whose_data_has_no_event_times_is_a_spec_error(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", watermark=False)
    run_project(root, select=["clean.events"])
    with pytest.raises(ModelError, match="cannot tell which times") as raised:
        backfill(root)
    assert isinstance(raised.value, HeadwaterError) and raised.value.exit_code == 3
