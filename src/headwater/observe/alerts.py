"""Alert channels: where an alert event (an incident opened or resolved) is sent.

A JSON webhook (POST, any 2xx is delivered), a Slack incoming webhook (text and blocks), an
e-mail over SMTP, a PagerDuty Events API v2 event (202 is delivered) and a JSON-lines log
file. Sending never raises: a channel that fails says why, and the event is kept to be sent
again (see `zones.catalog.alerts`).

An event's body is the incident as the catalog queues it: `event` (open | resolved), `key`,
`kind`, `subject`, `severity`, `title`, `message`, `owner`, `tags`, `opened_at`,
`resolved_at`, `alert_id` and the `project`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
# our severities as PagerDuty's (it has no `warn`)
_PAGERDUTY_SEVERITY = {"info": "info", "warn": "warning", "error": "error", "critical": "critical"}


class Channel(Protocol):
    @property
    def name(self) -> str:
        """Names the channel in the catalog (stable across restarts)."""
        ...

    def send(self, body: dict[str, Any]) -> str | None:
        """Send one alert event; None when delivered, else why not."""
        ...


def headline(body: dict[str, Any]) -> str:
    """What the incident is, in a few words: "rule not_null_order_id failed on raw.orders"."""
    return str(body.get("title") or f"{body.get('kind')} on {body.get('subject')}")


def status_line(body: dict[str, Any]) -> str:
    """ "OPEN error: rule not_null_order_id failed on raw.orders" (or RESOLVED …)."""
    state = "OPEN" if body.get("event") == "open" else "RESOLVED"
    return f"{state} {body.get('severity')}: {headline(body)}"


def _post(
    url: str,
    payload: dict[str, Any],
    *,
    headers: dict[str, str],
    timeout_s: float,
    delivered: Callable[[int], bool] = lambda status: 200 <= status < 300,
) -> str | None:
    import httpx

    try:
        answer = httpx.post(url, json=payload, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as err:
        return f"{type(err).__name__}: {err}"
    if delivered(answer.status_code):
        return None
    return f"HTTP {answer.status_code}: {answer.text[:200]}"


@dataclass(frozen=True)
class Webhook:
    url: str  # as sent: `${VAR}`s expanded
    headers: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 10.0
    written: str = ""  # the URL as headwater.yml writes it (a secret stays a `${VAR}`)
    label: str | None = None  # the channel's `name:` in headwater.yml

    @property
    def name(self) -> str:
        return self.label or f"webhook:{self.written or self.url}"

    def send(self, body: dict[str, Any]) -> str | None:
        return _post(self.url, body, headers=self.headers, timeout_s=self.timeout_s)


@dataclass(frozen=True)
class LogFile:
    path: Path
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or f"log:{self.path}"

    def send(self, body: dict[str, Any]) -> str | None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as log:
                log.write(json.dumps(body, default=str, sort_keys=True) + "\n")
        except OSError as err:
            return f"cannot write {self.path}: {err.strerror or err}"
        return None


@dataclass(frozen=True)
class Slack:
    """A Slack incoming webhook: a one-line `text` (what notifications show) and `blocks`."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 10.0
    written: str = ""
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or f"slack:{self.written or self.url}"

    def send(self, body: dict[str, Any]) -> str | None:
        message = slack_message(body)
        return _post(self.url, message, headers=self.headers, timeout_s=self.timeout_s)


def slack_message(body: dict[str, Any]) -> dict[str, Any]:
    """The Slack message of an event: a red circle for an open incident, green resolved."""
    mark = ":red_circle:" if body.get("event") == "open" else ":large_green_circle:"
    line = f"{mark} {_slack(status_line(body))}"
    message = _slack(str(body.get("message") or ""))
    context = [f"project {body.get('project')}", f"key `{_slack(str(body.get('key')))}`"]
    if body.get("owner"):
        context.append(f"owner {_slack(str(body['owner']))}")
    context.append(f"opened {body.get('opened_at')}")
    if body.get("resolved_at"):
        context.append(f"resolved {body['resolved_at']}")
    return {
        "text": f"{line}\n{message}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{line}*\n{message}"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]},
        ],
    }


def _slack(text: str) -> str:
    """Text Slack shows as written (its mrkdwn reads <, > and & as markup)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class Email:
    """An e-mail over SMTP: the status line as subject, plain text and the event as JSON."""

    host: str
    port: int
    sender: str
    to: tuple[str, ...]
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or f"email:{','.join(self.to)}"

    def send(self, body: dict[str, Any]) -> str | None:
        import smtplib
        import ssl

        message = email_message(body, sender=self.sender, to=self.to)
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        try:
            if self.ssl:
                smtp = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout_s, context=context
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
            with smtp:
                if self.starttls:
                    smtp.starttls(context=context)
                if self.username is not None:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)  # some recipients refused: the others have it
        except (smtplib.SMTPException, OSError) as err:
            return f"{type(err).__name__}: {err}"
        return None


def email_message(body: dict[str, Any], *, sender: str, to: tuple[str, ...]) -> Any:
    """The `email.message.EmailMessage` of an event; the resolve replies to the open, so mail
    clients show them as one thread."""
    from email import policy
    from email.message import EmailMessage
    from email.utils import formatdate

    # headers up to SMTP's line limit stay on one line (folded, a subject starts with a space)
    message = EmailMessage(policy=policy.default.clone(max_line_length=998))
    message["Subject"] = f"[headwater] {status_line(body)}"
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(localtime=False)
    thread = f"<alert-{body.get('alert_id')}.{body.get('project')}@headwater>"
    if body.get("event") == "open":
        message["Message-ID"] = thread
    else:
        message["In-Reply-To"] = message["References"] = thread
    facts = [
        ("project", body.get("project")),
        ("key", body.get("key")),
        ("subject", body.get("subject")),
        ("owner", body.get("owner")),
        ("tags", ", ".join(body.get("tags") or []) or None),
        ("opened", body.get("opened_at")),
        ("resolved", body.get("resolved_at")),
    ]
    text = [status_line(body), "", str(body.get("message") or ""), ""]
    text += [f"{k}: {v}" for k, v in facts if v]
    text += ["", "-- the event as JSON --", json.dumps(body, default=str, indent=2, sort_keys=True)]
    message.set_content("\n".join(text) + "\n")
    return message


@dataclass(frozen=True)
class PagerDuty:
    """PagerDuty Events API v2: an open triggers, a resolve resolves, both under the
    incident's key as `dedup_key` (so PagerDuty keeps one incident too)."""

    routing_key: str
    url: str = PAGERDUTY_URL
    timeout_s: float = 10.0
    written: str = ""  # the routing key as headwater.yml writes it (a `${VAR}`)
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or f"pagerduty:{self.written}"

    def send(self, body: dict[str, Any]) -> str | None:
        event = pagerduty_event(body, self.routing_key)
        return _post(
            self.url,
            event,
            headers={},
            timeout_s=self.timeout_s,
            delivered=lambda status: status == 202,
        )


def pagerduty_event(body: dict[str, Any], routing_key: str) -> dict[str, Any]:
    """The Events API v2 event of an alert event."""
    key = str(body.get("key"))
    if len(key) > 255:  # PagerDuty's limit: keep the start readable, the end unique
        key = key[:190] + "…" + hashlib.sha256(key.encode()).hexdigest()
    summary = f"{headline(body)}: {body.get('message') or ''}"
    return {
        "routing_key": routing_key,
        "event_action": "trigger" if body.get("event") == "open" else "resolve",
        "dedup_key": key,
        "payload": {
            "summary": summary[:1024],
            "source": f"headwater:{body.get('project')}",
            "severity": _PAGERDUTY_SEVERITY.get(str(body.get("severity")), "error"),
            "custom_details": body,
        },
    }


@dataclass(frozen=True)
class Unusable:
    """A configured channel that cannot send (a `${VAR}` it needs is not set): its events are
    kept, with why, until it can."""

    name: str
    why: str

    def send(self, body: dict[str, Any]) -> str | None:
        return self.why
