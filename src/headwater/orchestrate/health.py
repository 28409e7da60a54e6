"""What `headwater report` shows, read from the catalog: each table's profiles (its rows and
column metrics per batch or version), its rule results (drift bins, anomaly verdicts) and the
recent runs — as the plain data of `observe.report`. No value of a PII column leaves here."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from headwater.observe.report import (
    Bin,
    ColumnHistory,
    Health,
    Profiled,
    RuleResult,
    RunSummary,
    TableHealth,
)
from headwater.quality.profile import ColumnStats, TableProfile

if TYPE_CHECKING:
    from headwater.contracts import Rule
    from headwater.project import Project
    from headwater.zones.catalog import Catalog, StoredProfile


def report_tables(project: Project) -> list[str]:
    """The tables a report covers: every raw table, seed and model, by name."""
    return sorted({*project.raw_tables, *project.models})


def gather(
    project: Project,
    catalog: Catalog,
    *,
    now: datetime,
    tables: Iterable[str] | None = None,
    history: int = 30,
    runs: bool = True,
) -> Health:
    """The health of `tables` (all of them: `report_tables`): up to `history` profiles each and
    `history` results of each rule, and (`runs`) the last `history` runs.

    Example:
        >>> gather(project, catalog, now=now, tables=["raw.orders"], history=10).tables[0].name
        'raw.orders'
    """
    names = report_tables(project) if tables is None else list(tables)
    return Health(
        project=project.settings.name,
        generated_at=now.astimezone(UTC),
        history=history,
        tables=[_table(project, catalog, name, history) for name in names],
        runs=_runs(catalog, history) if runs else [],
    )


def summary(health: Health) -> list[dict[str, Any]]:
    """Per table, what `headwater report` prints: its newest profile, the rules whose newest
    result failed, and its open anomalies and drift (the newest result of such a rule)."""
    out = []
    for table in health.tables:
        newest = table.profiles[-1] if table.profiles else None
        failing = table.failing()
        out.append(
            {
                "table": table.name,
                "rows": newest.rows if newest else None,
                "profiled_at": newest.at.isoformat() if newest else None,
                "profile": f"{newest.kind} {newest.ref}" if newest else None,
                "rules": len(table.newest()),
                "failing": [_said(r) for r in failing],
                "anomalies": [_said(r) for r in failing if r.type == "anomaly"],
                "drift": [_said(r) for r in failing if r.type == "drift"],
            }
        )
    return out


def _said(result: RuleResult) -> dict[str, Any]:
    return {
        "rule": result.rule,
        "type": result.type,
        "severity": result.severity,
        "at": result.at.isoformat(),
        "metric": result.metric,
        "explanation": result.explanation,
    }


def _table(project: Project, catalog: Catalog, name: str, history: int) -> TableHealth:
    stored = catalog.profile_history(name, limit=history)
    profiles = [TableProfile.from_json(p.rows, p.columns) for p in stored]
    hidden = _pii(project, name, profiles)
    return TableHealth(
        name=name,
        profiles=[_profiled(p) for p in stored],
        columns=_columns(profiles, hidden),
        results=_results(catalog, name, history, rules=_rules(project, name), hidden=hidden),
    )


def _profiled(stored: StoredProfile) -> Profiled:
    return Profiled(
        at=_utc(stored.profiled_at),
        kind=stored.kind,
        ref=stored.ref,
        rows=stored.rows,
        run_id=stored.run_id,
    )


def _pii(project: Project, name: str, profiles: list[TableProfile]) -> set[str]:
    """The columns whose values are never shown: tagged PII in the contract, or profiled as
    hidden in any profile read (a model's PII columns are known to its profile)."""
    hidden = {n for p in profiles for n, s in p.columns.items() if not s.shown}
    contract = project.raw_tables.get(name)
    if contract is not None:
        hidden |= {c.name for c in contract.columns if c.pii}
    return hidden


def _columns(profiles: list[TableProfile], hidden: set[str]) -> list[ColumnHistory]:
    if not profiles:
        return []
    out = []
    for name, stats in profiles[-1].columns.items():
        column = [p.columns.get(name) for p in profiles]
        nulls = [s.nulls if s else None for s in column]
        if name in hidden or not stats.shown:
            out.append(ColumnHistory(name, stats.kind, False, nulls, distinct=stats.distinct))
            continue
        out.append(
            ColumnHistory(
                name,
                stats.kind,
                True,
                nulls,
                distinct=stats.distinct,
                minimum=stats.min,
                maximum=stats.max,
                means=[s.mean if s else None for s in column],
                medians=[_quantile(s, "p50") for s in column],
                lows=[_quantile(s, "p5") for s in column],
                highs=[_quantile(s, "p95") for s in column],
                histogram=stats.histogram() if stats.kind == "number" else None,
                top=list(stats.top or []),
            )
        )
    return out


def _quantile(stats: ColumnStats | None, key: str) -> float | None:
    if stats is None or stats.kind != "number":
        return None
    value = (stats.quantiles or {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def _rules(project: Project, name: str) -> list[Rule]:
    contract = project.raw_tables.get(name)
    if contract is not None:
        return list(contract.rules)
    model = project.models.get(name)
    return model.rules if model is not None else []


def _results(
    catalog: Catalog, name: str, history: int, *, rules: list[Rule], hidden: set[str]
) -> list[RuleResult]:
    """Up to `history` results of each rule of `name`, oldest first (rules since removed
    from the project included: their results are history too). A drift rule on a PII column
    keeps no bins (their labels would be its values)."""
    found = catalog.check_history(name, limit=max(len(rules), 1) * history * 2)
    on_pii = {r.name for r in rules if hidden & set(r.columns)}
    kept: dict[str, int] = {}
    out = []
    for row in found:  # newest first
        if kept.setdefault(row["rule"], 0) >= history:
            continue
        kept[row["rule"]] += 1
        out.append(_result(row, binned=row["rule"] not in on_pii))
    return sorted(out, key=lambda r: r.at)


def _result(row: dict[str, Any], *, binned: bool) -> RuleResult:
    first = (row["sql"] or "").split("\n", 1)[0]
    explanation = first[3:].strip() if first.startswith("-- ") else ""
    bins = _bins(row["samples"]) if binned and row["type"] == "drift" else ()
    return RuleResult(
        rule=row["rule"],
        type=row["type"],
        severity=row["severity"],
        passed=bool(row["passed"]),
        at=_utc(row["checked_at"]),
        run_id=row["run_id"],
        metric=row["metric"],
        threshold=row["threshold"],
        explanation=explanation,
        bins=bins,
    )


def _bins(samples: str | None) -> tuple[Bin, ...]:
    """A drift result's bins: (label, reference share, current share) each."""
    try:
        found = json.loads(samples or "[]")
    except ValueError:
        return ()
    if not isinstance(found, list):
        return ()
    out = []
    for item in found:
        if not isinstance(item, dict) or not {"bin", "reference", "current"} <= item.keys():
            return ()  # not a drift bin: a row sample, never shown
        out.append(Bin(str(item["bin"]), float(item["reference"]), float(item["current"])))
    return tuple(out)


def _runs(catalog: Catalog, history: int) -> list[RunSummary]:
    out = []
    for run in catalog.run_history(limit=history):
        started, ended = _utc(run["started_at"]), run.get("ended_at")
        out.append(
            RunSummary(
                run_id=run["run_id"],
                command=run["command"],
                status=run["status"],
                started_at=started,
                seconds=(_utc(ended) - started).total_seconds() if ended else None,
                landed=int(run.get("landed") or 0),
                quarantined=int(run.get("quarantined") or 0),
                rules_failed=sum(run.get("rules_failed", {}).values()),
            )
        )
    return out


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
