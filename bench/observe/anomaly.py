"""Anomaly bench: precision and recall of `quality.anomaly.judge` on synthetic metric histories.

    .venv/bin/python bench/observe/anomaly.py [--series 200] [--days 120] [--seed 7] [--sweep]

Generates `--series` histories of `--days` days, each with:

- a metric: rows, distinct (counts, rounded), nulls (a fraction) or mean;
- a weekly pattern: weekend days at 0.3-0.8 of a weekday, or each weekday at 0.7-1.3, or none;
- a trend: none (half of them), or -0.5% to +1% a day, compounding;
- noise, relative: gaussian (sd 1-8%), heavy (Student t with 4 degrees of freedom scaled to
  the same sd: a 4-sd day every few weeks) or constant (none at all);
- a sampling: daily (one run a day), hourly (24 runs summed or averaged into the day's value:
  an outage or a duplicated load moves only some hours) or irregular (0-3 runs a day at
  random times: gaps of days, several points a day; each run is judged);
- anomalies every 10-30 days from day 21 on: spike (x1.5-3), drop (x0.1-0.6), empty (0;
  for nulls, a column all NULL), shift (x0.4-0.65 or x1.5-2.5 from then on).

Each value is judged against the values before it only (`judge(points[:i], points[i])`,
defaults: weekly season, warm-up 14, threshold `THRESHOLD`). A point is positive when an
anomaly was injected there; a level shift counts on its first day only, and its next 6 days
are not scored either way (flagging them is neither wrong nor needed; from the 8th day the
new level must pass as normal). Everything else is a normal point: a flag there is a false
positive. Anomalies make about 4% of the judged points: precision depends on that share,
so the false-positive rate per normal point is reported too.

Results (defaults, threshold 4.5; 200 series x 120 days; tuned on seed 7, seed 2026 held out
and run only to confirm; CPU time of one `judge` call over ~120 days of history):

                                   seed 7 (tuning)       seed 2026 (held out)
                                   precision  recall     precision  recall
    overall                          0.966     0.987       0.941     0.987
    noise gaussian                   0.983     0.983       0.960     0.982
    noise heavy (t, 4 df)            0.917     0.993       0.898     0.991
    noise constant                   1.000     1.000       0.979     1.000
    sampling daily                   0.977     0.990       0.948     0.990
    sampling hourly                  0.970     0.979       0.937     0.977
    sampling irregular               0.931     0.986       0.922     0.986
    recall spike / drop              0.985 / 0.988         0.977 / 0.980
    recall empty / shift             1.000 / 0.977         1.000 / 0.988
    false positives / normal point   0.0017                0.0031
    judge CPU per point              median 319 us, p99 630 us (both seeds alike)

    threshold     3.0          3.5          4.0          4.5          5.0          6.0
    seed 7     0.802/0.998  0.895/0.994  0.944/0.991  0.967/0.987  0.979/0.980  0.989/0.961
    seed 2026  0.757/0.997  0.845/0.997  0.904/0.988  0.941/0.986  0.961/0.975  0.979/0.955
    (precision/recall, from the same scores: the default is the smallest threshold, in steps
    of 0.5, where every noise kind of seed 7 reaches precision 0.9; 4.0 misses it under
    heavy-tailed noise, 0.87)

`--sweep` prints precision and recall at other thresholds, from the same scores.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from headwater.quality.anomaly import THRESHOLD, Point, judge

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
FIRST = 21  # no anomaly before: warm-up (14) and a week
SHIFT_QUIET = 6  # days after a shift's first that are not scored


@dataclass
class Series:
    metric: str
    noise: str
    sampling: str
    points: list[Point]
    labels: list[str | None]  # the anomaly injected there, "" for none, None: not scored


@dataclass(frozen=True)
class Judged:
    series: Series
    label: str
    score: float
    flagged: bool


def generate(rng: random.Random, days: int) -> Series:
    """One synthetic history (see the module docstring)."""
    metric = rng.choices(["rows", "distinct", "nulls", "mean"], [5, 1, 2, 2])[0]
    noise = rng.choices(["gaussian", "heavy", "constant"], [6, 3, 1])[0]
    sampling = rng.choices(["daily", "hourly", "irregular"], [6, 2, 2])[0]
    level = {
        "rows": 10 ** rng.uniform(2.5, 6),
        "distinct": 10 ** rng.uniform(2, 4),
        "nulls": rng.uniform(0.005, 0.2),
        "mean": rng.uniform(5, 500),
    }[metric]
    weekly = _weekly(rng)
    growth = 0.0 if rng.random() < 0.5 else rng.uniform(-0.005, 0.01)
    sd = 0.0 if noise == "constant" else rng.uniform(0.01, 0.08)
    anomalies = _anomalies(rng, days)
    factor, points, labels = 1.0, [], []
    for day in range(days):
        kind = anomalies.get(day, "")
        if kind == "shift":
            factor *= rng.uniform(0.4, 0.65) if rng.random() < 0.5 else rng.uniform(1.5, 2.5)
        expected = level * weekly[day % 7] * (1 + growth) ** day * factor
        runs = _runs(rng, sampling)
        for n, hour in enumerate(runs):
            value = expected * math.exp(_noise(rng, noise, sd))
            first = n == 0
            if kind and first:
                value = _inject(rng, kind, value, metric, sampling)
            if metric in ("rows", "distinct"):
                value = float(round(value))
            if metric == "nulls":
                value = min(value, 1.0)
            points.append(Point(START + timedelta(days=day, hours=hour), value))
            labels.append(kind if kind and first else _quiet(anomalies, day))
    return Series(metric, noise, sampling, points, labels)


def _weekly(rng: random.Random) -> list[float]:
    shape = rng.choice(["weekend", "weekday", "none"])
    if shape == "weekend":
        low = rng.uniform(0.3, 0.8)
        return [1.0] * 5 + [low, low * rng.uniform(0.8, 1.2)]
    if shape == "weekday":
        return [rng.uniform(0.7, 1.3) for _ in range(7)]
    return [1.0] * 7


def _anomalies(rng: random.Random, days: int) -> dict[int, str]:
    found, day = {}, FIRST + rng.randrange(10)
    while day < days:
        found[day] = rng.choice(["spike", "drop", "empty", "shift"])
        day += rng.randint(10, 30)
    return found


def _quiet(anomalies: dict[int, str], day: int) -> str | None:
    """None on a shift's first day (its first run is labelled "shift") and the next 6 (not
    scored), "" on a normal day or run."""
    shifted = any(anomalies.get(day - back) == "shift" for back in range(1, SHIFT_QUIET + 1))
    return None if shifted or anomalies.get(day) == "shift" else ""


def _runs(rng: random.Random, sampling: str) -> list[float]:
    """The hours of the day's runs: one for daily and hourly (already summed), 0-3 else."""
    if sampling != "irregular":
        return [6 + rng.random() / 6]
    count = rng.choices([0, 1, 2, 3], [1, 4, 3, 2])[0]
    return sorted(rng.uniform(0, 24) for _ in range(count))


def _noise(rng: random.Random, kind: str, sd: float) -> float:
    if kind == "constant":
        return 0.0
    if kind == "gaussian":
        return rng.gauss(0, sd)
    chi = sum(rng.gauss(0, 1) ** 2 for _ in range(4)) / 4  # Student t, 4 df, sd 1
    return sd * rng.gauss(0, 1) / math.sqrt(chi) / math.sqrt(2)


def _inject(rng: random.Random, kind: str, value: float, metric: str, sampling: str) -> float:
    if kind == "empty":
        return 1.0 if metric == "nulls" else 0.0
    if kind == "shift":
        return value  # the new factor is in `expected` already
    if sampling == "hourly" and metric in ("rows", "distinct"):
        hours = rng.randint(9, 24) if kind == "drop" else rng.randint(12, 24)
        share = hours / 24  # an outage of some hours, or some hours loaded twice
        return value * (1 - share * rng.uniform(0.6, 1)) if kind == "drop" else value * (1 + share)
    return value * (rng.uniform(1.5, 3) if kind == "spike" else rng.uniform(0.1, 0.6))


def walk(series: Series, timings: list[float]) -> list[Judged]:
    """Judge every scored point against the points before it."""
    out = []
    for i, (point, label) in enumerate(zip(series.points, series.labels, strict=True)):
        if label is None:
            continue
        history = series.points[:i]
        began = time.thread_time()  # CPU time: other processes on the machine do not count
        verdict = judge(history, point, metric=series.metric)  # type: ignore[arg-type]
        timings.append(time.thread_time() - began)
        if verdict.status != "warming_up":
            assert verdict.score is not None
            out.append(Judged(series, label, verdict.score, verdict.status == "anomaly"))
    return out


def rates(judged: list[Judged], flag: float | None = None) -> tuple[float, float, float, int]:
    """Precision, recall, false-positive rate per normal point, and positives."""
    flagged = [j.flagged if flag is None else abs(j.score) > flag for j in judged]
    tp = sum(f and bool(j.label) for f, j in zip(flagged, judged, strict=True))
    fp = sum(f and not j.label for f, j in zip(flagged, judged, strict=True))
    positives = sum(bool(j.label) for j in judged)
    normal = len(judged) - positives
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / positives if positives else math.nan
    return precision, recall, fp / normal if normal else math.nan, positives


def report(judged: list[Judged], timings: list[float], sweep: bool) -> None:
    p, r, fpr, n = rates(judged)
    print(
        f"overall: precision {p:.3f}  recall {r:.3f}  false positives/normal point "
        f"{fpr:.4f}  ({n} anomalies, {len(judged)} points judged)"
    )
    for axis in ("noise", "sampling", "metric"):
        groups: dict[str, list[Judged]] = defaultdict(list)
        for j in judged:
            groups[getattr(j.series, axis)].append(j)
        for name, group in sorted(groups.items()):
            p, r, fpr, n = rates(group)
            print(
                f"  {axis:8} {name:10} precision {p:.3f}  recall {r:.3f}  fp/normal "
                f"{fpr:.4f}  ({n} anomalies, {len(group)} points)"
            )
    kinds = sorted({j.label for j in judged if j.label})
    for kind in kinds:
        of = [j for j in judged if j.label == kind]
        print(
            f"  kind     {kind:10} recall {sum(j.flagged for j in of) / len(of):.3f}  ({len(of)})"
        )
    micro = sorted(t * 1e6 for t in timings)
    print(
        f"judge CPU time per point: median {statistics.median(micro):.0f} us, mean "
        f"{statistics.fmean(micro):.0f} us, p99 {micro[int(len(micro) * 0.99)]:.0f} us "
        f"({len(micro)} calls, warm-up included)"
    )
    if sweep:
        for flag in (3.0, 3.5, 4.0, 4.5, 5.0, 6.0):
            p, r, fpr, _ = rates(judged, flag)
            print(
                f"  threshold {flag:3.1f}: precision {p:.3f}  recall {r:.3f}  fp/normal {fpr:.4f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sweep", action="store_true", help="also other thresholds")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    judged: list[Judged] = []
    timings: list[float] = []
    for _ in range(args.series):
        judged += walk(generate(rng, args.days), timings)
    print(f"seed {args.seed}, {args.series} series x {args.days} days, threshold {THRESHOLD}")
    report(judged, timings, args.sweep)


if __name__ == "__main__":
    main()
