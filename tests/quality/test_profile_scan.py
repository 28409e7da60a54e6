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
from headwater.quality.profile import BLOCKS, QUANTILES, SAMPLE, TableProfile
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
    # every row's figures (counts, bounds, means) in the rules' one scan; the quantiles from
    # a random sample of about SAMPLE rows, the top values from whole blocks of about as many
    assert len(queries) == 3
    scan, drawn, blocks = queries
    assert "m0" in scan and "_hw_p0_n" in scan and "_hw_p1_avg" in scan
    assert "RAND()" in drawn and "_hw_p1_q" in drawn and "_hw_p2_top" not in drawn
    assert "_hw_p1_avg" not in drawn and "m0" not in drawn
    assert "TABLESAMPLE" not in drawn  # a third of 300,000 rows: drawn one by one
    assert "_hw_p2_top" in blocks and "_hw_p1_q" not in blocks and "RAND()" not in blocks
    assert "TABLESAMPLE SYSTEM (33.3333 PERCENT)" in blocks


def test_a_distinct_count_is_read_apart_from_the_profile(engine: RecordingEngine) -> None:
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
    # every row's figures, the distinct count (beside which DuckDB would evaluate them the
    # slow way), the samples' sketches
    assert len(queries) == 4
    scan, apart, drawn, _ = queries
    assert "_hw_p1_avg" in scan and "COUNT(DISTINCT" not in scan
    assert "COUNT(DISTINCT" in apart and "_hw_p" not in apart
    assert "_hw_p1_q" in drawn
    assert results[0].sql == engine.render(apart)  # the query that measured the rule
    # the rule counted the distinct ids exactly: the profile estimates them not besides
    assert "_hw_p0_d" not in scan and "_hw_p1_d" in scan
    assert profile.columns["order_id"].distinct == ROWS


def test_rules_measure_the_same_with_distinct_counts_apart(engine: RecordingEngine) -> None:
    rules = [
        Rule(name="id_unique", type="uniqueness", target="order_id"),
        Rule(name="status_unique", type="uniqueness", target="status"),
        Rule(name="ids_known", type="valid_values", target="order_id", min=0, max=10),
        Rule(name="amount_present", type="not_null", target="amount", threshold=0.2),
    ]
    measured = []
    for profile in (None, COLUMNS):
        engine.log.clear()
        results, _ = evaluate_profiled(
            rules, "main.orders", engine=engine, now=NOW, columns=list(COLUMNS), profile=profile
        )
        scans = [str(q) for q in engine.log if "_hw_rows" in str(q)]
        distinct = [str(q) for q in engine.log if "COUNT(DISTINCT" in str(q)]
        assert len(scans) == 1 and "COUNT(DISTINCT" not in scans[0]
        assert len(distinct) == 2  # one query each, reading its key only
        measured.append([(r.rule.name, r.metric, r.passed) for r in results])
    (dupes,) = engine.rows("select count(status) - count(distinct status) from main.orders")[0]
    (outside,) = engine.rows("select count(*) from main.orders where order_id > 10")[0]
    assert (
        measured[0]
        == measured[1]
        == [
            ("id_unique", 0, True),
            ("status_unique", dupes, False),
            ("ids_known", outside, False),
            ("amount_present", ROWS // 10, True),
        ]
    )


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


def test_a_big_table_is_sampled_by_blocks_then_rows(engine: RecordingEngine) -> None:
    big = BLOCKS * SAMPLE * 2  # half of the blocks, then one row in BLOCKS of them
    engine.execute(f"""
        create table big as select i as stored_order, hash(i) % 100000 as scattered
        from range({big}) t(i)""")
    engine.log.clear()
    _, profile = evaluate_profiled(
        [],
        "main.big",
        engine=engine,
        now=NOW,
        columns=["stored_order", "scattered"],
        profile={"stored_order": "BIGINT", "scattered": "BIGINT"},
        profile_rows=big,
    )
    assert profile is not None and profile.rows == big
    (drawn,) = [str(q) for q in engine.log if "_hw_p0_q" in str(q)]
    assert "TABLESAMPLE SYSTEM (50 PERCENT)" in drawn and f"RAND() < {1 / BLOCKS:g}" in drawn
    for name, error in (("scattered", 0.015), ("stored_order", 0.1)):
        # rows in no order: as good as SAMPLE rows drawn one by one; a column sorted the way
        # rows are stored: about 490 blocks, ±2.3 percentile points (one standard error)
        quantiles = profile.columns[name].quantiles
        assert quantiles is not None
        for q in QUANTILES:
            (rank,) = engine.rows(
                f"select avg(({name} <= {quantiles[f'p{round(q * 100)}']})::int) from main.big"
            )[0]
            assert abs(rank - q) < error, (name, q, rank)


def test_top_values_come_from_whole_blocks_even_of_rows_clustered_by_value(
    engine: RecordingEngine,
) -> None:
    big = 20 * SAMPLE  # the top values read a twentieth of the blocks, every row of them
    # stored sorted by value: each block holds one value; 10% of the rows are 1,000 rare ones
    engine.execute(f"""
        create table clustered as select case when i < {big} * 0.4 then 'a'
            when i < {big} * 0.7 then 'b' when i < {big} * 0.9 then 'c'
            else 'rare' || (i % 1000) end as kind
        from range({big}) t(i) order by i""")
    engine.log.clear()
    _, profile = evaluate_profiled(
        [],
        "main.clustered",
        engine=engine,
        now=NOW,
        columns=["kind"],
        profile={"kind": "VARCHAR"},
        profile_rows=big,
    )
    assert profile is not None
    (drawn,) = [str(q) for q in engine.log if "_hw_p0_top" in str(q)]
    assert "TABLESAMPLE SYSTEM (5 PERCENT)" in drawn and "RAND()" not in drawn
    top = profile.columns["kind"].top
    assert top is not None and {"a", "b", "c"} <= set(top[:4]), top


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
