"""The anomaly rule's judge: warm-up, spikes and drops explained, weekday seasonality, trends,
constant and irregular histories, time zones and each metric's wording. Figures of its
precision and recall are in bench/observe/anomaly.py, not here."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from headwater.quality.anomaly import Point, Verdict, judge

MONDAY = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
WEEKEND = 0.3  # Saturdays and Sundays see 30% of a weekday's rows


def daily(
    days: int,
    *,
    level: float = 10_000,
    weekend: float = WEEKEND,
    growth: float = 0.0,
    noise: float = 0.02,
    seed: int = 1,
) -> list[Point]:
    """A daily row count from MONDAY on: weekends at `weekend`, compounding `growth`."""
    rng = random.Random(seed)
    points = []
    for day in range(days):
        at = MONDAY + timedelta(days=day)
        factor = weekend if at.weekday() >= 5 else 1.0
        value = level * factor * (1 + growth) ** day * (1 + rng.gauss(0, noise))
        points.append(Point(at, float(round(value))))
    return points


def next_day(history: list[Point], weekday: str) -> datetime:
    """The first day after `history` falling on `weekday`."""
    at = max(p.at for p in history) + timedelta(days=1)
    while at.strftime("%A") != weekday:
        at += timedelta(days=1)
    return at


def rows(history: list[Point], at: datetime, value: float, **options: object) -> Verdict:
    return judge(history, Point(at, value), metric="rows", **options)  # type: ignore[arg-type]


def test_warming_up_below_the_warmup_values() -> None:
    history = daily(9)
    verdict = rows(history, next_day(history, "Wednesday"), 1204)
    assert verdict.status == "warming_up"
    assert verdict.explanation == "rows 1,204: 9 of 14 earlier values, too few to judge yet"
    assert verdict.expected is None and verdict.score is None


def test_weekly_season_warms_up_until_two_of_the_weekday() -> None:
    history = daily(13)  # one Sunday among them
    verdict = rows(history, next_day(history, "Sunday"), 3000, warmup=7)
    assert verdict.status == "warming_up"
    assert verdict.explanation == ("rows 3,000: 1 earlier Sunday in 13 days, too few to judge yet")


def test_a_drop_is_flagged_and_explained() -> None:
    history = daily(56)
    verdict = rows(history, next_day(history, "Tuesday"), 1204)
    assert verdict.status == "anomaly"
    assert verdict.score is not None and verdict.score < -4.5
    assert verdict.low is not None and verdict.high is not None
    assert 8_000 < verdict.low < 10_000 < verdict.high < 12_000
    band = r"\d,\d00\u2013\d\d,\d00"  # 3 significant digits, thousands separators
    pattern = rf"rows 1,204 vs expected {band} for a Tuesday \(8 earlier Tuesdays\)"
    assert re.fullmatch(pattern, verdict.explanation)


def test_a_spike_is_flagged() -> None:
    history = daily(56)
    verdict = rows(history, next_day(history, "Thursday"), 25_000)
    assert verdict.status == "anomaly"
    assert verdict.score is not None and verdict.score > 4.5
    assert verdict.explanation.startswith("rows 25,000 vs expected")


def test_a_normal_value_is_ok_within_the_band() -> None:
    history = daily(56)
    verdict = rows(history, next_day(history, "Tuesday"), 10_050)
    assert verdict.status == "ok"
    assert verdict.low is not None and verdict.high is not None
    assert verdict.low <= 10_050 <= verdict.high
    assert verdict.explanation.startswith("rows 10,050 within expected")


def test_a_low_sunday_is_normal_for_a_sunday_not_for_a_tuesday() -> None:
    history = daily(56)
    sunday = rows(history, next_day(history, "Sunday"), 3_000)
    tuesday = rows(history, next_day(history, "Tuesday"), 3_000)
    assert sunday.status == "ok"
    assert "for a Sunday" in sunday.explanation
    assert tuesday.status == "anomaly"


def test_without_season_a_sunday_is_judged_against_all_days() -> None:
    history = daily(56)
    verdict = rows(history, next_day(history, "Sunday"), 3_000, season="none")
    assert verdict.status == "anomaly"  # a weekday's level, without the weekly pattern
    assert verdict.explanation.endswith("(56 days)")


def test_a_constant_series_ignores_one_row_but_flags_a_jump() -> None:
    history = daily(30, level=500, weekend=1.0, noise=0.0)
    at = next_day(history, "Wednesday")
    assert rows(history, at, 500).status == "ok"
    assert rows(history, at, 501).status == "ok"
    assert rows(history, at, 600).status == "anomaly"
    assert rows(history, at, 400).status == "anomaly"


def test_a_tiny_constant_series_allows_its_resolution() -> None:
    history = daily(30, level=5, weekend=1.0, noise=0.0)
    at = next_day(history, "Wednesday")
    assert rows(history, at, 6).status == "ok"
    assert rows(history, at, 9).status == "anomaly"


def test_a_steadily_growing_table_is_not_flagged() -> None:
    series = daily(90, growth=0.01, noise=0.01)
    verdicts = [rows(series[:i], series[i].at, series[i].value) for i in range(21, 90)]
    assert [v.explanation for v in verdicts if v.status != "ok"] == []


def test_a_table_going_empty_is_flagged() -> None:
    history = daily(56)
    verdict = rows(history, next_day(history, "Monday"), 0)
    assert verdict.status == "anomaly"
    assert verdict.explanation.startswith("rows 0 vs expected")


def test_earlier_anomalies_do_not_move_the_baseline() -> None:
    history = daily(56)
    poisoned = [Point(p.at, 0.0 if i % 9 == 4 else p.value) for i, p in enumerate(history)]
    at = next_day(history, "Tuesday")
    assert rows(poisoned, at, 10_000).status == "ok"
    assert rows(poisoned, at, 1_204).status == "anomaly"


def test_irregular_unordered_duplicated_points_are_one_history() -> None:
    history = daily(56)
    rng = random.Random(3)
    irregular = [p for p in history if rng.random() > 0.2]  # gaps of days
    irregular += [Point(p.at + timedelta(hours=7), p.value * 1.01) for p in irregular[::3]]
    irregular += irregular[:5]  # the same timestamps twice
    rng.shuffle(irregular)
    at = next_day(history, "Tuesday")
    assert rows(irregular, at, 10_000).status == "ok"
    assert rows(irregular, at, 1_204).status == "anomaly"


def test_points_at_or_after_the_current_one_are_ignored() -> None:
    history = daily(56)
    at = next_day(history, "Tuesday")
    later = [Point(at, 1_204.0), Point(at + timedelta(days=1), 1_204.0)]
    assert rows(history + later, at, 1_204) == rows(history, at, 1_204)


def test_tz_decides_the_weekday() -> None:
    # runs at 23:00 UTC: already the next day in Tokyo, so every weekend shifts by one day
    history = [Point(p.at.replace(hour=23), p.value) for p in daily(56)]
    at = next_day(history, "Sunday").replace(hour=23)  # Monday 08:00 in Tokyo
    assert rows(history, at, 3_000).status == "ok"
    in_tokyo = rows(history, at, 3_000, tz=ZoneInfo("Asia/Tokyo"))
    assert in_tokyo.status == "ok"  # Tokyo's Mondays held UTC's Sundays all along
    assert "for a Monday" in in_tokyo.explanation


def test_threshold_widens_the_band() -> None:
    history = daily(56)
    at = next_day(history, "Tuesday")
    narrow, wide = rows(history, at, 10_000, threshold=2), rows(history, at, 10_000, threshold=8)
    assert narrow.low is not None and wide.low is not None
    assert wide.low < narrow.low


def test_freshness_is_an_age() -> None:
    rng = random.Random(5)
    history = [Point(MONDAY + timedelta(days=d), 3_600 + rng.gauss(0, 300)) for d in range(42)]
    at = MONDAY + timedelta(days=42)
    stale = judge(history, Point(at, 5 * 3_600 + 600), metric="freshness")
    assert stale.status == "anomaly"
    assert re.fullmatch(
        r"5h 10m old vs expected \d+m\u20131h \d+m for a Monday \(6 earlier Mondays\)",
        stale.explanation,
    )
    fresh = judge(history, Point(at, 3_720), metric="freshness")
    assert fresh.status == "ok"
    assert fresh.explanation.startswith("1h 2m old within expected")


def test_nulls_are_a_percentage() -> None:
    rng = random.Random(6)
    history = [Point(MONDAY + timedelta(days=d), 0.002 + rng.gauss(0, 0.0002)) for d in range(42)]
    verdict = judge(
        history, Point(MONDAY + timedelta(days=42), 0.125), metric="nulls", target="email"
    )
    assert verdict.status == "anomaly"
    assert verdict.explanation.startswith("nulls in email 12.5% vs expected 0.")
    assert verdict.explanation.count("%") == 3


def test_a_column_without_nulls_flags_the_first_ones() -> None:
    history = [Point(MONDAY + timedelta(days=d), 0.0) for d in range(30)]
    at = MONDAY + timedelta(days=30)
    assert judge(history, Point(at, 0.0), metric="nulls").status == "ok"
    assert judge(history, Point(at, 0.01), metric="nulls").status == "anomaly"


def test_distinct_and_mean_wording() -> None:
    history = daily(42, weekend=1.0)
    at = next_day(history, "Friday")
    distinct = judge(history, Point(at, 1_204), metric="distinct", target="customer_id")
    assert distinct.explanation.startswith("distinct customer_id 1,204 vs expected")
    means = [Point(p.at, p.value / 1_000) for p in history]
    mean = judge(means, Point(at, 3.14159), metric="mean", target="amount")
    assert mean.explanation.startswith("mean amount 3.142 vs expected 9.")


def test_bad_arguments_are_refused() -> None:
    history = daily(20)
    with pytest.raises(ValueError, match="metric"):
        judge(history, Point(MONDAY, 1), metric="size")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not usable"):
        judge(history, Point(MONDAY, float("nan")), metric="rows")


def test_runs_earlier_today_are_judged_with_not_against() -> None:
    history = daily(56)
    at = next_day(history, "Tuesday")
    broken = [Point(at - timedelta(hours=h), 1_204.0) for h in (1, 2, 3)]
    verdict = rows(history + broken, at, 1_204)
    assert verdict.status == "anomaly"  # a broken morning does not make 1,204 normal
    assert verdict.explanation.endswith("(8 earlier Tuesdays)")
