"""OpenTelemetry traces of runs: with an OTLP endpoint configured, a run sends one span for
itself and a child span per task, with the times the catalog recorded, to a real OTLP/HTTP
receiver; an endpoint that cannot be reached, or OpenTelemetry missing, gives a note and the
run completes."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from headwater.observe.tracing import TracedRun, TracedTask, export_run
from headwater.orchestrate import Stores, run
from headwater.project import load_project
from tests.conftest import NOW


class Receiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1: the requests it decoded, in order."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                received.paths.append(self.path)
                received.requests.append(request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """Every span received, with its resource's attributes."""
        return [
            (_attrs(rs.resource.attributes), span)
            for request in self.requests
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def _attrs(pairs: Any) -> dict[str, Any]:
    out = {}
    for kv in pairs:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind)
    return out


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000) * 1_000


def test_a_run_sends_its_span_and_a_child_span_per_task_with_the_recorded_times(
    shop: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    project = load_project(shop)
    stores = Stores.open(project)
    try:
        report = run(project, stores, now=NOW)
        recorded = stores.catalog.find_run(report.run_id)
        tasks = {t["task"]: t for t in stores.catalog.run_tasks(report.run_id)}
    finally:
        stores.close()
    assert report.ok
    assert not [n for n in report.notes if "trace" in n], report.notes
    assert receiver.paths == ["/v1/traces"]  # one request, at the standard path
    received = receiver.spans()
    resources = {r["service.name"] for r, _ in received}
    assert resources == {"shop"}  # the project's name
    [root] = [s for _, s in received if not s.parent_span_id]
    assert root.name == "headwater run"
    assert _attrs(root.attributes) == {
        "headwater.run_id": report.run_id,
        "headwater.command": "run",
        "headwater.status": "success",
        "headwater.env": "prod",
    }
    assert recorded is not None
    assert root.start_time_unix_nano == _ns(recorded["started_at"])
    assert root.end_time_unix_nano == _ns(recorded["ended_at"])
    children = [s for _, s in received if s.parent_span_id]
    assert len(children) == len(tasks) == 12  # 4 raw tables, 8 models
    for span in children:
        assert span.parent_span_id == root.span_id
        assert span.trace_id == root.trace_id
        attrs = _attrs(span.attributes)
        task = tasks[attrs["headwater.task"]]
        assert span.name == f"{task['stage']} {task['task']}"
        assert span.start_time_unix_nano == _ns(task["started_at"])
        assert span.end_time_unix_nano == _ns(task["ended_at"])
        assert root.start_time_unix_nano <= span.start_time_unix_nano
        assert span.end_time_unix_nano <= root.end_time_unix_nano
        assert attrs["headwater.stage"] == task["stage"]
        assert attrs["headwater.status"] == task["status"]
        assert attrs.get("headwater.rows") == task["rows"]
        assert attrs.get("headwater.attempts") == task["attempts"]
        assert attrs.get("headwater.rows_in") == task["rows_in"]
        assert attrs.get("headwater.bytes") == task["bytes"]
        assert span.status.code != Status.STATUS_CODE_ERROR
    landed = _attrs(next(s for _, s in received if s.name == "ingest raw.orders").attributes)
    assert landed["headwater.rows"] == 23_998 and landed["headwater.bytes"] > 0


def test_a_failed_task_is_an_error_span_under_an_error_run(receiver: Receiver) -> None:
    start = datetime(2026, 11, 1, 12, 0, 0, 123456, tzinfo=UTC)
    traced = TracedRun(
        run_id="r1",
        command="build --env dev",
        status="failed",
        env="dev",
        started_at=start,
        ended_at=start + timedelta(seconds=9),
        tasks=[
            TracedTask(
                "clean.a",
                "build",
                "built",
                start + timedelta(seconds=1),
                start + timedelta(seconds=2),
                rows=3,
                queued_s=0.5,
            ),
            TracedTask(
                "marts.b",
                "build",
                "failed",
                start + timedelta(seconds=2),
                start + timedelta(seconds=4),
                attempts=3,
                error="Binder Error: column x not found\nLINE 1: …",
            ),
            TracedTask("marts.c", "build", "skipped"),  # never started: at the run's end
        ],
    )
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
    assert export_run(traced, service="t", environ=environ) is None
    spans = {s.name: s for _, s in receiver.spans()}
    root = spans["headwater build --env dev"]
    assert root.status.code == Status.STATUS_CODE_ERROR
    assert _attrs(root.attributes)["headwater.env"] == "dev"
    failed = spans["build marts.b"]
    assert failed.status.code == Status.STATUS_CODE_ERROR
    assert failed.status.message == "Binder Error: column x not found"
    assert _attrs(failed.attributes)["headwater.attempts"] == 3
    assert spans["build clean.a"].status.code != Status.STATUS_CODE_ERROR
    assert _attrs(spans["build clean.a"].attributes)["headwater.queued_s"] == 0.5
    assert spans["build clean.a"].start_time_unix_nano == _ns(start + timedelta(seconds=1))
    skipped = spans["build marts.c"]
    assert skipped.start_time_unix_nano == skipped.end_time_unix_nano == root.end_time_unix_nano


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_endpoint_nothing_listens_on_gives_a_note_and_the_run_completes(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")
    project = load_project(shop)
    stores = Stores.open(project)
    try:
        report = run(project, stores, now=NOW)
        recorded = stores.catalog.find_run(report.run_id)
    finally:
        stores.close()
    assert report.ok and recorded is not None and recorded["status"] == "success"
    [note] = [n for n in report.notes if "trace" in n]
    assert note == f"the run's trace was not sent to {url}: Connection refused"
    assert report.timings["observe"] < 3  # bounded by the timeout, not the exporter's 10 s


def test_without_an_endpoint_nothing_is_sent_or_noted(receiver: Receiver) -> None:
    traced = TracedRun("r", "run", "success", None, NOW, NOW)
    assert export_run(traced, service="t", environ={}) is None
    assert receiver.requests == []


def test_without_opentelemetry_installed_the_note_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    traced = TracedRun("r", "run", "success", None, NOW, NOW)
    started = time.perf_counter()
    note = export_run(
        traced, service="t", environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    )
    assert note is not None
    assert "OTEL_EXPORTER_OTLP_ENDPOINT is set" in note
    assert "pip install 'headwater[otel]'" in note
    assert time.perf_counter() - started < 1
