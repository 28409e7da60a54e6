"""Time intervals of incremental models, kept as merged `[start, end)` ranges.

A year of hourly intervals done is a handful of ranges; "what is missing" and "what late data
touched" are range arithmetic, not loops over intervals. Times are naive UTC datetimes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from headwater.contracts.specs import IntervalUnit
from headwater.contracts.thresholds import parse_duration

Range = tuple[datetime, datetime]
_TICK = timedelta(microseconds=1)
_STEP = {
    IntervalUnit.HOUR: timedelta(hours=1),
    IntervalUnit.DAY: timedelta(days=1),
    IntervalUnit.WEEK: timedelta(weeks=1),
}


def utc(value: datetime | str) -> datetime:
    """A naive UTC datetime from an aware or naive datetime, or an ISO string."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def floor(moment: datetime, unit: IntervalUnit) -> datetime:
    """The start of the interval holding `moment` (weeks start on Monday)."""
    if unit is IntervalUnit.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday()) if unit is IntervalUnit.WEEK else day


def covering(lo: datetime, hi: datetime, unit: IntervalUnit) -> Range:
    """The whole intervals covering every moment in `[lo, hi)`."""
    return floor(lo, unit), floor(hi - _TICK, unit) + _STEP[unit]


def merge(ranges: Iterable[Range]) -> list[Range]:
    """Sorted, non-overlapping ranges; touching ranges join.

    >>> d = datetime
    >>> merge([(d(2026, 1, 3), d(2026, 1, 4)), (d(2026, 1, 1), d(2026, 1, 3))])
    [(datetime.datetime(2026, 1, 1, 0, 0), datetime.datetime(2026, 1, 4, 0, 0))]
    """
    out: list[Range] = []
    for lo, hi in sorted(r for r in ranges if r[0] < r[1]):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def subtract(ranges: Iterable[Range], minus: Iterable[Range]) -> list[Range]:
    """The parts of `ranges` not covered by `minus`."""
    out: list[Range] = []
    cut = merge(minus)
    for lo, hi in merge(ranges):
        for c_lo, c_hi in cut:
            if c_hi <= lo or c_lo >= hi:
                continue
            if c_lo > lo:
                out.append((lo, c_lo))
            lo = max(lo, c_hi)
            if lo >= hi:
                break
        if lo < hi:
            out.append((lo, hi))
    return out


def intersect(ranges: Iterable[Range], within: Iterable[Range]) -> list[Range]:
    """The parts of `ranges` inside `within`."""
    inside = merge(within)
    return merge(
        (max(lo, w_lo), min(hi, w_hi))
        for lo, hi in merge(ranges)
        for w_lo, w_hi in inside
        if max(lo, w_lo) < min(hi, w_hi)
    )


def batches(ranges: Iterable[Range], unit: IntervalUnit, size: int) -> list[Range]:
    """Split aligned ranges into runs of at most `size` intervals (one query each)."""
    span = _STEP[unit] * size
    out: list[Range] = []
    for lo, hi in merge(ranges):
        while lo < hi:
            out.append((lo, min(lo + span, hi)))
            lo = min(lo + span, hi)
    return out


def count(ranges: Iterable[Range], unit: IntervalUnit) -> int:
    """How many intervals `ranges` hold."""
    return sum(round((hi - lo) / _STEP[unit]) for lo, hi in merge(ranges))


def parse_lookback(text: str, unit: IntervalUnit) -> timedelta:
    """A lookback duration rounded up to whole intervals ("36 hours" by day → 2 days)."""
    seconds = parse_duration(text)
    size = _STEP[unit].total_seconds()
    return _STEP[unit] * max(1, math.ceil(seconds / size))
