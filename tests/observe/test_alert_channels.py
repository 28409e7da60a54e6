"""Alert channels against real receivers on 127.0.0.1 (HTTP and aiosmtpd's SMTP), and the
routing that picks channels for an incident and holds its events (quiet hours, rate limits)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from headwater.errors import SpecError
from headwater.observe.alerts import Email, PagerDuty, Slack, Webhook
from headwater.observe.routing import QuietHours, RateLimit, Route, at_least, route
from headwater.orchestrate.sla import Alerting
from headwater.project import load_project
from tests.badinput.harness import write
from tests.observe.receivers import HttpReceiver, SmtpReceiver, free_port

OPEN: dict[str, Any] = {
    "project": "shop",
    "event": "open",
    "alert_id": 7,
    "key": "rule:raw.orders:not_null_order_id",
    "kind": "rule_failed",
    "subject": "raw.orders",
    "severity": "error",
    "title": "rule not_null_order_id failed on raw.orders",
    "message": "rule not_null_order_id failed on raw.orders: not_null on order_id: 3 <rows>",
    "owner": "orders-team@example.com",
    "tags": ["finance"],
    "opened_at": "2026-12-10T04:30:00+00:00",
}
RESOLVED = {
    **OPEN,
    "event": "resolved",
    "message": "rule not_null_order_id passes again on raw.orders",
    "resolved_at": "2026-12-10T09:45:00+00:00",
}
BERLIN = ZoneInfo("Europe/Berlin")


def test_a_webhook_posts_the_event_as_it_is_and_says_why_it_was_refused() -> None:
    with HttpReceiver() as hook:
        channel = Webhook(hook.url, {"Authorization": "Bearer t"})
        assert channel.send(OPEN) is None
        hook.failing = 1
        refused = channel.send(RESOLVED)
    assert hook.bodies == [OPEN]
    assert hook.requests[0][1]["Authorization"] == "Bearer t"
    assert refused is not None and refused.startswith("HTTP 503")
    down = Webhook(f"http://127.0.0.1:{free_port()}/hook", timeout_s=2).send(OPEN)
    assert down is not None and "ConnectError" in down


def test_slack_gets_text_and_blocks_red_when_open_green_when_resolved() -> None:
    with HttpReceiver(status=200) as hook:
        channel = Slack(hook.url, written="${SLACK_URL}")
        assert channel.send(OPEN) is None and channel.send(RESOLVED) is None
    assert channel.name == "slack:${SLACK_URL}"
    opened, resolved = hook.bodies
    assert opened["text"].startswith(
        ":red_circle: OPEN error: rule not_null_order_id failed on raw.orders\n"
    )
    assert resolved["text"].startswith(":large_green_circle: RESOLVED error: rule not_null")
    section, context = opened["blocks"]
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert "order_id: 3 &lt;rows&gt;" in section["text"]["text"]  # not read as a Slack link
    assert "owner orders-team@example.com" in context["elements"][0]["text"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_email_goes_over_smtp_with_a_status_subject_text_and_the_event_as_json() -> None:
    with SmtpReceiver(users={"alerts": "pa55word"}) as smtp:
        channel = Email(
            smtp.host,
            smtp.port,
            "headwater@example.com",
            ("oncall@example.com", "data@example.com"),
            username="alerts",
            password="pa55word",
            timeout_s=5,
        )
        assert channel.send(OPEN) is None
        assert channel.send(RESOLVED) is None
    opened, resolved = smtp.messages
    assert (
        opened["Subject"] == "[headwater] OPEN error: rule not_null_order_id failed on raw.orders"
    )
    assert resolved["Subject"].startswith("[headwater] RESOLVED error: rule not_null_order_id")
    assert resolved["In-Reply-To"] == opened["Message-ID"]  # one thread in a mail client
    assert smtp.envelopes[0] == (
        "headwater@example.com",
        ["oncall@example.com", "data@example.com"],
    )
    assert smtp.logins == ["alerts", "alerts"]
    text = opened.get_content()
    assert "not_null on order_id: 3 <rows>" in text and "owner: orders-team@example.com" in text
    assert json.loads(text.split("-- the event as JSON --", 1)[1]) == OPEN


def test_email_that_cannot_reach_or_log_in_says_why() -> None:
    with SmtpReceiver() as smtp:  # it offers no login
        channel = Email(
            smtp.host,
            smtp.port,
            "a@example.com",
            ("b@example.com",),
            username="alerts",
            password="pa55word",
            timeout_s=5,
        )
        refused = channel.send(OPEN)
    assert refused is not None and "SMTP AUTH extension not supported" in refused
    assert smtp.messages == []
    down = Email("127.0.0.1", free_port(), "a@example.com", ("b@example.com",), timeout_s=2)
    assert "ConnectionRefusedError" in (down.send(OPEN) or "")


def test_pagerduty_triggers_and_resolves_one_incident_by_its_key() -> None:
    with HttpReceiver(status=202) as pd:
        channel = PagerDuty("R0UTING", pd.url, written="${PD_KEY}")
        assert channel.send(OPEN) is None and channel.send(RESOLVED) is None
        pd.status = 400
        refused = channel.send(OPEN)
    trigger, resolve = pd.bodies[:2]
    assert trigger["routing_key"] == "R0UTING" and trigger["event_action"] == "trigger"
    assert resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"] == OPEN["key"]
    payload = trigger["payload"]
    assert payload["severity"] == "error" and payload["source"] == "headwater:shop"
    assert payload["summary"].startswith("rule not_null_order_id failed on raw.orders: ")
    assert payload["custom_details"] == OPEN
    assert refused is not None and refused.startswith("HTTP 400")  # only 202 is delivered
    warn = PagerDuty("k", pd.url)
    assert warn.name == "pagerduty:"  # named by the key as written (a ${VAR}), never the key


def test_a_channel_takes_the_severities_owners_and_tags_it_names() -> None:
    everything = Route("log")
    errors = Route("pager", severities=at_least("error"))
    warnings = Route("chat", severities=frozenset({"warn"}))
    orders = Route("orders", owners=frozenset({"orders-team@example.com"}))
    finance_errors = Route("finance", severities=at_least("error"), tags=frozenset({"finance"}))
    routes = [everything, errors, warnings, orders, finance_errors]

    def to(severity: str, owner: str | None = None, tags: tuple[str, ...] = ()) -> list[str]:
        return route(routes, severity=severity, owner=owner, tags=tags)

    assert to("warn") == ["log", "chat"]
    assert to("error", "orders-team@example.com") == ["log", "pager", "orders"]
    assert to("critical", None, ("finance", "pii")) == ["log", "pager", "finance"]
    assert to("warn", "orders-team@example.com", ("finance",)) == ["log", "chat", "orders"]
    assert at_least("warn") == {"warn", "error", "critical"}


@pytest.mark.parametrize(
    ("now", "until"),
    [
        # Berlin is UTC+1 in December
        (datetime(2026, 12, 10, 20, 59, tzinfo=UTC), None),  # 21:59 Berlin: not yet quiet
        (datetime(2026, 12, 10, 21, 0, tzinfo=UTC), datetime(2026, 12, 11, 6, 0, tzinfo=UTC)),
        (datetime(2026, 12, 11, 2, 30, tzinfo=UTC), datetime(2026, 12, 11, 6, 0, tzinfo=UTC)),
        (datetime(2026, 12, 11, 6, 0, tzinfo=UTC), None),  # 07:00 Berlin: over
        # the night clocks go forward (29 March 2026): 07:00 Berlin is 05:00 UTC
        (datetime(2026, 3, 28, 23, 0, tzinfo=UTC), datetime(2026, 3, 29, 5, 0, tzinfo=UTC)),
    ],
)
def test_quiet_hours_hold_an_event_until_they_end(now: datetime, until: datetime | None) -> None:
    quiet = QuietHours(time(22), time(7), BERLIN, exempt=frozenset({"critical"}))
    assert quiet.until(now, "error") == until
    assert quiet.until(now, "critical") is None  # let through: it pages at night too


def test_quiet_hours_within_one_day() -> None:
    lunch = QuietHours(time(12), time(13, 30), ZoneInfo("UTC"))
    assert lunch.until(datetime(2026, 1, 5, 12, 10, tzinfo=UTC), "warn") == datetime(
        2026, 1, 5, 13, 30, tzinfo=UTC
    )
    assert lunch.until(datetime(2026, 1, 5, 13, 30, tzinfo=UTC), "warn") is None
    assert lunch.until(datetime(2026, 1, 5, 23, 0, tzinfo=UTC), "warn") is None


def test_a_rate_limit_holds_events_until_the_window_has_room() -> None:
    limit = RateLimit(2, timedelta(hours=1))
    now = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
    sent = [now - timedelta(minutes=m) for m in (70, 50, 10)]  # the first is out of the window
    assert limit.until(now, sent[:2]) is None  # one in the window: room for one more
    assert limit.until(now, sent) == now + timedelta(minutes=10)  # when the 11:10 one ages out
    route_ = Route("chat", rate_limit=limit, quiet=QuietHours(time(22), time(7), ZoneInfo("UTC")))
    night = datetime(2026, 12, 10, 23, 0, tzinfo=UTC)
    assert route_.hold(night, "error", []) == datetime(2026, 12, 11, 7, 0, tzinfo=UTC)
    assert route_.hold(now, "error", sent) == now + timedelta(minutes=10)
    assert route_.hold(now, "error", []) is None


ALL_KINDS = """\
name: shop
alerts:
  - {kind: webhook, url: "http://127.0.0.1:9/${HOOK_PATH}"}
  - {kind: slack, url: "${SLACK_URL}", severity: error}
  - kind: email
    host: 127.0.0.1
    port: 2525
    username: alerts
    password: "${SMTP_PASSWORD}"
    from: headwater@example.com
    to: [oncall@example.com]
    owners: [orders-team@example.com]
    quiet_hours: "22:00-07:00 Europe/Berlin"
    quiet_hours_except: [critical]
  - {kind: pagerduty, routing_key: "${PD_KEY}", severity: [critical], rate_limit: 10/h}
  - {kind: log, path: logs/alerts.jsonl, tags: [finance]}
"""
ENV = {
    "HOOK_PATH": "h00k",
    "SLACK_URL": "http://127.0.0.1:9/s",
    "SMTP_PASSWORD": "pa55",
    "PD_KEY": "k3y!",
}


def test_headwater_yml_builds_every_kind_of_channel_with_its_route(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    write(tmp_path, "headwater.yml", ALL_KINDS)
    alerting = Alerting.of(load_project(tmp_path))
    assert alerting.names == [
        f"log:{tmp_path / '.headwater/alerts.log'}",
        "webhook:http://127.0.0.1:9/${HOOK_PATH}",
        "slack:${SLACK_URL}",
        "email:oncall@example.com",
        "pagerduty:${PD_KEY}",
        f"log:{tmp_path / 'logs/alerts.jsonl'}",
    ]
    webhook, slack, email, pager = alerting.channels[1:5]
    assert isinstance(webhook, Webhook) and webhook.url == "http://127.0.0.1:9/h00k"
    assert isinstance(slack, Slack) and slack.url == "http://127.0.0.1:9/s"
    assert isinstance(email, Email) and (email.port, email.password) == (2525, "pa55")
    assert isinstance(pager, PagerDuty) and pager.routing_key == "k3y!"
    assert pager.url == "https://events.pagerduty.com/v2/enqueue"

    def to(severity: str, owner: str | None = None, tags: tuple[str, ...] = ()) -> list[str]:
        found = route(alerting.routes, severity=severity, owner=owner, tags=tags)
        return [n.split(":")[0] for n in found]

    assert to("warn") == ["log", "webhook"]
    assert to("critical", "orders-team@example.com", ("finance",)) == [
        "log",
        "webhook",
        "slack",
        "email",
        "pagerduty",
        "log",
    ]


def test_an_unset_variable_names_headwater_yml_and_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        if name != "SMTP_PASSWORD":
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("SMTP_PASSWORD", raising=False)
    write(tmp_path, "headwater.yml", ALL_KINDS)
    project = load_project(tmp_path)
    with pytest.raises(SpecError) as caught:
        Alerting.of(project)
    assert "SMTP_PASSWORD is not set (used in headwater.yml: alerts[2].password)" in str(
        caught.value
    )
    # after a run (not strict) the channel is kept, refusing with that reason until it is set
    lenient = Alerting.of(project, strict=False)
    assert "email:oncall@example.com" in lenient.names
    [problem] = lenient.problems
    assert "alerts[2].password" in problem
    assert "SMTP_PASSWORD is not set" in (lenient.channels[3].send(OPEN) or "")


@pytest.mark.parametrize(
    ("channel", "said"),
    [
        ("{kind: sms, url: 'http://x'}", "alerts[0].kind: 'sms' is not valid; expected one of"),
        (
            "{kind: email, host: smtp.example.com, from: a@example.com}",
            "alerts[0]: an email channel needs `to:`",
        ),
        (
            "{kind: webhook, url: 'http://x', quiet_hours: 'at night'}",
            "alerts[0].quiet_hours: 'at night' is not a span of hours",
        ),
        (
            "{kind: webhook, url: 'http://x', quiet_hours: '22:00-07:00 Mars/Olympus'}",
            "alerts[0].quiet_hours: 'Mars/Olympus' is not a time zone",
        ),
        ("{kind: webhook, url: 'http://x', rate_limit: lots}", "alerts[0].rate_limit: 'lots'"),
        ("{kind: webhook, url: 'http://x', severity: fatal}", "'fatal' is not a severity"),
        ("{kind: webhook, url: 'http://x', to: [a@example.com]}", "`to:` is for email channels"),
        ("{kind: pagerduty}", "a pagerduty channel needs `routing_key:`"),
        (
            "{kind: email, host: h, from: a@b.c, to: [d@e.f], username: u, password: hunter2}",
            "alerts[0].password: write the password as ${VAR}",
        ),
    ],
)
def test_bad_alert_config_is_a_clear_error(tmp_path: Path, channel: str, said: str) -> None:
    write(tmp_path, "headwater.yml", f"name: shop\nalerts:\n  - {channel}\n")
    with pytest.raises(SpecError) as caught:
        load_project(tmp_path)
    assert str(caught.value).startswith("headwater.yml:3: ")
    assert said in str(caught.value)


def test_a_config_of_before_still_loads(tmp_path: Path) -> None:
    write(
        tmp_path,
        "headwater.yml",
        "name: shop\nalerts:\n  - {kind: webhook, url: 'https://hooks.example.com/hw', "
        "headers: {X-Team: data}}\n  - {kind: log, path: logs/a.jsonl}\n",
    )
    alerting = Alerting.of(load_project(tmp_path))
    assert alerting.names[1:] == [
        "webhook:https://hooks.example.com/hw",
        f"log:{tmp_path / 'logs/a.jsonl'}",
    ]
