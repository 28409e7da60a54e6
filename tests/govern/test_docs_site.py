"""`headwater docs`: the catalog site documents every table, column, rule, run and lineage
edge; no value of a PII-tagged column and no quarantined record is ever written to it; it is
drawn as text, never markup; and in a browser, search and the lineage view work."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from headwater.cli.docs import docs
from headwater.cli.sql import open_warehouse
from headwater.engine import Engine
from headwater.govern.pii import model_pii
from headwater.govern.site import catalog_script, write_site
from headwater.orchestrate import Stores, run
from headwater.orchestrate import catalog_site as site_data
from headwater.orchestrate.catalog_site import collect
from headwater.project import Project, load_project
from tests.conftest import NOW

app = typer.Typer()
app.command()(docs)


@app.callback()
def _commands() -> None:
    """`docs` as a sub-command, as cli/main.py registers it."""


HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def hw_docs(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["docs", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def site_data_of(folder: Path) -> dict[str, Any]:
    """The data catalog.js carries, as app.js reads it."""
    text = (folder / "catalog.js").read_text(encoding="utf-8")
    prefix = "window.HEADWATER_CATALOG = "
    assert text.startswith(prefix) and text.endswith(";\n")
    data: dict[str, Any] = json.loads(text[len(prefix) : -2])
    return data


def site_bytes(folder: Path) -> bytes:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert {p.name for p in files} == {"index.html", "catalog.js", "app.js", "style.css"}
    return b"\n".join(p.read_bytes() for p in files)


def leaked(folder: Path, values: set[str]) -> list[str]:
    """The `values` found in any file of the site, as UTF-8 or as JSON writes them."""
    blob = site_bytes(folder)
    forms = {v: {v.encode(), json.dumps(v)[1:-1].encode()} for v in values}
    return sorted(v for v, encoded in forms.items() if any(e in blob for e in encoded))


def by_name(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in data["tables"]}


@pytest.fixture(scope="module")
def built(shop_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project after one run, its stores closed (docs opens them itself)."""
    root = tmp_path_factory.mktemp("docs") / "shop"
    shutil.copytree(shop_template, root)
    project = load_project(root)
    stores = Stores.open(project)
    try:
        assert run(project, stores, now=NOW).ok
    finally:
        stores.close()
    return root


@pytest.fixture(scope="module")
def site(built: Path) -> Path:
    """The site `headwater docs` writes for the built example, at its default place."""
    code, out = hw_docs("-p", str(built), "--format", "json")
    assert code == 0, out
    shown = json.loads(out[out.index("{") :])
    index = Path(shown["path"])
    assert index == built / ".headwater" / "docs" / "index.html"
    assert shown["tables"] == 12 and shown["columns"] == sum(
        len(t["columns"]) for t in site_data_of(index.parent)["tables"]
    )
    return index.parent


@pytest.fixture(scope="module")
def warehouse(built: Path, site: Path) -> Iterator[Engine]:
    """The built warehouse, read-only, as `headwater sql` opens it (after the site is made)."""
    engine = open_warehouse(load_project(built), write=False, allow_files=False)
    yield engine
    engine.close()


# what the site documents --------------------------------------------------------------------


def test_every_contract_seed_and_model_is_documented_with_typed_columns(
    built: Path, site: Path
) -> None:
    project = load_project(built)
    data = site_data_of(site)
    tables = by_name(data)
    assert set(tables) == {c.table for c in project.contracts.values()} | set(project.models)
    assert data["zones"] == ["raw", "seed", "clean", "marts"]
    assert data["built"] and data["profiled"] and not data["notes"]
    for table in tables.values():
        assert table["columns"], table["name"]
        assert all(c["type"] for c in table["columns"]), table["name"]
        assert table["built"] and table["rows"] is not None and table["rows"] > 0, table["name"]
    orders = {c["name"]: c for c in tables["raw.orders"]["columns"]}
    assert orders["amount"]["type"] == "decimal(12,2)"
    assert orders["order_id"]["tags"] == ["key"]
    assert "metadata" in orders["_hw_batch_id"]["tags"]
    daily = tables["marts.events_daily"]
    assert daily["owners"] == ["analytics@example.com"]
    assert daily["description"] == "Daily event counts per type."
    assert {c["name"]: c["description"] for c in daily["columns"]}["event_count"] == (
        "Events that day"
    )
    assert tables["raw.customers"]["owners"] == ["crm-data@example.com"]


def test_column_lineage_edges_go_both_ways(site: Path) -> None:
    lineage = site_data_of(site)["lineage"]
    nodes = lineage["nodes"]
    edges = {(nodes[a], nodes[b]) for a, b in lineage["edges"]}
    assert ("raw.orders.amount", "clean.orders.amount") in edges
    assert ("clean.orders.amount", "marts.customer_orders.revenue") in edges
    assert ("clean.events.*", "marts.events_daily.event_count") in edges
    assert ("marts.events_daily.event_count", "marts.funnel_daily.carts") in edges


def test_rule_results_freshness_and_runs_come_from_the_catalog(site: Path) -> None:
    data = site_data_of(site)
    tables = by_name(data)
    rules = {r["name"]: r for r in tables["raw.customers"]["rules"]}
    assert rules["customers_email_format"]["status"] == "fail"
    assert rules["customers_email_complete"]["status"] == "pass"
    assert rules["customers_email_complete"]["result"]["metric"] == 0
    assert all("samples" not in r and "sql" not in (r["result"] or {}) for r in rules.values())
    [the_run] = data["runs"]
    assert the_run["status"] == "success" and the_run["models_built"] == 8
    events = tables["marts.events_daily"]
    assert (
        events["last_run"]["status"] == "built"
        and events["last_run"]["run_id"] == (the_run["run_id"])
    )
    assert [h["run_id"] for h in events["history"]] == [the_run["run_id"]]
    assert events["freshness"]["updated_at"] is not None
    assert events["freshness"]["verdict"] == "no sla"
    assert tables["raw.orders"]["last_run"]["status"] == "landed"


def test_site_tags_are_what_model_pii_says(built: Path, site: Path, warehouse: Engine) -> None:
    project = load_project(built)
    tables = by_name(site_data_of(site))
    for name in project.models:
        columns = list(warehouse.columns(name))
        shown = {c["name"]: c["pii"] for c in tables[name]["columns"] if c["pii"]}
        assert shown == model_pii(project, name, columns), name
    customers = {c["name"]: c for c in tables["raw.customers"]["columns"]}
    assert customers["email"]["pii"] == "email" and customers["email"]["tags"] == ["pii:email"]
    assert customers["country"]["pii"] is None


# what the site never holds ------------------------------------------------------------------


def pii_values(project: Project, engine: Engine, data: dict[str, Any]) -> set[str]:
    """Every distinct value, read from the warehouse, of every column the site tags PII."""
    values: set[str] = set()
    for table in data["tables"]:
        for column in table["columns"]:
            if column["pii"]:
                query = f'select distinct cast("{column["name"]}" as varchar) from {table["name"]}'
                values |= {v for (v,) in engine.rows(query) if v}
    return values


def test_no_value_of_a_pii_column_is_written_to_the_site(
    built: Path, site: Path, warehouse: Engine
) -> None:
    data = site_data_of(site)
    values = pii_values(load_project(built), warehouse, data)
    assert len(values) > 2000  # emails and names, raw and clean
    assert leaked(site, values) == []
    email = {c["name"]: c for c in by_name(data)["clean.customers"]["columns"]}["email"]
    assert set(email["profile"]) == {"nulls", "distinct"}  # no bounds, no samples
    # the untagged columns beside them do show their range
    country = {c["name"]: c for c in by_name(data)["clean.customers"]["columns"]}["country"]
    assert country["profile"]["min"] == "DE"


def test_the_leak_check_finds_values_when_tags_are_ignored(
    built: Path, warehouse: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above has power: with tagging broken, the PII columns' bounds leak and it
    says so."""
    project = load_project(built)
    honest = collect(project, now=NOW, engine=warehouse)
    monkeypatch.setattr(site_data, "_tags", lambda *_: {})
    broken = collect(project, now=NOW, engine=warehouse)
    write_site(tmp_path / "site", broken)
    assert leaked(tmp_path / "site", pii_values(project, warehouse, honest))


def test_no_quarantined_record_is_written_to_the_site(site: Path, warehouse: Engine) -> None:
    records: set[str] = set()
    for table in ("raw.customers", "raw.events", "raw.orders"):
        rows = warehouse.rows(f"select _hw_record, _hw_reason from {table}__quarantine")
        records |= {v for row in rows for v in row if v}
    assert any("broken row" in r for r in records)  # the example quarantines some
    assert leaked(site, records) == []


def test_a_description_with_markup_is_escaped_in_the_data(tmp_path: Path) -> None:
    script = catalog_script({"tables": [{"description": HOSTILE + "</script><!--"}]})
    assert "<" not in script and ">" not in script
    assert json.loads(script.removeprefix("window.HEADWATER_CATALOG = ").rstrip(";\n")) == {
        "tables": [{"description": HOSTILE + "</script><!--"}]
    }


def test_the_app_never_parses_data_as_markup() -> None:
    from headwater.govern.site import ASSETS

    code = "\n".join(
        line
        for line in (ASSETS / "app.js").read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith(("*", "/*", "//"))
    )
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in code, f"app.js uses {sink}: build elements with text nodes (h())"


def test_the_profile_reads_each_table_once(built: Path, warehouse: Engine) -> None:
    queried: list[str] = []

    class Counting:
        def __init__(self, inner: Engine) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def rows(self, statement: Any, params: Any = None) -> list[tuple[Any, ...]]:
            queried.append(self.inner.render(statement))
            return self.inner.rows(statement, params)

    data = collect(load_project(built), now=NOW, engine=Counting(warehouse))  # type: ignore[arg-type]
    assert len(queried) == len(data["tables"]) == 12
    email = next(q for q in queried if '"raw"."customers"' in q)
    assert 'MIN("email")' not in email and 'MIN("country")' in email


# projects never run, and the output folder --------------------------------------------------


def test_a_project_never_run_gets_a_site_of_its_specs(shop: Path) -> None:
    code, out = hw_docs("-p", str(shop), "--format", "json")
    assert code == 0, out
    shown = json.loads(out[out.index("{") :])
    assert shown["tables"] == 12
    data = site_data_of(Path(shown["path"]).parent)
    assert not data["built"] and not data["profiled"] and data["runs"] == []
    for table in data["tables"]:
        assert table["freshness"]["verdict"] in ("never built", "never landed"), table["name"]
        assert table["last_run"] is None and table["rows"] is None
    assert not (shop / ".headwater" / "catalog.db").exists()  # docs creates no state
    daily = by_name(data)["marts.events_daily"]
    assert [c["name"] for c in daily["columns"]] == ["day", "event_type", "event_count"]
    lineage = data["lineage"]
    assert "marts.events_daily.event_count" in lineage["nodes"]


def test_the_site_replaces_its_own_folder_but_never_a_project(shop: Path, tmp_path: Path) -> None:
    out = tmp_path / "site" / "docs"
    for _ in range(2):
        code, output = hw_docs("-p", str(shop), "--out", str(out))
        assert code == 0, output
        assert f"columns: {(out / 'index.html').as_uri()}" in output
    assert [p.name for p in out.parent.iterdir()] == ["docs"]  # nothing staged is left
    code, output = hw_docs("-p", str(shop), "--out", str(shop))
    assert code == 2
    assert "holds files that are not the catalog site's" in output
    assert (shop / "headwater.yml").exists()


@pytest.mark.slow
def test_serve_answers_and_ctrl_c_exits_0(shop: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = textwrap.dedent(
        """
        import sys, typer
        from headwater.cli.docs import docs
        app = typer.Typer()
        app.command()(docs)
        app.callback()(lambda: None)
        sys.argv = ["headwater", "docs", *sys.argv[1:]]
        app()
        """
    )
    server = subprocess.Popen(
        [sys.executable, "-c", code, "-p", str(shop), "--serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        body = _fetch(f"http://127.0.0.1:{port}/catalog.js")
        assert body.startswith(b"window.HEADWATER_CATALOG = ")
        assert b"headwater docs" in _fetch(f"http://127.0.0.1:{port}/")
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert f"http://127.0.0.1:{port}/" in output and "Traceback" not in output


def _fetch(url: str) -> bytes:
    for _ in range(300):
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return bytes(answer.read())
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} never answered")


# in a browser -------------------------------------------------------------------------------


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    opened = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    opened.on("pageerror", lambda err: errors.append(str(err)))
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield opened
    opened.close()
    assert errors == [], errors  # no script error, no refusal by the page's CSP


def visit(page: Any, folder: Path, route: str = "") -> None:
    page.goto((folder / "index.html").as_uri() + route)
    page.wait_for_selector("[data-testid=main] > .page")


def search(page: Any, text: str) -> list[str]:
    page.fill("[data-testid=search-input]", text)
    page.wait_for_function(
        "q => { const p = document.querySelector('[data-testid=search-results]');"
        " return !p.hidden && p.dataset.query === q; }",
        arg=text,
    )
    keys: list[str] = page.eval_on_selector_all(
        "[data-testid=search-result]", "els => els.map(e => e.dataset.key)"
    )
    return keys


@pytest.mark.browser
def test_search_finds_a_column_by_name_and_opens_it(page: Any, site: Path) -> None:
    visit(page, site)
    found = search(page, "event_count")
    assert found[0] == "marts.events_daily.event_count"
    page.click("[data-testid=search-result][data-key='marts.events_daily.event_count']")
    page.wait_for_selector("[data-testid=column-page]")
    assert page.url.endswith("#/column/marts.events_daily.event_count")
    assert page.text_content("[data-testid=column-title]") == "marts.events_daily.event_count"


@pytest.mark.browser
def test_search_finds_columns_by_tag_and_owners(page: Any, site: Path) -> None:
    visit(page, site)
    assert search(page, "pii:email") == ["clean.customers.email", "raw.customers.email"]
    assert set(search(page, "pii:name")) == {"clean.customers.full_name", "raw.customers.full_name"}
    # a bare word finds the columns tagged with it, and the tag itself
    found = search(page, "email")
    assert {"raw.customers.email", "clean.customers.email", "pii:email"} <= set(found)
    assert search(page, "analytics@example")[:1] == ["analytics@example.com"]
    page.click("[data-testid=search-result][data-key='analytics@example.com']")
    page.wait_for_selector("[data-testid=search-page]")
    listed = page.eval_on_selector_all(
        "[data-testid=search-page-results] [data-testid=search-result]",
        "els => els.map(e => e.dataset.key)",
    )
    assert listed == ["marts.events_daily"]


@pytest.mark.browser
def test_the_lineage_view_shows_upstream_and_downstream_and_recenters(
    page: Any, site: Path
) -> None:
    visit(page, site, "#/column/marts.events_daily.event_count")
    page.wait_for_selector("[data-testid=lineage-graph]")
    sides = dict(
        page.eval_on_selector_all(
            "[data-testid=lineage-node]", "els => els.map(e => [e.dataset.node, e.dataset.side])"
        )
    )
    assert sides["marts.events_daily.event_count"] == "center"
    assert sides["clean.events.*"] == sides["raw.events.event_type"] == "upstream"
    assert sides["marts.funnel_daily.carts"] == "downstream"
    assert page.locator("[data-testid=lineage-edge]").count() >= 5
    assert "PII-tagged" in page.text_content("[data-testid=lineage-legend]")
    page.click("[data-testid=lineage-node][data-node='marts.funnel_daily.carts']")
    page.wait_for_selector(
        "[data-testid=lineage-node][data-node='marts.funnel_daily.carts'][data-side=center]"
    )
    assert page.url.endswith("#/column/marts.funnel_daily.carts")
    up = page.get_attribute(
        "[data-testid=lineage-node][data-node='marts.events_daily.event_count']", "data-side"
    )
    assert up == "upstream"


@pytest.mark.browser
def test_a_table_page_renders_a_real_screen(page: Any, site: Path, tmp_path: Path) -> None:
    visit(page, site, "#/table/clean.customers")
    rows = page.locator("[data-testid=columns-table] [data-testid=column-row]")
    assert rows.count() == 5
    email = page.locator("[data-testid=column-row][data-column=email]")
    assert "hidden · PII" in email.text_content()
    assert "PII · email" in email.text_content()
    table = page.locator("[data-testid=columns-table]").bounding_box()
    nav = page.locator("[data-testid=nav]").bounding_box()
    assert table["width"] > 700 and table["height"] > 150 and nav["width"] > 200
    assert nav["x"] + nav["width"] <= table["x"]  # side by side, not stacked
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)  # kept to look at
    shot = tmp_path / "columns.png"
    page.locator("[data-testid=columns-table]").screenshot(path=str(shot))
    width, height, colors = png_colors(shot.read_bytes())
    assert abs(width - table["width"]) < 4 and abs(height - table["height"]) < 4
    assert colors > 30, f"{shot}: {colors} colours: an empty or broken table"


@pytest.mark.browser
def test_markup_in_a_description_shows_as_text(page: Any, shop: Path) -> None:
    sidecar = shop / "models" / "marts" / "events_daily.yml"
    text = sidecar.read_text().replace('"Events that day"', json.dumps(HOSTILE))
    sidecar.write_text(text.replace("Daily event counts per type.", HOSTILE))
    code, out = hw_docs("-p", str(shop))
    assert code == 0, out
    visit(page, shop / ".headwater" / "docs", "#/table/marts.events_daily")
    assert page.text_content("[data-testid=table-description]") == HOSTILE
    row = page.locator("[data-testid=column-row][data-column=event_count] td.desc")
    assert row.text_content() == HOSTILE
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("window.__pwned") is None


@pytest.mark.browser
def test_500_models_draw_fast_and_search_one_index(page: Any, tmp_path: Path) -> None:
    write_site(tmp_path / "big", big_catalog(500, 20))
    started = time.monotonic()
    visit(page, tmp_path / "big")
    assert time.monotonic() - started < 5
    # zones draw their tables when opened: not 500 links at once
    assert page.locator("[data-testid=nav] a[data-table]").count() == 0
    started = time.monotonic()
    assert search(page, "m_0420.col_07")[0] == "marts.m_0420.col_07"
    assert time.monotonic() - started < 2
    visit(page, tmp_path / "big", "#/column/marts.m_0420.col_07")
    assert page.locator("[data-testid=lineage-node]").count() >= 3
    assert page.locator("[data-testid=nav] a[data-table]").count() == 500  # its zone opened


def big_catalog(models: int, columns: int) -> dict[str, Any]:
    """A catalog of `models` models in a chain, each of `columns` columns."""
    tables, nodes, edges = [], [], []
    for i in range(models):
        name = f"marts.m_{i:04d}"
        cols = [
            {
                "name": f"col_{c:02d}",
                "type": "bigint",
                "description": f"column {c}",
                "pii": None,
                "pii_why": None,
                "tags": [],
                "profile": {"nulls": 0.1, "distinct": 10 * c},
            }
            for c in range(columns)
        ]
        tables.append(
            {
                "name": name,
                "zone": "marts",
                "description": f"model {i}",
                "owners": ["team@x"],
                "kind": "model",
                "materialization": "table",
                "file": f"models/marts/m_{i}.sql",
                "details": {},
                "tags": ["big"],
                "depends_on": [],
                "used_by": [],
                "built": True,
                "freshness": {"sla": None, "updated_at": None, "late": False, "verdict": "no sla"},
                "last_run": None,
                "history": [],
                "rows": 10,
                "columns": cols,
                "rules": [],
                "lineage_issue": None,
            }
        )
        for c in range(columns):
            nodes.append(f"{name}.col_{c:02d}")
            if i:
                edges.append([len(nodes) - 1 - columns, len(nodes) - 1])
    return {
        "format": 1,
        "project": "big",
        "generated_at": "2026-11-01T12:00:00+00:00",
        "built": True,
        "profiled": True,
        "zones": ["marts"],
        "tables": tables,
        "runs": [],
        "lineage": {"nodes": nodes, "edges": edges},
        "notes": [],
    }


def png_colors(png: bytes) -> tuple[int, int, int]:
    """Width, height and the number of distinct colours of an 8-bit RGB(A) PNG (stdlib only:
    the scanlines' filters undone as the PNG specification gives them)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    at, chunks, header = 8, [], b""
    while at < len(png):
        size, kind = struct.unpack(">I4s", png[at : at + 8])
        body = png[at + 8 : at + 8 + size]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        at += 12 + size
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6), (depth, color)
    step = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * step
    previous = bytearray(stride)
    seen: set[bytes] = set()
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - step] if x >= step else 0
            up, corner = previous[x], previous[x - step] if x >= step else 0
            line[x] = (line[x] + _predict(kind, left, up, corner)) & 0xFF
        seen.update(bytes(line[i : i + 3]) for i in range(0, stride, step * 7))  # a sample
        previous = line
    return width, height, len(seen)


def _predict(kind: int, left: int, up: int, corner: int) -> int:
    if kind == 0:
        return 0
    if kind == 1:
        return left
    if kind == 2:
        return up
    if kind == 3:
        return (left + up) // 2
    guess = left + up - corner
    near = min((abs(guess - left), 0), (abs(guess - up), 1), (abs(guess - corner), 2))[1]
    return (left, up, corner)[near]
