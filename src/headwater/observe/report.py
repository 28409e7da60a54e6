"""The health report of `headwater report --html`: ONE self-contained HTML page — Chart.js and
every number inlined, nothing fetched when it is viewed — drawn from plain data (`Health`).
The text parts (tables, explanations) read without JavaScript; the charts need it."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

ASSETS = Path(__file__).with_name("report_assets")
CHART_JS = "chart.umd.min.js"  # Chart.js 4.6.1 (MIT), vendored from npm: see its LICENSE file
# what JSON leaves as it is and a script must not hold: `</script>`, `<!--`, and the two line
# separators older parsers end a statement at
ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
# the banners of the minified bundle (`/*! … */`) name web addresses; the page carries the
# licenses' full text instead
BANNER = re.compile(r"/\*!.*?\*/", re.DOTALL)
OK, BAD, MUTED = "#2f7d4f", "#c62828", "#8a94a6"
PALETTE = ("#1f6fb2", "#e07b00", "#2f9e8f", "#8e5bb5", "#b5485d", "#5d7a1f", "#a0522d", "#4b5563")
PASSED, FAILED = "\u2713", "\u2717"  # ✓ ✗


@dataclass(frozen=True)
class Profiled:
    """One profile of a table: a landed batch or a built version."""

    at: datetime
    kind: str  # batch | version
    ref: str
    rows: int
    run_id: str | None = None


@dataclass(frozen=True)
class ColumnHistory:
    """One column over a table's profiles (each list: one value per profile, oldest first).
    A column not `shown` (PII) has counts only: its values are never drawn or listed."""

    name: str
    kind: str  # number | time | bool | text | other
    shown: bool
    nulls: list[float | None]
    distinct: int | None = None  # the newest profile's, as the others below
    minimum: Any = None
    maximum: Any = None
    means: list[float | None] = field(default_factory=list)
    medians: list[float | None] = field(default_factory=list)
    lows: list[float | None] = field(default_factory=list)  # 5th percentile
    highs: list[float | None] = field(default_factory=list)  # 95th percentile
    histogram: list[tuple[Any, Any]] | None = None  # equi-depth bins, a tenth of values each
    top: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Bin:
    """One bin of a drift comparison: its share of the reference and of the current rows."""

    label: str
    reference: float
    current: float


@dataclass(frozen=True)
class RuleResult:
    """One rule's result in one run; `explanation`: what it said (drift, anomaly, metadata)."""

    rule: str
    type: str
    severity: str
    passed: bool
    at: datetime
    run_id: str
    metric: float | None = None
    threshold: str | None = None
    explanation: str = ""
    bins: tuple[Bin, ...] = ()


@dataclass(frozen=True)
class TableHealth:
    """A table's profiles and rule results, oldest first."""

    name: str
    profiles: list[Profiled]
    columns: list[ColumnHistory]
    results: list[RuleResult]

    def newest(self) -> dict[str, RuleResult]:
        """Each rule's newest result."""
        return {r.rule: r for r in self.results}

    def failing(self) -> list[RuleResult]:
        """The rules whose newest result failed."""
        return [r for r in self.newest().values() if not r.passed]

    def anomalies(self) -> list[RuleResult]:
        """Every failed result of an anomaly rule, oldest first."""
        return [r for r in self.results if r.type == "anomaly" and not r.passed]


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    command: str
    status: str
    started_at: datetime
    seconds: float | None
    landed: int = 0
    quarantined: int = 0
    rules_failed: int = 0


@dataclass(frozen=True)
class Health:
    """Everything the report shows."""

    project: str
    generated_at: datetime
    history: int  # profiles and results read per table
    tables: list[TableHealth]
    runs: list[RunSummary] = field(default_factory=list)


def render_report(health: Health) -> str:
    """The page of `health`: one HTML string, its scripts and styles inline (allowed by hash
    in its Content-Security-Policy, which forbids every fetch).

    Example:
        >>> page = render_report(Health("shop", now, 30, tables=[...]))
        >>> "https://" in page
        False
    """
    charts = _Charts()
    body = "\n".join(
        [
            _header(health),
            '<main class="report">',
            _runs(health.runs, charts) if health.runs else "",
            *(_table(i, t, charts) for i, t in enumerate(health.tables)),
            "</main>",
        ]
    )
    data = _json({"project": health.project, "charts": charts.specs})
    style = _asset("report.css")
    scripts = [_chart_js(), _asset("report.js")]
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src " + " ".join(_hash(s) for s in scripts),
            f"style-src {_hash(style)}",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )
    return "".join(
        [
            '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n',
            '<meta name="referrer" content="no-referrer">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            '<meta name="generator" content="headwater report">\n',
            f"<title>{_e(health.project)} \u2014 data health report</title>\n",
            f"<style>{style}</style>\n</head>\n<body>\n{body}\n",
            f'<script type="application/json" id="hw-report-data">{data}</script>\n',
            *(f"<script>{s}</script>\n" for s in scripts),
            "</body>\n</html>\n",
        ]
    )


def chart_count(page: str) -> int:
    """How many charts `page` (from `render_report`) draws."""
    return page.count('<canvas class="chart"')


# --- the page's parts ------------------------------------------------------------------------


class _Charts:
    """The charts of the page, in order: each a canvas in the page and a spec in its data."""

    def __init__(self) -> None:
        self.specs: list[dict[str, Any]] = []

    def add(self, title: str, spec: dict[str, Any], *, wide: bool = False) -> str:
        chart_id = f"c{len(self.specs)}"
        self.specs.append({"id": chart_id, "title": title, **spec})
        size = "figure wide" if wide else "figure"
        return (
            f'<figure class="{size}"><figcaption>{_e(title)}</figcaption><div class="frame">'
            f'<canvas class="chart" data-chart="{chart_id}" role="img" '
            f'aria-label="{_e(title)}"></canvas></div></figure>'
        )


def _header(health: Health) -> str:
    toc = [f'<li><a href="#runs">Runs</a> ({len(health.runs)})</li>'] if health.runs else []
    for i, table in enumerate(health.tables):
        failing, anomalies = len(table.failing()), len(table.anomalies())
        badges = "".join(
            [
                f' <span class="badge bad">{failing} failing</span>' if failing else "",
                f' <span class="badge warn">{anomalies} anomal{"y" if anomalies == 1 else "ies"}'
                "</span>"
                if anomalies
                else "",
            ]
        )
        toc.append(f'<li><a href="#t{i}">{_e(table.name)}</a>{badges}</li>')
    return (
        f'<header class="top"><h1><span class="project">{_e(health.project)}</span> '
        "data health report</h1>"
        f'<p class="meta" data-testid="generated">Generated {_when(health.generated_at)} UTC '
        f"\u00b7 {len(health.tables)} table{'s' if len(health.tables) != 1 else ''} "
        f"\u00b7 up to {health.history} profiles and results per rule and table</p>"
        '<noscript><p class="note">The charts are drawn by the JavaScript inside this page; '
        "the tables below read without it.</p></noscript>"
        f'<nav class="toc" aria-label="Contents"><h2>Contents</h2><ol>{"".join(toc)}</ol></nav>'
        "</header>"
    )


def _runs(runs: list[RunSummary], charts: _Charts) -> str:
    ordered = sorted(runs, key=lambda r: r.started_at)
    colors = [OK if r.status == "success" else BAD for r in ordered]
    chart = charts.add(
        "Run duration (seconds)",
        {
            "type": "bar",
            "labels": [_when(r.started_at) for r in ordered],
            "datasets": [
                {
                    "label": "seconds",
                    "data": [_num(r.seconds) for r in ordered],
                    "backgroundColor": colors,
                    "maxBarThickness": 48,
                    "notes": [f"{r.command}: {r.status}" for r in ordered],
                }
            ],
        },
        wide=True,
    )
    rows = [
        [
            _when(r.started_at),
            r.command,
            (r.status, "ok" if r.status == "success" else "bad"),
            _seconds(r.seconds),
            f"{r.landed:,}",
            f"{r.quarantined:,}",
            f"{r.rules_failed:,}",
        ]
        for r in reversed(ordered)
    ]
    head = ["started (UTC)", "command", "status", "#seconds", "#rows landed", "#quarantined"]
    return (
        f'<section id="runs" class="table-section"><h2>Runs</h2>{chart}'
        f"{_grid('runs', [*head, '#rules failed'], rows)}</section>"
    )


def _table(index: int, table: TableHealth, charts: _Charts) -> str:
    parts = [f'<section id="t{index}" class="table-section"><h2>{_e(table.name)}</h2>']
    if table.profiles:
        newest = table.profiles[-1]
        parts.append(
            f'<p class="meta">newest {_e(newest.kind)} <code>{_e(newest.ref)}</code>: '
            f"{newest.rows:,} rows, profiled {_when(newest.at)} UTC \u00b7 "
            f"{len(table.profiles)} profile{'s' if len(table.profiles) != 1 else ''} shown</p>"
        )
        parts.append(_rows_chart(table, charts))
    else:
        parts.append(
            '<p class="note">No profile yet: one is made each time a batch lands or a version '
            "is built (<code>headwater run</code>).</p>"
        )
    parts += [_anomalies(table, charts), _drift(table, charts), _rules(table)]
    if table.columns:
        parts += [_columns(table), _column_charts(table, charts)]
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def _rows_chart(table: TableHealth, charts: _Charts) -> str:
    """Rows per batch or version, each point of a run with an anomaly marked and explained."""
    said: dict[str, list[str]] = {}
    for result in table.anomalies():
        said.setdefault(result.run_id, []).append(f"{result.rule}: {result.explanation}")
    notes = [" \u00b7 ".join(said.get(p.run_id or "", [])) or None for p in table.profiles]
    return charts.add(
        f"{table.name}: rows per {'batch' if table.profiles[-1].kind == 'batch' else 'version'}",
        {
            "type": "line",
            "labels": [_when(p.at) for p in table.profiles],
            "datasets": [_series("rows", [float(p.rows) for p in table.profiles], 0, notes)],
        },
        wide=True,
    )


def _anomalies(table: TableHealth, charts: _Charts) -> str:
    rules = [r for r in table.newest().values() if r.type == "anomaly"]
    if not rules:
        return ""
    parts = ['<h3>Anomalies</h3><div class="grid">']
    for rule in rules:
        history = [r for r in table.results if r.rule == rule.rule]
        parts.append(_judged_chart(f"{rule.rule}: the value judged", history, charts))
    parts.append("</div>")
    found = table.anomalies()
    if found:
        rows = [[_when(r.at), r.rule, r.severity, r.explanation] for r in reversed(found)]
        parts.append(_grid("anomalies", ["when (UTC)", "rule", "severity", "what it saw"], rows))
    else:
        parts.append('<p class="ok">No anomaly among the results shown.</p>')
    return "".join(parts)


def _drift(table: TableHealth, charts: _Charts) -> str:
    rules = [r for r in table.newest().values() if r.type == "drift"]
    if not rules:
        return ""
    parts = ["<h3>Drift</h3>"]
    for newest in rules:
        history = [r for r in table.results if r.rule == newest.rule]
        verdict = "ok" if newest.passed else "bad"
        parts.append(
            f'<h4>{_e(newest.rule)} <span class="{verdict}">'
            f"{'passed' if newest.passed else 'drifted'}</span></h4>"
            f'<p class="explanation">{_e(newest.explanation)}</p><div class="grid">'
        )
        parts.append(_judged_chart(f"{newest.rule}: statistic", history, charts))
        if newest.bins:
            parts.append(_bins_chart(newest, charts))
        parts.append("</div>")
    return "".join(parts)


def _judged_chart(title: str, history: list[RuleResult], charts: _Charts) -> str:
    """A rule's metric over its results, each failed result marked and explained."""
    notes = [None if r.passed else (r.explanation or "failed") for r in history]
    datasets = [_series("value", [r.metric for r in history], 0, notes)]
    limit = _threshold(history[-1])
    if limit is not None:
        datasets.append(
            {
                "label": "threshold",
                "data": [limit] * len(history),
                "borderColor": MUTED,
                "borderDash": [6, 4],
                "pointRadius": 0,
            }
        )
    return charts.add(
        title, {"type": "line", "labels": [_when(r.at) for r in history], "datasets": datasets}
    )


def _bins_chart(result: RuleResult, charts: _Charts) -> str:
    return charts.add(
        f"{result.rule}: share per bin, newest",
        {
            "type": "bar",
            "y": "share",
            "labels": [b.label for b in result.bins],
            "datasets": [
                {
                    "label": "reference",
                    "data": [_num(b.reference) for b in result.bins],
                    "backgroundColor": MUTED,
                },
                {
                    "label": "current",
                    "data": [_num(b.current) for b in result.bins],
                    "backgroundColor": PALETTE[0],
                },
            ],
        },
    )


def _rules(table: TableHealth) -> str:
    newest = table.newest()
    if not newest:
        return ""
    rows = []
    for name, last in sorted(newest.items()):
        history = [r for r in table.results if r.rule == name]
        strip = "".join(
            f'<span class="{"ok" if r.passed else "bad"}" title="{_when(r.at)}">'
            f"{PASSED if r.passed else FAILED}</span>"
            for r in history
        )
        rows.append(
            [
                name,
                last.type,
                last.severity,
                (_Html(strip), "strip"),
                f"{sum(r.passed for r in history)}/{len(history)}",
                ("passed", "ok") if last.passed else ("failed", "bad"),
                _said(last),
            ]
        )
    head = [
        "rule",
        "type",
        "severity",
        "results, oldest first",
        "#passed",
        "newest",
        "what it said",
    ]
    return f"<h3>Rules</h3>{_grid('rules', head, rows)}"


def _said(result: RuleResult) -> str:
    """What a result says: a drift or anomaly rule in words, any other rule by its value."""
    if result.explanation and (result.type in ("drift", "anomaly") or result.metric is None):
        return result.explanation
    if result.metric is None:
        return ""
    threshold = f" (threshold {result.threshold})" if result.threshold else ""
    return f"value {_plain(result.metric)}{threshold}"


def _columns(table: TableHealth) -> str:
    rows = []
    for c in table.columns:
        nulls = c.nulls[-1] if c.nulls else None
        mean = c.means[-1] if c.means else None
        if c.shown:
            values = [_plain(c.minimum), _plain(c.maximum), _plain(mean)]
            top = ", ".join(_plain(v) for v in c.top)
        else:
            values, top = ["(PII)"] * 3, "(PII: counts only)"
        rows.append([c.name, c.kind, _share(nulls), _plain(c.distinct), *values, top])
    head = ["column", "kind", "#nulls", "#distinct", "#min", "#max", "#mean"]
    return f"<h3>Columns</h3>{_grid('columns', [*head, 'most frequent values'], rows)}"


def _column_charts(table: TableHealth, charts: _Charts) -> str:
    labels = [_when(p.at) for p in table.profiles]
    parts = [
        charts.add(
            f"{table.name}: share of NULLs per column (click a name to hide it)",
            {
                "type": "line",
                "y": "share",
                "labels": labels,
                "datasets": [
                    _series(c.name, c.nulls, i, None) for i, c in enumerate(table.columns)
                ],
            },
            wide=True,
        ),
        '<div class="grid">',
    ]
    for c in table.columns:
        if not c.shown or c.kind != "number":
            continue
        if any(m is not None for m in c.means):
            parts.append(
                _spread_chart(f"{table.name}.{c.name}: mean and spread", c, labels, charts)
            )
        points = _density(c.histogram)
        if points:
            parts.append(
                _density_chart(f"{table.name}.{c.name}: distribution, newest", points, charts)
            )
    parts.append("</div>")
    return "".join(parts)


def _spread_chart(title: str, c: ColumnHistory, labels: list[str], charts: _Charts) -> str:
    band = {"borderColor": "transparent", "pointRadius": 0, "backgroundColor": "#1f6fb222"}
    return charts.add(
        title,
        {
            "type": "line",
            "labels": labels,
            "datasets": [
                {"label": "5th percentile", "data": [_num(v) for v in c.lows], **band},
                {
                    "label": "95th percentile",
                    "data": [_num(v) for v in c.highs],
                    "fill": "-1",
                    **band,
                },
                _series("median", c.medians, 1, None),
                _series("mean", c.means, 0, None),
            ],
        },
    )


def _density_chart(title: str, points: list[tuple[float, float, str]], charts: _Charts) -> str:
    return charts.add(
        title,
        {
            "type": "line",
            "x": "linear",
            "datasets": [
                {
                    "label": "density",
                    "data": [{"x": x, "y": y} for x, y, _ in points],
                    "notes": [note for _, _, note in points],
                    "stepped": "after",
                    "fill": "origin",
                    "borderColor": PALETTE[0],
                    "backgroundColor": "#1f6fb244",
                    "pointRadius": 0,
                }
            ],
        },
    )


def _density(bins: Sequence[tuple[Any, Any]] | None) -> list[tuple[float, float, str]]:
    """The points of an equi-depth histogram drawn as a density (a tenth of the values over
    each bin's width): a bin of no width (a value repeated) gives its tenth to the next one.
    Empty when the bins are not numbers or have no width at all."""
    if not bins or not all(_finite(v) for pair in bins for v in pair):
        return []
    merged: list[tuple[float, float, float]] = []
    pending = 0.0
    for low, high in bins:
        pending += 1 / len(bins)
        if float(high) > float(low):
            merged.append((float(low), float(high), pending))
            pending = 0.0
    if not merged:
        return []
    if pending:
        low, high, mass = merged[-1]
        merged[-1] = (low, high, mass + pending)
    points = [
        (low, mass / (high - low), f"{mass:.0%} of values in {_plain(low)} to {_plain(high)}")
        for low, high, mass in merged
    ]
    return [*points, (merged[-1][1], 0.0, "")]


def _series(
    label: str, values: Sequence[float | None], color: int, notes: list[str | None] | None
) -> dict[str, Any]:
    """A line; its points with a note (an anomaly, a failed rule) drawn large and red."""
    hue = PALETTE[color % len(PALETTE)]
    out: dict[str, Any] = {
        "label": label,
        "data": [_num(v) for v in values],
        "borderColor": hue,
        "backgroundColor": hue,
        "spanGaps": True,
    }
    if notes and any(notes):
        out["notes"] = notes
        out["pointBackgroundColor"] = [BAD if n else hue for n in notes]
        out["pointBorderColor"] = [BAD if n else hue for n in notes]
        out["pointRadius"] = [6 if n else 2 for n in notes]
        out["pointStyle"] = ["triangle" if n else "circle" for n in notes]
    return out


# --- text and data ---------------------------------------------------------------------------


class _Html(str):
    """Markup this module wrote itself: put in a table as it is."""


def _grid(kind: str, head: list[str], rows: list[list[Any]]) -> str:
    """A table of text, every cell escaped but `_Html`; a cell given as (text, class) gets
    that class, a column whose title starts with "#" is numbers (right-aligned)."""
    numeric = [h.startswith("#") for h in head]
    titles = "".join(f"<th>{_e(h.removeprefix('#'))}</th>" for h in head)
    body = []
    for row in rows:
        cells = []
        for value, number in zip(row, numeric, strict=True):
            text, style = value if isinstance(value, tuple) else (value, "n" if number else "")
            shown = text if isinstance(text, _Html) else _e(text)
            cells.append(f'<td class="{style}">{shown}</td>' if style else f"<td>{shown}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<table class="{kind}"><thead><tr>{titles}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _json(data: Any) -> str:
    """`data` as JSON a `<script>` element can hold: nothing in it can end the element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escaped in ESCAPES.items():
        text = text.replace(char, escaped)
    return text


def _hash(text: str) -> str:
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return f"'sha256-{digest}'"


@cache
def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


@cache
def _chart_js() -> str:
    """Chart.js, its banners (web addresses) replaced by the full text of its licenses."""
    code, banners = BANNER.subn("", _asset(CHART_JS))
    notice = _asset("LICENSE.chart.js.txt")
    closing = re.search(r"</script|<!--", code, re.IGNORECASE)
    assert banners == 2 and "*/" not in notice and not closing, "an unexpected Chart.js"
    return f"/*!\n{notice}\n*/\n{code}"


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M}"


def _num(value: float | None) -> float | None:
    """A number JSON can hold (NaN and infinities as gaps)."""
    return float(value) if value is not None and _finite(value) else None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _threshold(result: RuleResult) -> float | None:
    """The number a result's metric was judged against: its threshold, or the one its
    explanation names (a rule left at its default threshold stores "default")."""
    said = re.search(r"\(threshold ([-+0-9.e]+)\)", result.explanation)
    for text in (result.threshold, said.group(1) if said else None):
        try:
            value = float(text or "")
        except ValueError:
            continue
        if math.isfinite(value):
            return value
    return None


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:,.1f}"


def _plain(value: Any) -> str:
    """A value as a person reads it: numbers grouped, moments to the minute."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    text = str(value)
    if "T" in text[:11]:
        try:
            return _when(datetime.fromisoformat(text))
        except ValueError:
            pass
    return text
