"""`headwater report [TABLE] --html`: one self-contained page whose charts render in Debian's
chromium with every request but the page's own refused; no PII value and no markup of the
data's text ever reaches it; and the terminal and JSON summaries say what is failing now."""

from __future__ import annotations

import itertools
import json
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from headwater.cli.report import report
from headwater.observe.report import (
    BAD,
    Bin,
    ColumnHistory,
    Health,
    Profiled,
    RuleResult,
    TableHealth,
    _density,
    chart_count,
    render_report,
)
from headwater.orchestrate import Stores, run
from headwater.project import load_project
from tests.badinput.harness import write

app = typer.Typer()
app.command()(report)


@app.callback()
def _commands() -> None:
    """`report` as a sub-command, as cli/main.py registers it."""


ORDERS = """\
source: shop.orders
schema_version: "1"
delivery: batch
privacy_level: internal
connector: {kind: files, path: "data/*.csv", format: csv}
columns:
  - {name: id, type: bigint, nullable: false}
  - {name: amount, type: double}
  - {name: status, type: string}
  - {name: email, type: string, pii: email}
rules:
  - {name: amount_drift, type: drift, target: amount, severity: warn}
  - {name: status_drift, type: drift, target: status, severity: warn}
  - {name: email_drift, type: drift, target: email, severity: warn}
  - {name: rows_usual, type: anomaly, metric: rows, target: "*", season: none, warmup: 3,
     severity: warn}
  - {name: status_known, type: valid_values, target: status, values: [paid, shipped, lost],
     severity: warn}
"""
START = datetime(2026, 9, 7, 6, 0, tzinfo=UTC)
DAYS = 6  # five usual days, then one with a fifth of the rows, amounts moved, every order lost
HOSTILE = "</script><script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"


def _emails(day: int, rows: int) -> list[str]:
    return [f"buyer{day}x{i}@private.example" for i in range(rows)]


def _land(root: Path, day: int) -> None:
    odd = day == DAYS - 1
    rows, shift = (60, 40.0) if odd else (300 + day * 3, 0.0)
    rng = random.Random(day)
    lines = ["id,amount,status,email"]
    for i, email in enumerate(_emails(day, rows)):
        status = "lost" if odd else rng.choice(["paid", "paid", "shipped"])
        lines.append(f"{day * 100_000 + i},{rng.gauss(100 + shift, 15):.2f},{status},{email}")
    write(root, f"data/day{day:03d}.csv", "\n".join(lines) + "\n")
    project = load_project(root)
    stores = Stores.open(project)
    try:
        run(project, stores, now=START + timedelta(days=day), stages=("ingest",))
    finally:
        stores.close()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project after six daily batches: the last one an anomaly that also drifted."""
    root = tmp_path_factory.mktemp("report") / "shop"
    write(root, "headwater.yml", "name: shop\n")
    write(root, "contracts/orders.yml", ORDERS)
    for day in range(DAYS):
        _land(root, day)
    return root


def hw_report(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["report", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def page_file(shop: Path) -> Path:
    code, out = hw_report("-p", str(shop), "--html", "--format", "json")
    assert code == 0, out
    shown = json.loads(out)
    path = Path(shown["path"])
    assert path == shop / ".headwater" / "report.html"
    assert shown["url"] == path.resolve().as_uri() and shown["url"].startswith("file://")
    assert shown["charts"] == chart_count(path.read_text(encoding="utf-8")) > 0
    return path


def page_data(text: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="hw-report-data">(.*?)</script>', text)
    assert found
    data: dict[str, Any] = json.loads(found.group(1))
    return data


# the page, as data --------------------------------------------------------------------------


def test_the_page_draws_each_table_history_drift_and_anomaly(page_file: Path) -> None:
    text = page_file.read_text(encoding="utf-8")
    titles = [c["title"] for c in page_data(text)["charts"]]
    assert titles == [
        "Run duration (seconds)",
        "raw.orders: rows per batch",
        "rows_usual: the value judged",
        "amount_drift: statistic",
        "amount_drift: share per bin, newest",
        "email_drift: statistic",  # a PII column: its bins are never drawn
        "status_drift: statistic",
        "status_drift: share per bin, newest",
        "raw.orders: share of NULLs per column (click a name to hide it)",
        "raw.orders.id: mean and spread",
        "raw.orders.id: distribution, newest",
        "raw.orders.amount: mean and spread",
        "raw.orders.amount: distribution, newest",
    ]
    assert chart_count(text) == len(titles)
    charts = {c["title"]: c for c in page_data(text)["charts"]}
    rows = charts["raw.orders: rows per batch"]["datasets"][0]
    assert rows["data"] == [300, 303, 306, 309, 312, 60]
    assert [c == BAD for c in rows["pointBackgroundColor"]] == [False] * 5 + [True]
    assert "rows 60 vs expected" in rows["notes"][-1]
    # the anomaly, listed with its explanation; the drift, in words
    assert re.search(r"<td>rows_usual</td><td>warn</td><td>rows 60 vs expected [^<]+</td>", text)
    assert 'amount_drift <span class="bad">drifted</span>' in text
    bins = charts["amount_drift: share per bin, newest"]["datasets"]
    assert [d["label"] for d in bins] == ["reference", "current"]
    assert sum(bins[0]["data"]) == pytest.approx(1, abs=0.01)


def test_the_terminal_and_json_summaries_say_what_fails_now(shop: Path) -> None:
    code, out = hw_report("-p", str(shop), "--format", "json")
    assert code == 0, out
    (orders,) = json.loads(out)["tables"]
    assert orders["table"] == "raw.orders" and orders["rows"] == 60
    assert {r["rule"] for r in orders["anomalies"]} == {"rows_usual"}
    assert {r["rule"] for r in orders["drift"]} == {"amount_drift", "email_drift", "status_drift"}
    assert "rows 60 vs expected" in orders["anomalies"][0]["explanation"]
    code, out = hw_report("-p", str(shop))
    assert code == 0, out
    assert "raw.orders" in out and "4 of 5" in out and "rows 60 vs expected" in out


def test_one_table_gets_its_own_page_and_an_unknown_one_a_did_you_mean(shop: Path) -> None:
    code, out = hw_report("raw.orders", "-p", str(shop), "--html", "--history", "3")
    assert code == 0, out
    path = shop / ".headwater" / "report-raw.orders.html"
    assert str(path) in out.replace("\n", "") and "file://" in out
    charts = page_data(path.read_text(encoding="utf-8"))["charts"]
    assert "Run duration (seconds)" not in [c["title"] for c in charts]  # one table: no runs
    assert len(charts[0]["datasets"][0]["data"]) == 3
    code, out = hw_report("raw.order", "-p", str(shop))
    assert code != 0
    assert "raw.order is neither a raw table nor a model" in out and "raw.orders?" in out


def test_no_pii_value_reaches_the_page(shop: Path, page_file: Path) -> None:
    text = page_file.read_text(encoding="utf-8")
    emails = [e for day in range(DAYS) for e in _emails(day, 300)]
    assert not [e for e in emails if e in text]
    assert "private.example" not in text
    assert "(PII: counts only)" in text


def test_the_page_names_no_web_address_and_loads_nothing(page_file: Path) -> None:
    text = page_file.read_text(encoding="utf-8")
    assert not re.search(r"https?:|//[a-z0-9-]+\.[a-z]", text, re.IGNORECASE)
    links = re.findall(r"""\b(?:src|href|action|srcset|poster)\s*=\s*["']?([^"'\s>]*)""", text)
    assert links and all(link.startswith("#t") or link == "#runs" for link in links), links
    assert "default-src 'none'" in text
    assert "Permission is hereby granted" in text  # Chart.js' license travels with it


def test_a_hostile_name_stays_text() -> None:
    page = render_report(_hostile())
    assert HOSTILE not in page and "<img" not in page and "<!--" not in page
    assert page.count("<script") == 3 and page.lower().count("</script") == 3
    assert page_data(page)["charts"][0]["title"].startswith(HOSTILE)


def test_a_hidden_column_shows_no_value_even_when_given_one() -> None:
    secret = "ada@private.example"
    hidden = ColumnHistory(
        "email",
        "text",
        False,
        [0.0],
        distinct=1,
        minimum=secret,
        maximum=secret,
        means=[4.0],
        histogram=[(1, 2)] * 10,
        top=[secret],
    )
    table = TableHealth("raw.people", [_at(0, 1)], [hidden], [])
    page = render_report(Health("shop", START, 30, [table]))
    assert secret not in page and "(PII: counts only)" in page
    assert chart_count(page) == 2  # rows and NULL shares: no mean, no distribution


def test_a_histogram_is_drawn_as_a_density_of_tenths() -> None:
    # deciles of 0..100 with a value repeated: a bin of no width gives its tenth onwards
    edges = [0, 10, 20, 20, 30, 40, 50, 60, 70, 80, 100]
    points = _density(list(itertools.pairwise(edges)))
    area = sum(a[1] * (b[0] - a[0]) for a, b in itertools.pairwise(points))
    assert area == pytest.approx(1.0)
    assert points[2][:2] == (20.0, pytest.approx(0.02))  # 20-30 holds two tenths
    assert points[-1][:2] == (100.0, 0.0)
    assert _density([(5, 5)] * 10) == [] and _density([("a", "b")] * 10) == []


def test_importing_the_command_imports_nothing_heavy() -> None:
    code = (
        "import sys, headwater.cli.report; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('duckdb', 'pyarrow', 'sqlalchemy', 'sqlglot') or m.startswith("
        "('headwater.orchestrate', 'headwater.observe', 'headwater.zones'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def _at(day: int, rows: int) -> Profiled:
    return Profiled(START + timedelta(days=day), "batch", f"b{day}", rows, run_id=f"r{day}")


def _hostile() -> Health:
    column = ColumnHistory(
        HOSTILE, "text", True, [0.0, 0.5], distinct=2, top=[HOSTILE, "<!--"], means=[]
    )
    number = ColumnHistory(
        "n", "number", True, [0.0, 0.0], means=[1.0, 2.0], medians=[1.0, 2.0],
        lows=[0.0, 0.5], highs=[2.0, 3.0], minimum=0, maximum=3,
        histogram=[(i * 0.3, (i + 1) * 0.3) for i in range(10)],
    )  # fmt: skip
    said = RuleResult(
        HOSTILE, "drift", "warn", False, START, "r1", metric=0.4, threshold="0.2",
        explanation=HOSTILE, bins=(Bin(HOSTILE, 0.5, 0.1), Bin("other", 0.5, 0.9)),
    )  # fmt: skip
    table = TableHealth(HOSTILE, [_at(0, 10), _at(1, 12)], [column, number], [said])
    return Health(HOSTILE, START, 30, [table])


# in a browser -------------------------------------------------------------------------------


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page with no network: every request but the report file's own is aborted (and
    recorded); no console error, no script error, no refusal by the page's CSP."""
    opened = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    opened.on("pageerror", lambda err: errors.append(str(err)))
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
    opened.requested = []

    def route(found: Any) -> None:
        opened.requested.append(found.request.url)
        if found.request.url == opened.allowed:
            found.continue_()
        else:
            found.abort()

    opened.route("**/*", route)
    yield opened
    opened.close()
    assert errors == [], errors


def visit(page: Any, path: Path) -> int:
    """Open the report at `path`; how many charts its script drew."""
    page.allowed = path.resolve().as_uri()
    page.goto(page.allowed)
    page.wait_for_function("document.body.dataset.charts !== undefined")
    assert page.requested == [page.allowed]  # nothing else was even asked for
    return int(page.evaluate("document.body.dataset.charts"))


# how many pixels of each chart's canvas are not blank (a chart with axes only has some too,
# so the counts are compared with the same canvas cleared)
INKED = """() => [...document.querySelectorAll('canvas.chart')].map(c => {
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let inked = 0;
  for (let i = 3; i < px.length; i += 4) if (px[i] > 0) inked++;
  return {id: c.dataset.chart, inked: inked, width: c.width, height: c.height};
})"""


@pytest.mark.browser
def test_every_chart_renders_with_no_network(page: Any, page_file: Path) -> None:
    drawn = visit(page, page_file)
    text = page_file.read_text(encoding="utf-8")
    assert drawn == chart_count(text) == len(page_data(text)["charts"])
    assert page.evaluate("Object.keys(Chart.instances).length") == drawn
    canvases = page.evaluate(INKED)
    assert len(canvases) == drawn
    for canvas in canvases:
        assert canvas["width"] > 100 and canvas["height"] > 100, canvas
        assert canvas["inked"] > 500, canvas  # axes, labels and the data: not a blank canvas
    # the anomaly's point is drawn: the rows chart's last point, red, in Chart.js' own model
    marked = page.evaluate(
        """() => { const c = Object.values(Chart.instances)
              .find(c => c.canvas.dataset.chart === 'c1');
            const p = c.getDatasetMeta(0).data.at(-1);
            return {x: p.x, y: p.y, color: p.options.backgroundColor, skip: p.skip}; }"""
    )
    assert marked["color"] == BAD and not marked["skip"]
    assert page.inner_text("#t0 h2") == "raw.orders"


@pytest.mark.browser
def test_a_chart_draws_its_data_not_only_its_axes(page: Any, page_file: Path) -> None:
    visit(page, page_file)
    before = {c["id"]: c["inked"] for c in page.evaluate(INKED)}
    page.evaluate(
        "() => Object.values(Chart.instances).forEach(c => {"
        " c.data.datasets.forEach(d => d.data = d.data.map(() => null)); c.update(); })"
    )
    after = {c["id"]: c["inked"] for c in page.evaluate(INKED)}
    assert all(before[i] > after[i] for i in before), (before, after)


@pytest.mark.browser
def test_hostile_text_renders_as_text(page: Any, tmp_path: Path) -> None:
    path = tmp_path / "hostile.html"
    path.write_text(render_report(_hostile()), encoding="utf-8")
    drawn = visit(page, path)
    assert drawn == chart_count(path.read_text(encoding="utf-8")) == 6
    assert page.evaluate("window.__pwned === undefined")
    assert page.inner_text("section h2") == HOSTILE
    assert page.evaluate("document.querySelectorAll('script').length") == 3
    assert page.evaluate("document.querySelectorAll('img').length") == 0
