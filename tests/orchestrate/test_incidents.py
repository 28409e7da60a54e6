"""Incidents at the end of a run: a failing rule alerts once however many runs it fails in, and
resolves once when it passes; a failed run alerts until a run of its command succeeds; a
channel that is down or hangs holds up neither the run nor the other channels, and gets its
events later. Routing through the catalog: quiet hours and rate limits hold events (never drop
them), and a resolve goes only where its open went."""

from __future__ import annotations

import json
import time as clock
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from headwater.cli.alerts import alerts
from headwater.observe.alerts import Webhook
from headwater.observe.routing import QuietHours, RateLimit, Route, at_least
from headwater.orchestrate import RunReport, Stores, run
from headwater.orchestrate.alerting import Alerting
from headwater.orchestrate.stores import LakeStores
from headwater.project import load_project
from headwater.zones.catalog import Catalog
from headwater.zones.catalog.alerts import Incident, Pending
from tests.badinput.harness import write
from tests.conftest import NOW
from tests.observe.receivers import HttpReceiver, SmtpReceiver, free_port

ORDERS = """\
source: shop.orders
schema_version: "1"
delivery: batch
privacy_level: internal
owner: orders-team@example.com
connector: {kind: files, path: "data/*.csv", format: csv}
columns:
  - {name: order_id, type: bigint}
  - {name: amount, type: double}
rules:
  - {name: not_null_order_id, type: not_null, target: order_id}
"""
BAD = "order_id,amount\n1,10\n,20\n"  # an order without its id
GOOD = "order_id,amount\n1,10\n2,20\n"
KEY = "rule:raw.orders:not_null_order_id"


def make(root: Path, channels: list[str]) -> Path:
    alerts_yml = "".join(f"  - {c}\n" for c in channels)
    write(root, "headwater.yml", f"name: shop\nalerts:\n{alerts_yml}")
    write(root, "contracts/orders.yml", ORDERS)
    return root


def land_and_run(root: Path, n: int, data: str) -> RunReport:
    """Land batch `n` (a CSV body) and run the whole project, as `headwater run` does."""
    write(root, f"data/{n}.csv", data)
    project = load_project(root)
    stores = Stores.open(project)
    try:
        return run(project, stores, now=NOW + timedelta(hours=n))
    finally:
        stores.close()


def pending(root: Path) -> list[Pending]:
    stores = LakeStores.open(load_project(root))
    try:
        return stores.catalog.pending_alert_events()
    finally:
        stores.close()


def eventually(condition: Callable[[], bool], *, within: float = 15.0) -> None:
    """Wait for something other threads do (a delivery, a receiver taking a message)."""
    deadline = clock.monotonic() + within
    while not condition():
        assert clock.monotonic() < deadline, "it did not happen"
        clock.sleep(0.05)


def shown(root: Path, *args: str) -> Any:
    """`headwater alerts --format json ARGS` (the command as main registers it)."""
    app = typer.Typer()
    app.command()(alerts)
    app.command("noop")(lambda: None)  # a second command: typer keeps `alerts` a subcommand
    result = CliRunner().invoke(
        app, ["alerts", "-p", str(root), "--format", "json", *args], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_rule_failing_in_5_runs_alerts_once_and_resolves_once(tmp_path: Path) -> None:
    with HttpReceiver() as hook, SmtpReceiver() as smtp:
        root = make(
            tmp_path,
            [
                f"{{kind: webhook, url: '{hook.url}'}}",
                f"{{kind: email, host: {smtp.host}, port: {smtp.port}, "
                "from: headwater@example.com, to: [oncall@example.com]}",
            ],
        )
        for n in range(5):
            report = land_and_run(root, n, BAD)
            assert [c.passed for c in report.checks] == [False]
        eventually(lambda: not pending(root))
        assert [b["event"] for b in hook.bodies] == ["open"]
        assert [m["Subject"] for m in smtp.messages] == [
            "[headwater] OPEN error: rule not_null_order_id failed on raw.orders"
        ]
        opened = hook.bodies[0]
        assert opened["key"] == KEY and opened["kind"] == "rule_failed"
        assert opened["owner"] == "orders-team@example.com" and opened["severity"] == "error"
        assert "not_null on order_id: 1" in opened["message"]

        report = land_and_run(root, 5, GOOD)
        assert report.checks[0].passed
        eventually(lambda: not pending(root))
    assert [b["event"] for b in hook.bodies] == ["open", "resolved"]
    assert hook.bodies[1]["alert_id"] == opened["alert_id"]
    assert "passes again on raw.orders" in hook.bodies[1]["message"]
    assert [m["Subject"] for m in smtp.messages] == [
        "[headwater] OPEN error: rule not_null_order_id failed on raw.orders",
        "[headwater] RESOLVED error: rule not_null_order_id failed on raw.orders",
    ]
    [incident] = shown(root)["incidents"]  # the runs failed on the rule alone: no run_failed
    assert incident["state"] == "resolved" and incident["key"] == KEY
    assert {
        c["channel"].split(":")[0]: (c["delivered"], c["pending"]) for c in incident["channels"]
    } == {
        "log": (2, 0),
        "webhook": (2, 0),
        "email": (2, 0),
    }


def test_a_channel_that_is_down_or_hangs_holds_up_nothing_and_gets_its_events_later(
    tmp_path: Path,
) -> None:
    dead_port = free_port()  # nothing listens: refused at once
    dead_url = f"http://127.0.0.1:{dead_port}/hook"
    with HttpReceiver() as hang, SmtpReceiver() as smtp:
        hang.hanging = True  # takes the POST, never answers
        root = make(
            tmp_path,
            [
                f"{{kind: webhook, url: '{dead_url}'}}",
                f"{{kind: webhook, url: '{hang.url}', timeout: 5m}}",
                f"{{kind: email, host: {smtp.host}, port: {smtp.port}, "
                "from: headwater@example.com, to: [oncall@example.com]}",
            ],
        )
        report = land_and_run(root, 0, BAD)
        # the run ended while the hanging receiver still held its POST unanswered
        assert hang.held.is_set()
        events = {p.channel: p for p in pending(root)}
        held = events[f"webhook:{hang.url}"]
        assert held.attempts == 0 and held.last_error is None  # still being sent
        refused = events[f"webhook:{dead_url}"]
        assert refused.attempts == 1 and "ConnectError" in (refused.last_error or "")
        assert any(
            n.startswith(f"alerts not delivered to webhook:{dead_url}: ConnectError")
            and "kept and sent again by a later run" in n
            for n in report.notes
        ), report.notes
        assert any(f"still being sent to webhook:{hang.url}" in n for n in report.notes)
        eventually(lambda: len(smtp.messages) == 1)  # the other channels did not wait

        # another pass meanwhile leaves the event being sent alone: never sent twice
        project = load_project(root)
        stores = LakeStores.open(project)
        try:
            failed = Alerting.of(project).deliver(stores.catalog, datetime.now(UTC))
        finally:
            stores.close()
        # ... and the refused one waits 30 s before it is tried again
        assert failed == [] and len(hang.requests) == 1
        assert events[f"webhook:{dead_url}"] == _event(root, dead_url)

        hang.release()  # the connection drops without an answer
        eventually(lambda: "RemoteProtocolError" in str(_event(root, hang.url).last_error))
        with HttpReceiver(port=dead_port) as revived:
            stores = LakeStores.open(project)
            try:  # a scheduler tick a minute later: the refused event is due again
                later = datetime.now(UTC) + timedelta(minutes=1)
                Alerting.of(project).deliver(stores.catalog, later)
            finally:
                stores.close()
            assert [b["event"] for b in revived.bodies] == ["open"]
            land_and_run(root, 1, BAD)  # the rule fails again: the incident stays as it is
            eventually(lambda: not pending(root))
            land_and_run(root, 2, GOOD)
            eventually(lambda: not pending(root))
    assert [b["event"] for b in revived.bodies] == ["open", "resolved"]
    assert [b["event"] for b in hang.bodies] == ["open", "resolved"]
    assert len(smtp.messages) == 2


def _event(root: Path, url: str) -> Pending:
    [event] = [p for p in pending(root) if p.channel == f"webhook:{url}"]
    return event


BROKEN = "select no_such_column from range(3)\n"


def test_a_failed_run_alerts_until_a_run_of_its_command_succeeds(tmp_path: Path) -> None:
    with HttpReceiver() as hook:
        root = make(tmp_path, [f"{{kind: webhook, url: '{hook.url}'}}"])
        write(root, "contracts/orders.yml", ORDERS.split("rules:")[0])
        write(root, "models/marts/broken.sql", BROKEN)
        for n in range(2):
            assert not land_and_run(root, n, GOOD).ok
        write(root, "models/marts/broken.sql", "select 1 as fixed\n")
        assert land_and_run(root, 2, GOOD).ok
        eventually(lambda: not pending(root))
    assert [b["event"] for b in hook.bodies] == ["open", "resolved"]
    opened, resolved = hook.bodies
    assert opened["key"] == "run_failed:run" and opened["title"] == "headwater run failed"
    assert "model marts.broken failed: " in opened["message"]
    assert "no_such_column" in opened["message"]
    assert "succeeded" in resolved["message"]


@dataclass
class Recorder:
    """A channel that takes every event (the test double of a receiver)."""

    name: str
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def send(self, body: dict[str, Any]) -> str | None:
        self.bodies.append(body)
        return None


def incident(key: str, severity: str = "error", owner: str | None = None) -> Incident:
    return Incident(key, "rule_failed", "raw.orders", severity, f"{key} failed", owner)


def test_quiet_hours_hold_events_until_they_end_and_let_the_exempt_through(
    tmp_path: Path,
) -> None:
    pager = Recorder("pager")
    quiet = QuietHours(time(22), time(7), UTC, exempt=frozenset({"critical"}))
    alerting = Alerting([pager], {"project": "shop"}, [Route("pager", quiet=quiet)])
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    night = datetime(2026, 12, 10, 23, 0, tzinfo=UTC)
    try:
        alerting.open(catalog, incident("rule:a"), now=night)
        alerting.open(catalog, incident("rule:b", "critical"), now=night)
        assert alerting.deliver(catalog, night) == []
        assert [b["key"] for b in pager.bodies] == ["rule:b"]  # critical pages at night
        [held] = catalog.pending_alert_events()
        assert held.not_before == datetime(2026, 12, 11, 7, 0, tzinfo=UTC)
        alerting.resolve(catalog, "rule:a", message="fine again", now=night)
        # quiet hours taken out of headwater.yml: the resolve still waits for its open
        loud = Alerting([pager], {"project": "shop"}, [Route("pager")])
        loud.deliver(catalog, night + timedelta(minutes=30))
        assert len(pager.bodies) == 1
        alerting.deliver(catalog, datetime(2026, 12, 11, 6, 59, tzinfo=UTC))
        assert len(pager.bodies) == 1
        alerting.deliver(catalog, datetime(2026, 12, 11, 7, 0, tzinfo=UTC))
        assert [(b["key"], b["event"]) for b in pager.bodies] == [
            ("rule:b", "open"),
            ("rule:a", "open"),
            ("rule:a", "resolved"),
        ]
    finally:
        catalog.close()


def test_a_channel_that_refuses_is_tried_again_less_and_less_often(tmp_path: Path) -> None:
    with HttpReceiver(status=404) as hook:  # a wrong path: refused every time
        webhook = Webhook(hook.url, timeout_s=5)
        alerting = Alerting([webhook], {"project": "shop"}, [])
        catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
        noon = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
        try:
            alerting.open(catalog, incident("rule:a"), now=noon)
            alerting.deliver(catalog, noon)
            at, gaps = noon, []
            for wait in (30, 60, 120, 240, 480, 960, 1920, 3600, 3600):
                alerting.deliver(catalog, at + timedelta(seconds=wait - 1))  # not yet
                asked = len(hook.requests)
                alerting.deliver(catalog, at + timedelta(seconds=wait))
                gaps.append((wait, len(hook.requests) - asked))
                at += timedelta(seconds=wait)
            # 30 s after the first refusal, twice as long after each next, at most an hour
            assert gaps == [(w, 1) for w, _ in gaps]
            [event] = catalog.pending_alert_events()
            assert event.attempts == 10 and "HTTP 404" in (event.last_error or "")
            hook.status = 204  # fixed: the event still goes, once
            alerting.deliver(catalog, at + timedelta(hours=1))
            assert len(hook.requests) == 11 and catalog.pending_alert_events() == []
        finally:
            catalog.close()


def test_a_rate_limit_holds_the_events_beyond_it_and_drops_none(tmp_path: Path) -> None:
    chat = Recorder("chat")
    limit = RateLimit(2, timedelta(hours=1))
    alerting = Alerting([chat], {"project": "shop"}, [Route("chat", rate_limit=limit)])
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    noon = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
    try:
        for i in range(5):
            alerting.open(catalog, incident(f"rule:{i}"), now=noon)
        alerting.deliver(catalog, noon)
        assert len(chat.bodies) == 2
        assert {p.not_before for p in catalog.pending_alert_events()} == {noon + timedelta(hours=1)}
        alerting.deliver(catalog, noon + timedelta(minutes=30))
        assert len(chat.bodies) == 2
        alerting.deliver(catalog, noon + timedelta(hours=1))
        assert len(chat.bodies) == 4
        alerting.deliver(catalog, noon + timedelta(hours=2))
        assert [b["key"] for b in chat.bodies] == [f"rule:{i}" for i in range(5)]
        assert catalog.pending_alert_events() == []
    finally:
        catalog.close()


def test_an_incident_goes_where_its_severity_and_owner_send_it_and_resolves_there(
    tmp_path: Path,
) -> None:
    pager, chat, orders = Recorder("pager"), Recorder("chat"), Recorder("orders")
    routes = [
        Route("pager", severities=at_least("error")),
        Route("chat"),
        Route("orders", owners=frozenset({"orders-team@example.com"})),
    ]
    alerting = Alerting([pager, chat, orders], {"project": "shop"}, routes)
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    try:
        alerting.open(catalog, incident("rule:warned", "warn"), now=NOW)
        alerting.open(catalog, incident("rule:owned", "error", "orders-team@example.com"), now=NOW)
        assert not alerting.open(catalog, incident("rule:owned", "error"), now=NOW)  # open
        alerting.resolve(catalog, "rule:warned", message="ok", now=NOW)
        alerting.resolve(catalog, "rule:owned", message="ok", now=NOW)
        alerting.deliver(catalog, NOW)
    finally:
        catalog.close()

    def seen(channel: Recorder) -> list[tuple[str, str]]:
        return [(b["key"], b["event"]) for b in channel.bodies]

    assert seen(pager) == [("rule:owned", "open"), ("rule:owned", "resolved")]
    assert seen(orders) == [("rule:owned", "open"), ("rule:owned", "resolved")]
    assert seen(chat) == [
        ("rule:warned", "open"),
        ("rule:owned", "open"),
        ("rule:warned", "resolved"),
        ("rule:owned", "resolved"),
    ]


def test_headwater_alerts_lists_open_incidents_first_with_their_deliveries(
    tmp_path: Path,
) -> None:
    root = make(tmp_path, [f"{{kind: webhook, url: 'http://127.0.0.1:{free_port()}/hook'}}"])
    project = load_project(root)
    stores = LakeStores.open(project)
    try:
        alerting = Alerting.of(project)
        alerting.open(stores.catalog, incident("rule:old"), now=NOW)
        alerting.resolve(stores.catalog, "rule:old", message="ok", now=NOW + timedelta(hours=1))
        alerting.open(stores.catalog, incident("rule:new", "warn"), now=NOW - timedelta(days=1))
        alerting.deliver(stores.catalog, NOW + timedelta(hours=2))
    finally:
        stores.close()
    listed = shown(root)["incidents"]
    assert [(i["key"], i["state"]) for i in listed] == [
        ("rule:new", "open"),
        ("rule:old", "resolved"),
    ]
    old = {c["channel"].split(":")[0]: c for c in listed[1]["channels"]}
    assert old["log"]["delivered"] == 2
    assert old["webhook"]["pending"] == 2 and "ConnectError" in old["webhook"]["last_error"]
    new = {c["channel"].split(":")[0]: c for c in listed[0]["channels"]}
    # the webhook refused the older incident's open: it got nothing later in that pass
    assert new["webhook"] == {**new["webhook"], "pending": 1, "last_error": None}
    assert [i["key"] for i in shown(root, "--open")["incidents"]] == ["rule:new"]
    app = typer.Typer()
    app.command()(alerts)
    app.command("noop")(lambda: None)
    table = CliRunner().invoke(app, ["alerts", "-p", str(root)], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    said = "".join(table.output.split())  # however the terminal wrapped it
    assert "OPEN" in said and "resolved" in said
    assert "2waiting" in said and "ConnectError" in said
