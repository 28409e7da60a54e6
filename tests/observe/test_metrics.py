"""Pipeline metrics: what `/metrics` and `headwater metrics` show parses with
prometheus-client's own parser and says what the catalog says after a real run; a
textfile is replaced whole; a running scheduler answers a scrape over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import typer
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from headwater.cli import main
from headwater.cli.metrics import metrics
from headwater.observe.metrics import (
    CONTENT_TYPE,
    PipelineCollector,
    exposition,
    registry,
)
from headwater.orchestrate import RunReport, Stores, run
from headwater.orchestrate.follow import StreamStats
from headwater.orchestrate.metrics import collector, live_lags
from headwater.orchestrate.sla import Alerting, check
from headwater.project import Project, load_project
from headwater.serve.app import create_app
from tests.badinput.harness import hw, write
from tests.change.test_releases import ok, project
from tests.conftest import NOW

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def parsed(text: str) -> tuple[dict[str, str], Samples]:
    """The families' types, and every sample by name and labels, as Prometheus reads them."""
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            labels = tuple(sorted(s.labels.items()))
            assert labels not in samples.setdefault(s.name, {}), f"{s.name}{labels} twice"
            samples[s.name][labels] = s.value
    return types, samples


def scrape(project: Project, stores: Stores) -> tuple[dict[str, str], Samples]:
    found = collector(project, stores.catalog, stores.lake)
    text = exposition(registry(found))[0].decode()
    assert found.last_error is None
    return parsed(text)


def task(name: str, stage: str) -> tuple[tuple[str, str], ...]:
    return (("stage", stage), ("task", name))


def test_metrics_parse_and_say_what_the_catalog_says_after_a_run(
    built_shop: tuple[Project, Stores, RunReport],
) -> None:
    project, stores, report = built_shop
    types, samples = scrape(project, stores)
    assert samples["headwater_up"] == {(): 1.0}
    assert samples["headwater_info"] == {(("project", "shop"), ("version", main.__version__)): 1}
    assert types["headwater_scrape_errors"] == "counter"
    assert samples["headwater_scrape_errors_total"] == {(): 0.0}
    # the run
    recorded = stores.catalog.find_run(report.run_id)
    assert recorded is not None
    run_ = (("command", "run"),)
    took = (recorded["ended_at"] - recorded["started_at"]).total_seconds()
    assert samples["headwater_run_last_duration_seconds"][run_] == pytest.approx(took)
    assert samples["headwater_run_last_success"][run_] == 1.0
    ended = recorded["ended_at"].timestamp()
    assert samples["headwater_run_last_end_timestamp_seconds"][run_] == pytest.approx(ended)
    if "headwater_runs_total" in samples:  # once the catalog counts runs (RunsStore.run_counts)
        assert types["headwater_runs"] == "counter"
        assert samples["headwater_runs_total"] == {(("command", "run"), ("status", "success")): 1}
    # every task, as its catalog record says
    tasks = stores.catalog.run_tasks(report.run_id)
    assert len(tasks) == 12
    for t in tasks:
        key = task(t["task"], t["stage"])
        took = (t["ended_at"] - t["started_at"]).total_seconds()
        assert samples["headwater_task_last_duration_seconds"][key] == pytest.approx(took)
        for metric, column in [
            ("rows", "rows"),
            ("rows_in", "rows_in"),
            ("bytes", "bytes"),
            ("attempts", "attempts"),
            ("queue_wait_seconds", "queued_s"),
            ("quarantined_rows", "quarantined"),
        ]:
            assert samples[f"headwater_task_last_{metric}"].get(key) == t[column], (metric, t)
        assert samples["headwater_task_last_success"][key] == 1.0
    landed = {x.table: x for x in report.landed}
    for table in ("raw.orders", "raw.events", "raw.customers"):
        key = task(table, "ingest")
        assert samples["headwater_task_last_rows"][key] == landed[table].rows
        assert samples["headwater_task_last_quarantined_rows"][key] == landed[table].quarantined
        assert samples["headwater_task_last_bytes"][key] > 0
    # every table's freshness, none late (no sla)
    tables = {*project.raw_tables, *project.models}
    assert {dict(k)["table"] for k in samples["headwater_table_late"]} == tables
    assert set(samples["headwater_table_late"].values()) == {0.0}
    ages = samples["headwater_table_freshness_age_seconds"]
    assert set(ages) == set(samples["headwater_table_updated_timestamp_seconds"])
    assert all(age >= 0 for age in ages.values())
    # the rules: one sample per rule of the project with a result; failing ones counted
    newest = stores.catalog.newest_check_results()
    passed = samples["headwater_rule_passed"]
    assert len(passed) == len(newest) == len(report.checks)
    failing = [c for c in report.checks if not c.passed]
    assert failing and sum(samples["headwater_rules_failing"].values()) == len(failing)
    assert sum(1 for v in passed.values() if v == 0) == len(failing)
    open_: dict[tuple[tuple[str, str], ...], float] = {}
    for alert in stores.catalog.alert_history(limit=1000):
        if alert["resolved_at"] is None:
            key = (("kind", alert["kind"]), ("severity", alert["severity"]))
            open_[key] = open_.get(key, 0) + 1
    assert samples.get("headwater_alerts_open", {}) == open_


def test_the_tasks_shown_are_the_newest_run_of_each_not_every_run(shop: Path) -> None:
    project_ = load_project(shop)
    stores = Stores.open(project_)
    try:
        run(project_, stores, now=NOW)
        _, first = scrape(project_, stores)
        second = run(project_, stores, now=NOW)
        _, again = scrape(project_, stores)
        newest = {t["task"]: t for t in stores.catalog.run_tasks(second.run_id)}
    finally:
        stores.close()
    shown = again["headwater_task_last_success"]
    assert set(shown) == set(first["headwater_task_last_success"])  # one series per task
    assert len(shown) == len(newest) == 12
    # the newest run's figures: it landed nothing new and found every model up to date
    orders = task("raw.orders", "ingest")
    assert first["headwater_task_last_rows"][orders] == 23_998
    assert again["headwater_task_last_rows"][orders] == newest["raw.orders"]["rows"] == 0
    assert newest["clean.orders"]["status"] == "up_to_date"
    model = task("clean.orders", "build")
    assert again["headwater_task_last_rows"][model] == newest["clean.orders"]["rows"]
    if newest["clean.orders"]["ended_at"] is None:  # (an up-to-date model records no times)
        assert model not in again["headwater_task_last_duration_seconds"]
    if "headwater_runs_total" in again:
        assert again["headwater_runs_total"] == {(("command", "run"), ("status", "success")): 2}


def test_a_scrape_that_cannot_read_the_catalog_says_up_0_and_counts_the_error() -> None:
    def broken() -> object:
        raise OSError("disk I/O error")

    failing = PipelineCollector(broken)  # type: ignore[arg-type]
    source = registry(failing)
    for n in (1, 2):
        types, samples = parsed(exposition(source)[0].decode())
        assert samples["headwater_up"] == {(): 0.0}
        assert samples["headwater_scrape_errors_total"] == {(): float(n)}
        assert "headwater_task_last_rows" not in types
    assert failing.last_error == "OSError: disk I/O error"


def test_a_follow_worker_shows_each_stream_s_live_lag_and_totals(
    built_shop: tuple[Project, Stores, RunReport],
) -> None:
    project_, stores, _ = built_shop
    stats = StreamStats("raw.clicks", batches=3, rows=120, restarts=1)
    stats.lag = {"clicks/0": 40, "clicks/1": 2}
    stats.lag_seconds = 7.5
    stats.latencies.extend([0.1, 0.2, 0.3, 4.0])
    broken = StreamStats("raw.views", last_error="broker down")
    found = collector(
        project_,
        stores.catalog,
        stores.lake,
        streams=lambda: live_lags({"raw.clicks": stats, "raw.views": broken}),
    )
    types, samples = parsed(exposition(registry(found))[0].decode())
    clicks, views = (("table", "raw.clicks"),), (("table", "raw.views"),)
    assert samples["headwater_stream_lag_messages"][clicks] == 42
    assert samples["headwater_stream_lag_seconds"][clicks] == 7.5
    assert samples["headwater_stream_source_up"] == {clicks: 1.0, views: 0.0}
    assert types["headwater_stream_rows"] == "counter"
    assert samples["headwater_stream_rows_total"][clicks] == 120
    assert samples["headwater_stream_batches_total"][clicks] == 3
    assert samples["headwater_stream_restarts_total"][clicks] == 1
    assert samples["headwater_stream_latency_p50_seconds"][clicks] == 0.3
    assert samples["headwater_stream_latency_p99_seconds"][clicks] == 4.0
    assert views not in samples["headwater_stream_latency_p50_seconds"]


def test_a_late_table_and_its_open_alert_show(tmp_path: Path) -> None:
    root = project(tmp_path / "t")
    contract = root / "contracts/orders.yml"
    contract.write_text(contract.read_text() + "sla: {max_age: 1h}\n")
    loaded = load_project(root)
    stores = Stores.open(loaded)
    try:
        run(loaded, stores, now=NOW)  # landed on NOW's clock: long before the wall clock's now
        check(
            loaded, stores.catalog, stores.lake, now=datetime.now(UTC), alerting=Alerting.of(loaded)
        )
        _, samples = scrape(loaded, stores)
    finally:
        stores.close()
    assert samples["headwater_table_late"][(("table", "raw.orders"),)] == 1.0
    assert samples["headwater_table_late"][(("table", "clean.orders"),)] == 0.0
    age = samples["headwater_table_freshness_age_seconds"][(("table", "raw.orders"),)]
    assert age == pytest.approx((datetime.now(UTC) - NOW).total_seconds(), abs=60)
    open_ = (("kind", "sla_freshness"), ("severity", "error"))
    assert samples["headwater_alerts_open"] == {open_: 1.0}


# ---- headwater metrics ---------------------------------------------------------------------


def cli(root: Path, *args: str) -> tuple[int, str, str]:
    """`headwater metrics ARGS -p ROOT` in process: through main's app once it registers the
    command, else through an app of its own."""
    registered = any(c.callback is metrics for c in main.app.registered_commands)
    app = main.app
    if not registered:
        app = typer.Typer()
        app.callback()(lambda: main._main(debug=False, version=False))
        app.command()(metrics)
    result = CliRunner().invoke(app, ["metrics", *args, "-p", str(root)], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small project after one run."""
    root = project(tmp_path_factory.mktemp("small") / "t")
    ok(root, "run")
    return root


def test_the_command_prints_the_exposition_or_json(small: Path) -> None:
    code, out, _ = cli(small)
    assert code == 0
    _, samples = parsed(out)
    assert samples["headwater_task_last_rows"][task("clean.orders", "build")] == 2
    assert samples["headwater_task_last_rows"][task("raw.orders", "ingest")] == 2
    code, out, _ = cli(small, "--format", "json")
    assert code == 0
    import json

    families = {f["name"]: f for f in json.loads(out)["metrics"]}
    [sample] = families["headwater_up"]["samples"]
    assert sample == {"name": "headwater_up", "labels": {}, "value": 1.0}
    assert families["headwater_task_last_rows"]["type"] == "gauge"


def test_the_textfile_is_replaced_whole_never_seen_half_written(
    small: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "textfile"
    folder.mkdir()
    target = folder / "headwater.prom"
    code, _, err = cli(small, "--textfile", str(target))
    assert code == 0, err
    assert f"wrote {target}" in err and "warning" not in err
    old = target.open("rb")  # held open: its file outlives the rename, and keeps its inode
    seen: list[str] = []
    stop = threading.Event()

    def read() -> None:  # what node_exporter does meanwhile
        while not stop.is_set():
            seen.append(target.read_text())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(10):
            assert cli(small, "--textfile", str(target))[0] == 0
    finally:
        stop.set()
        reader.join()
    assert seen
    for text in seen:  # each read is one whole exposition
        _, samples = parsed(text)
        assert samples["headwater_up"] == {(): 1.0}
        assert text.endswith("\n")
    # a new file renamed over it, not rewritten in place: the old one is linked nowhere now
    assert os.fstat(old.fileno()).st_nlink == 0
    assert target.stat().st_ino != os.fstat(old.fileno()).st_ino
    old.close()
    assert sorted(p.name for p in folder.iterdir()) == ["headwater.prom"]  # nothing left over


def test_the_textfile_s_name_and_folder_are_checked(small: Path, tmp_path: Path) -> None:
    code, _, err = cli(small, "--textfile", str(tmp_path / "metrics.txt"))
    assert code == 0
    assert "does not end in .prom" in err
    assert (tmp_path / "metrics.txt").exists()
    code, _, err = cli(small, "--textfile", str(tmp_path / "nowhere" / "m.prom"))
    assert code == 2 and "does not exist" in err
    code, _, err = cli(small, "--textfile", str(tmp_path / "m.prom"), "--format", "json")
    assert code == 2 and "Prometheus format only" in err
    code, _, err = cli(small, "--format", "yaml")
    assert code == 2


# ---- /metrics in the long-running processes ----------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_running_scheduler_answers_a_scrape_over_http(small: Path) -> None:
    port = free_port()
    scheduler = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "headwater",
            "scheduler",
            "-p",
            str(small),
            "--every",
            "3600",
            "--metrics-port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        for _ in range(300):
            try:
                answer = httpx.get(url)
                break
            except httpx.TransportError:
                assert scheduler.poll() is None, scheduler.communicate()[0]
                time.sleep(0.05)
        else:
            raise AssertionError("the scheduler never served /metrics")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == CONTENT_TYPE
        _, samples = parsed(answer.text)
        assert samples["headwater_up"] == {(): 1.0}
        assert samples["headwater_info"][(("project", "t"), ("version", main.__version__))] == 1
        assert samples["headwater_task_last_rows"][task("clean.orders", "build")] == 2
        assert samples["headwater_run_last_success"][(("command", "run"),)] == 1
        assert "process_cpu_seconds_total" in samples  # the process's own figures too
        again = parsed(httpx.get(url).text)[1]
        assert again["headwater_scrape_errors_total"] == {(): 0.0}
    finally:
        scheduler.send_signal(signal.SIGINT)
        output, _ = scheduler.communicate(timeout=30)
    assert scheduler.returncode == 0, output
    assert f"metrics at http://127.0.0.1:{port}/metrics" in output
    assert "Traceback" not in output
    with pytest.raises(httpx.TransportError):
        httpx.get(url)  # stopped with the scheduler


def test_a_metrics_port_in_use_is_a_clear_error(small: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        outcome = hw(small, "scheduler", "--once", "--metrics-port", str(port))
    assert outcome.code == 2, outcome
    assert f"--metrics-port {port}: cannot listen on 127.0.0.1:{port}" in outcome.output


def test_serve_answers_metrics_without_a_key(tmp_path: Path) -> None:
    root = project(tmp_path / "t")
    write(root, "models/marts/total.yml", "serve: true\n")
    write(root, "policies.yml", "roles:\n  reader: {grants: ['marts.*']}\n")
    ok(root, "run")
    with TestClient(create_app(load_project(root))) as client:
        answer = client.get("/metrics")
        asked = {"Accept": "application/openmetrics-text; version=1.0.0"}
        openmetrics = client.get("/metrics", headers=asked)
        assert client.get("/v1/marts/total").status_code == 401  # the data needs a key
        document = client.get("/openapi.json").json()
    assert answer.status_code == 200
    assert answer.headers["content-type"] == CONTENT_TYPE
    _, samples = parsed(answer.text)
    assert samples["headwater_up"] == {(): 1.0}
    assert samples["headwater_task_last_rows"][task("marts.total", "build")] == 1
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")
    assert "/metrics" not in document["paths"]  # not part of the data API's document
