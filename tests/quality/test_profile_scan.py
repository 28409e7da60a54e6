"""The profile of a batch or version comes out of the rules' one scan, and its numbers are
those hand-written SQL gives: exact counts, bounds and means; estimates (distinct, quantiles,
top values) within their stated error of the exact answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from headwater.contracts import Rule
from headwater.orchestrate.report import RunReport
from headwater.orchestrate.stores import Stores
from headwater.project import Project
from headwater.quality.profile import QUANTILES, SAMPLE, TableProfile
from headwater.quality.rules import evaluate_profiled
from tests.engines import RecordingEngine

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ROWS = 300_000  # over SAMPLE: the quantiles and top values come from a sample


@pytest.fixture(scope="module")
def engine() -> Iterator[RecordingEngine]:
    log: list[object] = []
    engine = RecordingEngine(log=log)
    engine.execute(f"""
        create table orders as select
            i as order_id,
            case when i % 10 = 0 then null else (i * 7919 % 1000) / 10.0 end as amount,
            ['paid', 'paid', 'paid', 'shipped', 'shipped', 'lost'][1 + i % 6] as status,
            'user' || (i % 5000) || '@example.com' as email,
            timestamp '2026-01-01' + to_seconds(i) as ordered_at,
            i % 3 = 0 as gift
        from range({ROWS}) t(i)""")
    yield engine


COLUMNS = {
    "order_id": "BIGINT",
    "amount": "DECIMAL(11,1)",
    "status": "VARCHAR",
    "email": "VARCHAR",
    "ordered_at": "TIMESTAMP",
    "gift": "BOOLEAN",
}
RULES = [Rule(name="id_present", type="not_null", target="order_id")]


def _profiled(engine: RecordingEngine) -> TableProfile:
    results, profile = evaluate_profiled(
        RULES,
        "main.orders",
        engine=engine,
        now=NOW,
        columns=list(COLUMNS),
        pii={"email": "email"},
        profile=COLUMNS,
        profile_rows=ROWS,
    )
    assert [r.passed for r in results] == [True]
    assert profile is not None
    return profile


def test_the_profile_is_read_in_the_rules_one_scan(engine: RecordingEngine) -> None:
    engine.log.clear()
    _profiled(engine)
    queries = [str(q) for q in engine.log if "FROM" in str(q).upper()]
    # every row's figures (counts, bounds, means) in the rules' one scan; the quantiles and
    # top values from a random sample of about SAMPLE rows, in a query of its own
    assert len(queries) == 2
    scan, drawn = queries
    assert "m0" in scan and "_hw_p0_n" in scan and "_hw_p1_avg" in scan
    assert "_hw_drawn" in drawn and "_hw_p1_q" in drawn and "_hw_p2_top" in drawn
    assert "_hw_p1_avg" not in drawn and "m0" not in drawn


def test_beside_a_distinct_count_the_profile_is_read_apart(engine: RecordingEngine) -> None:
    engine.log.clear()
    unique = Rule(name="id_unique", type="uniqueness", target="order_id")
    results, profile = evaluate_profiled(
        [unique],
        "main.orders",
        engine=engine,
        now=NOW,
        columns=list(COLUMNS),
        profile=COLUMNS,
        profile_rows=ROWS,
    )
    assert results[0].passed and profile is not None and profile.rows == ROWS
    queries = [str(q) for q in engine.log if "FROM" in str(q).upper()]
    assert len(queries) == 3  # the rules' scan; every row's figures; the sample's sketches
    assert "_hw_p" not in queries[0]


def test_exact_figures_equal_hand_written_sql(engine: RecordingEngine) -> None:
    profile = _profiled(engine)
    rows, nulls, low, high, mean, distinct = engine.rows(
        "select count(*), count(*) - count(amount), min(amount), max(amount), "
        "avg(amount::double), approx_count_distinct(amount) from main.orders"
    )[0]
    amount = profile.columns["amount"]
    assert profile.rows == rows == ROWS
    assert amount.nulls == nulls / rows
    assert (amount.min, amount.max) == (float(low), float(high))
    assert amount.mean == pytest.approx(mean, rel=1e-12)
    assert amount.distinct == distinct  # the same HyperLogLog estimate
    (share,) = engine.rows("select avg(gift::int) from main.orders")[0]
    assert profile.columns["gift"].mean == pytest.approx(share, rel=1e-12)
    first, last = engine.rows("select min(ordered_at), max(ordered_at) from main.orders")[0]
    assert profile.columns["ordered_at"].min == first.isoformat()
    assert profile.columns["ordered_at"].max == last.isoformat()


def test_estimates_are_within_their_error_of_the_exact_answer(engine: RecordingEngine) -> None:
    profile = _profiled(engine)
    amount = profile.columns["amount"]
    assert amount.quantiles is not None
    for q in QUANTILES:
        # the estimate's rank among the exact values: within 1.5 percentile points of q (a
        # sample of SAMPLE rows puts it within ±0.5 points nearly always)
        (rank,) = engine.rows(
            f"select avg((amount <= {amount.quantiles[f'p{round(q * 100)}']})::int) "
            "from main.orders where amount is not null"
        )[0]
        assert abs(rank - q) < 0.015, (q, rank)
    assert SAMPLE < ROWS
    (exact,) = engine.rows("select count(distinct order_id) from main.orders")[0]
    assert abs(profile.columns["order_id"].distinct - exact) / exact < 0.05
    assert profile.columns["status"].top is not None
    assert profile.columns["status"].top[:2] == ["paid", "shipped"]  # 1/2 and 1/3 of rows
    bins = amount.histogram()
    assert bins is not None and len(bins) == 10
    assert bins[0][0] == amount.min and bins[-1][1] == amount.max


def test_a_pii_column_keeps_counts_never_values(engine: RecordingEngine) -> None:
    profile = _profiled(engine)
    email = profile.columns["email"]
    assert not email.shown and email.nulls == 0.0 and email.distinct
    assert (email.min, email.max, email.quantiles, email.top) == (None, None, None, None)
    assert "example.com" not in profile.to_json()
    assert TableProfile.from_json(profile.rows, profile.to_json()) == profile


def test_a_run_profiles_every_batch_and_every_version_written(
    built_shop: tuple[Project, Stores, RunReport],
) -> None:
    _project, stores, report = built_shop
    for landed in report.landed:
        history = stores.catalog.profile_history(landed.table)
        assert [(p.kind, p.ref, p.rows) for p in history] == [
            ("batch", landed.batch_id, landed.rows)
        ]
    written = [o for o in report.models.values() if o.status == "built" and o.rows is not None]
    assert written
    for outcome in written:
        (stored,) = stores.catalog.profile_history(outcome.name)
        assert (stored.kind, stored.ref, stored.rows) == ("version", outcome.physical, outcome.rows)
        columns = json.loads(stored.columns)
        assert set(columns) == set(stores.engine.columns(outcome.physical))
