"""OpenLineage out: the example project's runs as OpenLineage events, to a file, to a real HTTP
receiver, and to one that is down; every event valid against the official schemas."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any, cast

import pytest

from headwater.contracts import Rule
from headwater.observe import Event, discard
from headwater.orchestrate import RunReport, Stores, run
from headwater.orchestrate.openlineage import PARENT_JOB, lineage_sink, quality
from headwater.project import load_project
from tests.conftest import NOW

SPEC = "https://openlineage.io/spec/"
LOG = "headwater.orchestrate.openlineage"
# a model whose SQL the engine rejects, and the models that read it
BROKEN = "clean.orders"
DOWNSTREAM = {"marts.customer_orders", "marts.revenue_daily"}


def with_lineage(root: Path, setting: str) -> None:
    settings = root / "headwater.yml"
    settings.write_text(settings.read_text() + f"lineage: {setting}\n", encoding="utf-8")


def run_with_lineage(root: Path, seen: list[Event] | None = None) -> RunReport:
    project = load_project(root)
    stores = Stores.open(project)
    try:
        sink = seen.append if seen is not None else discard
        return run(project, stores, now=NOW, sink=sink)  # a run sends lineage when set
    finally:
        stores.close()


def jobs(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        out.setdefault(event["job"]["name"], []).append(event)
    return out


@pytest.fixture(scope="module")
def broken_run(
    shop_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, RunReport, list[Event], list[dict[str, Any]]]:
    """The example project with one broken model, run once with lineage to a file."""
    root = tmp_path_factory.mktemp("openlineage") / "shop"
    shutil.copytree(shop_template, root)
    with_lineage(root, "{transport: file, path: .headwater/lineage.jsonl}")
    sql = root / "models" / "clean" / "orders.sql"
    sql.write_text(sql.read_text().replace("currency,", "no_such_column,"), encoding="utf-8")
    seen: list[Event] = []
    report = run_with_lineage(root, seen)
    lines = (root / ".headwater" / "lineage.jsonl").read_text(encoding="utf-8").splitlines()
    return root, report, seen, [json.loads(line) for line in lines]


def test_openlineage_file_has_start_and_end_of_every_task(broken_run: Any) -> None:
    root, report, seen, events = broken_run
    project = load_project(root)
    by_job = jobs(events)
    tasks = {f"ingest.{t}" for t in project.raw_tables} | {f"build.{m}" for m in project.models}
    assert set(by_job) == tasks
    for name, runs in by_job.items():
        ended = {
            f"build.{BROKEN}": "FAIL",
            **{f"build.{m}": "ABORT" for m in DOWNSTREAM},
        }.get(name, "COMPLETE")
        assert [e["eventType"] for e in runs] == ["START", ended], name
        assert len({e["run"]["runId"] for e in runs}) == 1, name
        assert uuid.UUID(runs[0]["run"]["runId"])
    assert len({runs[0]["run"]["runId"] for runs in by_job.values()}) == len(by_job)
    # the sink passed in still gets every event of the run
    assert {e.status for e in seen} >= {"start", "landed", "built", "failed", "skipped"}
    assert report.models[BROKEN].status == "failed"


def test_openlineage_fail_says_why_and_abort_names_the_failed_upstream(broken_run: Any) -> None:
    _, report, _, events = broken_run
    by_job = jobs(events)
    failed = by_job[f"build.{BROKEN}"][-1]["run"]["facets"]["errorMessage"]
    assert "no_such_column" in failed["message"]
    assert failed["message"] == report.models[BROKEN].error
    assert failed["programmingLanguage"] == "SQL"
    for model in DOWNSTREAM:
        start, abort = by_job[f"build.{model}"]
        assert "errorMessage" not in start["run"]["facets"]
        message = abort["run"]["facets"]["errorMessage"]["message"]
        assert message.startswith("skipped: ") and BROKEN in message
    assert all(
        "errorMessage" not in e["run"]["facets"] for e in events if e["eventType"] == "COMPLETE"
    )


def test_openlineage_runs_are_children_of_the_headwater_run(broken_run: Any) -> None:
    _, report, _, events = broken_run
    parents = [e["run"]["facets"]["parent"] for e in events]
    expected = str(uuid.uuid5(uuid.NAMESPACE_URL, f"headwater:shop:{report.run_id}"))
    assert {p["run"]["runId"] for p in parents} == {expected}
    assert {(p["job"]["namespace"], p["job"]["name"]) for p in parents} == {("shop", PARENT_JOB)}
    assert {e["job"]["namespace"] for e in events} == {"shop"}
    assert expected not in {e["run"]["runId"] for e in events}


def test_openlineage_datasets_carry_schema_lineage_sql_and_quality(broken_run: Any) -> None:
    _, report, _, events = broken_run
    by_job = jobs(events)
    landed = {x.table: x for x in report.landed}

    orders = by_job["ingest.raw.orders"][-1]["outputs"][0]
    fields = {f["name"]: f.get("type") for f in orders["facets"]["schema"]["fields"]}
    assert fields["amount"] == "DECIMAL(12, 2)" and "_hw_batch_id" in fields
    assert orders["outputFacets"]["outputStatistics"]["rowCount"] == landed["raw.orders"].rows
    assert orders["facets"]["dataQualityMetrics"]["columnMetrics"]["order_id"]["nullCount"] == 0

    customers = by_job["build.clean.customers"]
    assert "lower(trim(email))" in customers[-1]["job"]["facets"]["sql"]["query"].lower()
    output = customers[-1]["outputs"][0]
    built = {f["name"]: f["type"] for f in output["facets"]["schema"]["fields"]}
    assert list(built) == ["customer_id", "email", "full_name", "country", "signed_up_at"]
    assert (
        output["outputFacets"]["outputStatistics"]["rowCount"]
        == report.models["clean.customers"].rows
    )
    lineage = output["facets"]["columnLineage"]
    assert lineage["fields"]["email"]["inputFields"] == [
        {"namespace": "duckdb://shop", "name": "raw.customers", "field": "email"}
        | {"transformations": []}
    ]
    # the rows of clean.customers depend on the columns of its QUALIFY
    indirect = {(f["name"], f["field"]) for f in lineage["dataset"]}
    assert ("raw.customers", "customer_id") in indirect

    # a model's inputs: what this run's checks on them found, and the rows of the version read
    orders_input = by_job[f"build.{BROKEN}"][-1]["inputs"][0]
    assertions = orders_input["inputFacets"]["dataQualityAssertions"]["assertions"]
    failed = {a["name"] for a in assertions if not a["success"]}
    assert failed == {
        c.rule.name for c in report.checks if c.target == "raw.orders" and not c.passed
    }
    region = by_job["build.marts.customers_by_region"][-1]["inputs"]
    metrics = {d["name"]: d["inputFacets"].get("dataQualityMetrics") for d in region}
    assert metrics["clean.customers"]["rowCount"] == report.models["clean.customers"].rows


def test_openlineage_quality_counts_only_what_a_metric_counts() -> None:
    rules = {
        "rows": Rule(name="rows", type="row_count", target="*", min=1),
        "id": Rule(name="id", type="not_null", target="id"),
        "paid": Rule(name="paid", type="not_null", target="paid_at", where="status = 'paid'"),
    }
    records = [
        {"rule": "rows", "type": "row_count", "severity": "error", "passed": True},
        {"rule": "id", "type": "not_null", "severity": "error", "passed": False},
        {"rule": "paid", "type": "not_null", "severity": "warn", "passed": True},
        {"rule": "id", "type": "not_null", "severity": "error", "passed": True},  # older
    ]
    metrics = [120.0, 3.0, 0.0, 0.0]
    found = quality(
        [r | {"metric": m, "threshold": "<= 0"} for r, m in zip(records, metrics, strict=True)],
        rules,
    )
    assert found.rows == 120
    assert found.nulls == {"id": 3}  # `paid` counts a part of the table only
    assert [(a["name"], a["success"], a["actual"]) for a in found.assertions] == [
        ("rows", True, "120"),
        ("id", False, "3"),
        ("paid", True, "0"),
    ]


# --- the official schemas


def official_schemas() -> dict[str, Any]:
    """Every official OpenLineage schema document found locally, by `$id`: in the folder
    `OPENLINEAGE_SPEC` names (the `spec/` folder of an OpenLineage checkout), beside this test
    (`openlineage_spec/`), or in any installed package."""
    files: list[Path] = []
    for folder in (os.environ.get("OPENLINEAGE_SPEC"), Path(__file__).parent / "openlineage_spec"):
        if folder and Path(folder).is_dir():
            files += Path(folder).rglob("*.json")
    for dist in metadata.distributions():
        for file in dist.files or ():
            if file.name.endswith(".json") and "lineage" in str(file).lower():
                files.append(Path(str(file.locate())))
    found: dict[str, Any] = {}
    for path in files:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(document, dict) and str(document.get("$id", "")).startswith(SPEC):
            found[document["$id"]] = document
    return found


def facets_of(event: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every facet of an event, with where it sits."""
    holders = [("run", event["run"]), ("job", event["job"])]
    for side in ("inputs", "outputs"):
        holders += [(f"{side}.{d['name']}", d) for d in event.get(side, [])]
    for where, holder in holders:
        for kind in ("facets", "inputFacets", "outputFacets"):
            for name, facet in (holder.get(kind) or {}).items():
                yield f"{where}.{kind}.{name}", facet


def test_openlineage_events_validate_against_the_official_schemas(broken_run: Any) -> None:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.exceptions import Unresolvable

    schemas = official_schemas()
    if not schemas:
        pytest.skip(
            "no official OpenLineage JSON schemas found: no installed package ships them; "
            "put the spec/ folder of an OpenLineage checkout in OPENLINEAGE_SPEC"
        )
    registry: Registry[Any] = Registry().with_resources(
        (uri, Resource.from_contents(document)) for uri, document in schemas.items()
    )
    _, _, _, events = broken_run
    missing, checked = set(), 0
    for event in events:
        targets = [
            ("event", event["schemaURL"], event),
            *[(w, f["_schemaURL"], f) for w, f in facets_of(event)],
        ]
        for where, url, value in targets:
            validator = Draft202012Validator(
                {"$ref": url}, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
            )
            try:
                errors = [e.message for e in validator.iter_errors(value)]
            except Unresolvable:
                missing.add(url.split("#")[0])
                continue
            assert not errors, f"{event['job']['name']} {event['eventType']} {where}: {errors}"
            checked += 1
    assert not missing, f"official schemas not found locally: {sorted(missing)}"
    assert checked > len(events)


# --- over HTTP


class Receiver(BaseHTTPRequestHandler):
    """An OpenLineage endpoint that keeps what it is sent."""

    received: list[tuple[str, str, dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], json.loads(body)))
        self.send_response(201)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, str, dict[str, Any]]]]]:
    received: list[tuple[str, str, dict[str, Any]]] = []
    handler = type("Receiving", (Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_openlineage_events_are_posted_to_an_http_receiver(
    shop: Path, receiver: tuple[str, list[tuple[str, str, dict[str, Any]]]]
) -> None:
    url, received = receiver
    setting = f"{{transport: http, url: '{url}', endpoint: api/v1/lineage, namespace: lake}}"
    with_lineage(shop, setting)
    project = load_project(shop)
    tasks = [f"ingest.{t}" for t in project.raw_tables] + [f"build.{m}" for m in project.models]
    parents = []
    for _ in range(2):  # built, then up to date: every task starts and completes each time
        received.clear()
        assert run_with_lineage(shop).ok
        kinds = {(path, kind) for path, kind, _ in received}
        assert kinds == {("/api/v1/lineage", "application/json")}
        events = [body for _, _, body in received]
        assert {e["job"]["namespace"] for e in events} == {"lake"}
        assert {name: [e["eventType"] for e in runs] for name, runs in jobs(events).items()} == {
            name: ["START", "COMPLETE"] for name in tasks
        }
        parents.append({e["run"]["facets"]["parent"]["run"]["runId"] for e in events})
    assert len(parents[0]) == len(parents[1]) == 1 and parents[0] != parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return cast(int, sock.getsockname()[1])


@pytest.mark.parametrize("address", ["refused", "malformed"])
def test_openlineage_receiver_down_does_not_fail_the_run(
    shop: Path, address: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = {
        "refused": f"http://hw:s3cret@127.0.0.1:{free_port()}",
        "malformed": "http://hw:s3cret@[not-an-address",
    }[address]
    with_lineage(shop, f"{{transport: http, url: '{url}'}}")
    seen: list[Event] = []
    with caplog.at_level(logging.WARNING, logger=LOG):
        report = run_with_lineage(shop, seen)
    assert report.ok
    assert {m for m in report.models.values() if m.status != "built"} == set()
    warnings = [r for r in caplog.records if r.name == LOG]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "the run goes on" in warnings[0].getMessage()
    assert "s3cret" not in caplog.text
    assert len(seen) > 2 * len(report.models)  # the events still reached the other sink


def test_openlineage_is_off_without_a_lineage_setting(shop: Path) -> None:
    project = load_project(shop)
    assert project.settings.lineage is None
    assert lineage_sink(project, cast(Stores, None), discard) is discard
