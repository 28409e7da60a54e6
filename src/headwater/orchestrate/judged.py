"""The rules judged against history rather than by a scan of the rows alone: `anomaly` (a
metric against its own history, from the catalog's profiles) and `drift` (a column's
distribution against the previous batch or version, or a window of batches)."""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from headwater.contracts import Rule, RuleType
from headwater.contracts.thresholds import parse_threshold
from headwater.engine.base import Engine
from headwater.errors import Location, SpecError
from headwater.quality import CheckResult
from headwater.quality.anomaly import Point, judge
from headwater.quality.drift import Relation, drift
from headwater.quality.profile import TableProfile
from headwater.zones.catalog import Catalog, StoredProfile

JUDGED = (RuleType.DRIFT, RuleType.ANOMALY)
HISTORY = 400  # profiles read for an anomaly rule: over a year of daily batches


@dataclass(frozen=True)
class Judging:
    """What a table's judged rules need: its rows (`current`) and, for drift, what they are
    compared with, by a rule's `reference:` (previous, or a window such as 7d); None:
    nothing yet — the first batch or version)."""

    label: str  # the logical name: raw.orders, marts.revenue
    current: Relation
    reference: Callable[[str], Relation | None]
    columns: dict[str, str]  # name → engine type


def nothing(_: str) -> Relation | None:
    """No reference: the rows have nothing before them to be compared with."""
    return None


def check_targets(rules: Sequence[tuple[int, Rule]], judging: Judging) -> None:
    """Refuse a judged rule whose column the table lacks, naming `rules[i].target`."""
    names = list(judging.columns)
    for index, rule in rules:
        for column in rule.columns:
            if column not in judging.columns:
                close = difflib.get_close_matches(column, names, n=1)
                raise SpecError(
                    f"rule {rule.name!r}: target column {column!r} does not exist in "
                    f"{judging.label}",
                    where=Location("", None, f"rules[{index}].target"),
                    hint=f"did you mean {close[0]!r}?"
                    if close
                    else f"columns are: {', '.join(names)}",
                )


def evaluate_judged(
    rules: Sequence[Rule],
    judging: Judging,
    *,
    engine: Engine,
    catalog: Catalog,
    profile: TableProfile | None,
    now: datetime,
    pii: Collection[str] = (),
) -> list[CheckResult]:
    """The results of the drift and anomaly `rules`; `profile` is the rows' own (anomaly
    rules need it: the metrics they judge come from it). A drift result's samples are its
    bins (label, reference share, current share) — none of a `pii` column, whose values and
    ranges its result never shows."""
    out = []
    history: list[StoredProfile] | None = None
    for rule in rules:
        if rule.type is RuleType.DRIFT:
            out.append(_drift(rule, judging, engine, hidden=rule.columns[0] in pii))
        else:
            if history is None:
                history = catalog.profile_history(judging.label, limit=HISTORY, before=now)
            out.append(_anomaly(rule, judging.label, profile, history, now))
    return out


def _drift(rule: Rule, judging: Judging, engine: Engine, *, hidden: bool) -> CheckResult:
    column = rule.columns[0]
    reference = judging.reference(rule.reference)
    if reference is None:
        return CheckResult(
            rule,
            judging.label,
            None,
            True,
            f"-- drift of {column}: nothing to compare with yet (the first batch or version)",
            _threshold(rule) or "default",
        )
    found = drift(
        engine,
        column,
        judging.columns[column],
        judging.current,
        reference,
        method=rule.method,
        bins=rule.bins,
        threshold=_float(rule.threshold),
    )
    if hidden:
        said = (
            f"{found.method} {found.statistic:.3g} on {column} (threshold {found.threshold:g}); "
            "a PII column: its values and ranges are not shown"
        )
        bins: list[dict[str, Any]] = []
    else:
        said = found.explanation
        bins = [
            {"bin": b.label, "reference": b.reference, "current": b.current} for b in found.bins
        ]
    return CheckResult(
        rule,
        judging.label,
        found.statistic,
        found.passed,
        f"-- {said}\n{found.sql}",
        f"{found.method} {found.threshold:g}",
        bins,
    )


def _anomaly(
    rule: Rule,
    label: str,
    profile: TableProfile | None,
    history: list[StoredProfile],
    now: datetime,
) -> CheckResult:
    metric = rule.metric
    assert metric is not None  # the spec requires it
    column = rule.columns[0] if rule.columns else None
    current = _value(metric, column, profile, history, now)
    if current is None:
        return CheckResult(
            rule,
            label,
            None,
            True,
            f"-- anomaly: no {metric} of {column or label} measured in this run",
            _threshold(rule) or "default",
        )
    points = _history(metric, column, history)
    verdict = judge(
        points,
        Point(now, current),
        metric=metric,
        target=column or "*",
        season=rule.season,
        warmup=rule.warmup,
        threshold=_float(rule.threshold),
    )
    return CheckResult(
        rule,
        label,
        current,
        verdict.status != "anomaly",
        f"-- {verdict.explanation}",
        _threshold(rule) or "default",
    )


def _value(
    metric: str,
    column: str | None,
    profile: TableProfile | None,
    history: list[StoredProfile],
    now: datetime,
) -> float | None:
    """The metric now: from the rows' profile, or (freshness) the time since the last
    batch or version before this one."""
    if metric == "freshness":
        return (now - history[-1].profiled_at).total_seconds() if history else None
    if profile is None:
        return None
    if metric == "rows":
        return float(profile.rows)
    stats = profile.columns.get(column or "")
    value = None if stats is None else getattr(stats, metric)
    return float(value) if isinstance(value, int | float) else None


def _history(metric: str, column: str | None, history: list[StoredProfile]) -> list[Point]:
    """The metric at each earlier profile (freshness: the time each batch came after the
    one before it)."""
    if metric == "freshness":
        return [
            Point(b.profiled_at, (b.profiled_at - a.profiled_at).total_seconds())
            for a, b in itertools.pairwise(history)
        ]
    if metric == "rows":
        return [Point(p.profiled_at, float(p.rows)) for p in history]
    out = []
    for stored in history:
        stats = TableProfile.from_json(stored.rows, stored.columns).columns.get(column or "")
        value = None if stats is None else getattr(stats, metric)
        if isinstance(value, int | float):
            out.append(Point(stored.profiled_at, float(value)))
    return out


def _float(threshold: float | int | str | None) -> float | None:
    return None if threshold is None else parse_threshold(threshold)


def _threshold(rule: Rule) -> str | None:
    return None if rule.threshold is None else str(rule.threshold)
