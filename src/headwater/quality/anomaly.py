"""The `anomaly` rule: one metric's next value against a robust baseline of its own history
(weekday pattern, recent level and trend; median and MAD), as a verdict a person can read:
"rows 1,204 vs expected 9,800-10,400 for a Tuesday". Pure Python; a history is small.

How the baseline is made (defaults chosen by bench/observe/anomaly.py):

1. The earlier points (strictly before the current one, finite) of the last `WINDOW` days of
   history are grouped by calendar day (in `tz`, UTC by default); a day is the median of its
   points. Positive metrics are modelled on a log scale (a weekday is a *factor*, a trend a
   growth rate, noise a relative error) unless fewer than 90% of the days are positive; the
   few non-positive days (a table that once went empty) are then left out as past anomalies.
2. Weekly pattern: each day against the median of the whole week around it; a weekday's
   effect is the median of those differences (of two, the one nearer 0). Until there are 2
   earlier days of the current weekday over 2 weeks, the verdict is still `warming_up`
   (with season none: until 3 earlier days). Runs earlier on the current day are left out:
   several runs a day are each judged against the earlier days, not against each other.
3. Level and trend: the median of the last `LEVEL` deseasonalized days, moved forward by the
   slope of the last `TREND` days (Theil-Sen, when both halves agree): a table growing
   1%/day is not flagged, and a level shift is the new normal within days, not a trend.
4. Spread: 1.4826 x MAD of each point against the median of its neighbouring days (its own
   day left out), floored at `RELATIVE_FLOOR` of the expected value and half the metric's
   resolution, so a constant series flags a jump but not a change of one row.

Past anomalies are not excluded explicitly (`judge` is given values, not verdicts): medians
ignore a few, and a value that stays (a level shift) becomes the new normal in half a week.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from statistics import median
from typing import Literal

Status = Literal["ok", "anomaly", "warming_up"]
Metric = Literal["rows", "freshness", "nulls", "distinct", "mean"]
Season = Literal["weekly", "none"]

# robust z allowed either side: on bench/observe/anomaly.py, the smallest (in steps of 0.5)
# with precision >= 0.9 for every noise kind (4.0: 0.87 under heavy-tailed noise)
THRESHOLD = 4.5
WINDOW = 56  # days of history read: 8 of each weekday
TREND = 28  # days the slope is fitted on
LEVEL = 7  # the most recent days whose median is the level (one of each weekday)
LOG_SHARE = 0.9  # share of positive days above which a metric is modelled on a log scale
RELATIVE_FLOOR = 0.01  # the spread is at least 1% of the expected value ...
RESOLUTION = {"rows": 1.0, "distinct": 1.0, "freshness": 60.0, "nulls": 0.0005, "mean": 0.0}
MAD_TO_SIGMA = 1.4826  # a normal distribution's standard deviation per MAD
DASH = "\u2013"  # an en dash, between the bounds of a band
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Point:
    """One measurement of a metric: when (timezone-aware) and its value (freshness in
    seconds, nulls as a fraction 0 to 1)."""

    at: datetime
    value: float


@dataclass(frozen=True)
class Verdict:
    """The judged value against its baseline: `expected` is the center, `low`..`high` the
    band inside which it is ok, `score` the robust z (how many spreads from the center).
    Only `explanation` is set while warming up."""

    status: Status
    value: float
    expected: float | None
    low: float | None
    high: float | None
    score: float | None
    explanation: str


@dataclass(frozen=True)
class _Baseline:
    center: float  # on the model's scale (log or not)
    sigma: float
    log: bool
    weekly: bool | None  # whether the weekly pattern counts; None: too few days yet
    weekday: int
    seen: int  # earlier days of that weekday
    days: int  # earlier days


def judge(
    history: Sequence[Point],
    current: Point,
    *,
    metric: Metric,
    target: str = "*",
    season: Season = "weekly",
    warmup: int = 14,
    threshold: float | None = None,
    tz: tzinfo | None = None,
) -> Verdict:
    """Judge `current` against the points of `history` before it.

    Args:
        history: earlier measurements, in any order, possibly several a day or with gaps;
            points at or after `current.at` are ignored.
        current: the value to judge.
        metric: rows, freshness (an age in seconds), nulls (a fraction), distinct or mean.
        target: the column measured ('*' for the table), named in the explanation.
        season: weekly compares with the same weekday; none with all days.
        warmup: how many earlier values it needs before it judges.
        threshold: how many robust spreads are allowed either side (default `THRESHOLD`).
        tz: the zone whose calendar days and weekdays count (default UTC).

    Example:
        >>> judge(history, Point(tuesday, 1204), metric="rows").explanation
        'rows 1,204 vs expected 9,800-10,400 for a Tuesday (8 earlier Tuesdays)'
    """
    if metric not in RESOLUTION or season not in ("weekly", "none") or warmup < 1:
        raise ValueError(f"anomaly: bad metric {metric!r}, season {season!r} or warmup {warmup}")
    k = THRESHOLD if threshold is None else float(threshold)
    if not math.isfinite(current.value) or k <= 0:
        raise ValueError(f"anomaly: value {current.value} or threshold {k} is not usable")
    earlier = [p for p in history if p.at < current.at and math.isfinite(p.value)]
    said = _Sayer(metric, target)
    if len(earlier) < warmup:
        return _warming(current.value, said, f"{len(earlier)} of {warmup} earlier values")
    base = _baseline(earlier, current, metric, season == "weekly", tz or UTC)
    if base.weekly is None:
        name = WEEKDAYS[base.weekday]
        plural = "" if base.seen == 1 else "s"
        why = (
            f"{base.seen} earlier {name}{plural} in {base.days} days" if season == "weekly" else ""
        )
        return _warming(current.value, said, why or f"{base.days} earlier days")
    return _verdict(current.value, base, k, metric, said)


def _warming(value: float, said: _Sayer, why: str) -> Verdict:
    text = f"{said(value)}: {why}, too few to judge yet"
    return Verdict("warming_up", value, None, None, None, None, text)


def _baseline(
    earlier: list[Point], current: Point, metric: str, weekly: bool, tz: tzinfo
) -> _Baseline:
    today = current.at.astimezone(tz).date().toordinal()
    stamped = sorted((p.at.astimezone(tz).date().toordinal(), p.value) for p in earlier)
    stamped = [(d, v) for d, v in stamped if d < today]  # today's earlier runs: not a baseline
    if not stamped:
        return _Baseline(0.0, 0.0, False, None, _weekday(today), 0, 0)
    stamped = [(d, v) for d, v in stamped if d > stamped[-1][0] - WINDOW]
    log = sum(v > 0 for _, v in stamped) >= LOG_SHARE * len(stamped)
    points = [(d, math.log(v)) for d, v in stamped if v > 0] if log else stamped
    days = _daily(points)
    seen = sum(1 for d, _ in days if _weekday(d) == _weekday(today))
    known = seen >= 2 and days[-1][0] - days[0][0] >= 13 if weekly else len(days) >= 3
    if not known:
        return _Baseline(0.0, 0.0, log, None, _weekday(today), seen, len(days))
    differences = _season(days) if weekly else {}
    effects = {w: _effect(list(diff.values())) for w, diff in differences.items()}
    level = [(d, y - effects.get(_weekday(d), 0.0)) for d, y in days]
    center = _forecast(level, today) + effects.get(_weekday(today), 0.0)
    sigma = _spread(points, level, differences)
    floor = max(RELATIVE_FLOOR * abs(math.exp(center) if log else center), RESOLUTION[metric] / 2)
    if log:
        floor = math.log1p(floor / math.exp(center))
    sigma = max(sigma, floor, 1e-12)
    return _Baseline(center, sigma, log, weekly, _weekday(today), seen, len(days))


def _daily(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """One value a day, the median of its points, in date order."""
    by_day: dict[int, list[float]] = defaultdict(list)
    for day, value in points:
        by_day[day].append(value)
    return [(day, median(values)) for day, values in sorted(by_day.items())]


def _weekday(ordinal: int) -> int:
    return (ordinal - 1) % 7  # date.fromordinal(1) is a Monday


def _season(days: list[tuple[int, float]]) -> dict[int, dict[int, float]]:
    """Per weekday, each of its days' difference from the median of its week (the 7 days
    around it, shifted to lie inside the history): their median is the weekday's effect."""
    ordinals = [d for d, _ in days]
    first, last = ordinals[0], ordinals[-1]
    if last - first < 6:
        return {}
    differences: dict[int, dict[int, float]] = defaultdict(dict)
    for day, value in days:
        start = min(max(day - 3, first), last - 6)
        week = [
            y for _, y in days[bisect_left(ordinals, start) : bisect_right(ordinals, start + 6)]
        ]
        differences[_weekday(day)][day] = value - median(week)
    return differences


def _effect(differences: list[float]) -> float:
    """A weekday's effect: the median of its differences, or of two the one nearer 0 (their
    median is their mean, which one anomalous day would drag halfway)."""
    if len(differences) == 2:
        return min(differences, key=abs)
    return median(differences)


def _forecast(level: list[tuple[int, float]], today: int) -> float:
    """The median of the last `LEVEL` days, moved to `today` along the recent slope (at
    most `LEVEL` days: after a long gap the trend is not extrapolated further)."""
    recent = level[-LEVEL:]
    center = median(y for _, y in recent)
    ahead = min(today - median(d for d, _ in recent), LEVEL)
    return center + _slope([(d, y) for d, y in level if d > level[-1][0] - TREND]) * ahead


def _slope(days: list[tuple[int, float]]) -> float:
    """The trend per day, if both halves of `days` agree on it: the smaller of their
    Theil-Sen slopes when they have the same sign, else 0. A level shift is a steep slope in
    one half only, so it is not taken for a trend (0 with fewer than 10 days)."""
    if len(days) < 10:
        return 0.0
    half = len(days) // 2
    early, late = _theil_sen(days[:half]), _theil_sen(days[half:])
    return min(early, late, key=abs) if early * late > 0 else 0.0


def _theil_sen(days: list[tuple[int, float]]) -> float:
    """The median of the slopes between every two days."""
    return median(
        (y2 - y1) / (d2 - d1)
        for i, (d1, y1) in enumerate(days)
        for d2, y2 in days[i + 1 :]
        if d2 > d1
    )


def _spread(
    points: list[tuple[int, float]],
    level: list[tuple[int, float]],
    differences: dict[int, dict[int, float]],
) -> float:
    """1.4826 x MAD of each point against what the other days say of it: the median of the
    deseasonalized days within 3 of its own, plus its weekday's effect from the other days
    of that weekday. Leaving its own day out makes these out-of-sample errors, like the
    current value's: with few weeks of history the spread is wider, as it should be."""
    ordinals = [d for d, _ in level]
    effects = {
        day: _effect([e for other, e in diff.items() if other != day])
        for diff in differences.values()
        if len(diff) > 1
        for day in diff
    }
    errors = []
    for day, value in points:
        around = level[bisect_left(ordinals, day - 3) : bisect_right(ordinals, day + 3)]
        others = [y for d, y in around if d != day]
        if others and (day in effects or not differences):
            errors.append(value - median(others) - effects.get(day, 0.0))
    if not errors:
        return 0.0
    mid = median(errors)
    return MAD_TO_SIGMA * median(abs(e - mid) for e in errors)


def _verdict(
    value: float,
    base: _Baseline,
    k: float,
    metric: str,
    said: _Sayer,
) -> Verdict:
    back: Callable[[float], float] = math.exp if base.log else float
    expected, low, high = (back(base.center + s * k * base.sigma) for s in (0, -1, 1))
    if base.log and value <= 0:  # a positive metric gone to 0: far below, in linear units
        score = (value - expected) / (expected * -math.expm1(-base.sigma))
    else:
        score = ((math.log(value) if base.log else value) - base.center) / base.sigma
    low, high = _clamp(metric, low), _clamp(metric, high)
    anomalous = abs(score) > k
    band = _band(value, low, high, anomalous, said)
    name = WEEKDAYS[base.weekday]
    where = f"for a {name} ({base.seen} earlier {name}s)" if base.weekly else f"({base.days} days)"
    text = f"{said(value)} {'vs' if anomalous else 'within'} expected {band} {where}"
    return Verdict(
        "anomaly" if anomalous else "ok", value, expected, low, high, round(score, 2), text
    )


def _clamp(metric: str, bound: float) -> float:
    if metric == "mean":
        return bound
    return min(max(bound, 0.0), 1.0) if metric == "nulls" else max(bound, 0.0)


def _band(value: float, low: float, high: float, anomalous: bool, said: _Sayer) -> str:
    """`low`-`high` rounded to the fewest digits (from 3) that still show the value inside
    or outside, as it is judged: "9,800-10,400"."""
    for digits in range(3, 10):
        places = digits - 1 - _magnitude(max(abs(low), abs(high)))
        lo, hi = round(low, places), round(high, places)
        if (value < lo or value > hi) == anomalous:
            break
    if said.metric == "freshness":  # shown in minutes, hours, days
        return f"{_age(low)}{DASH}{_age(high)}"
    return f"{said.bare(lo)}{DASH}{said.bare(hi)}"


def _magnitude(x: float) -> int:
    return math.floor(math.log10(x)) if x > 0 else 0


class _Sayer:
    """A metric's value in words: "rows 1,204", "nulls in email 12.5%", "5h 10m old"; `bare`
    shows a bound already rounded by `_band` as it is."""

    def __init__(self, metric: str, target: str) -> None:
        self.metric = metric
        column = "" if target in ("*", "") else target
        self.prefix = {
            "rows": "rows",
            "freshness": "",
            "nulls": f"nulls in {column}" if column else "nulls",
            "distinct": f"distinct {column}" if column else "distinct values",
            "mean": f"mean {column}" if column else "mean",
        }[metric]

    def __call__(self, value: float) -> str:
        if self.metric == "freshness":
            return f"{_age(value)} old"
        if self.metric == "nulls":
            return f"{self.prefix} {_number(value * 100, 4)}%"
        if self.metric in ("rows", "distinct") and float(value).is_integer():
            return f"{self.prefix} {value:,.0f}"
        return f"{self.prefix} {_number(value, 4)}"

    def bare(self, value: float) -> str:
        if self.metric == "freshness":
            return _age(value)
        if self.metric == "nulls":
            return f"{value * 100:,.10g}%"
        return f"{value:,.10g}"


def _number(x: float, digits: int) -> str:
    """`x` to `digits` significant digits (no trailing zeros), with thousands separators."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    places = max(digits - 1 - math.floor(math.log10(abs(x))), 0)
    text = f"{round(x, places):,.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _age(seconds: float) -> str:
    """An age in the two largest units that matter: 45s, 55m, 1h 20m, 2d 3h."""
    s = round(max(seconds, 0.0))
    if s < 60:
        return f"{s}s"
    minutes, hours, days = round(s / 60), s // 3600, s // 86400
    if minutes < 60:
        return f"{minutes}m"
    if days == 0:
        m = round((s - hours * 3600) / 60)
        hours, m = (hours + 1, 0) if m == 60 else (hours, m)
        return f"{hours}h {m}m" if m else f"{hours}h"
    h = round((s - days * 86400) / 3600)
    days, h = (days + 1, 0) if h == 24 else (days, h)
    return f"{days}d {h}h" if h else f"{days}d"
