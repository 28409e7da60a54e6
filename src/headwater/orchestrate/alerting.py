"""A project's alert channels and routing, built from headwater.yml, and the delivery of the
events the catalog keeps for them.

Delivery sends each channel's due events in order, one thread per channel, so a channel that
is slow to answer holds up none of the others. A channel that refuses an event gets no later
one in that pass, and an incident's later event (its resolve) waits while an earlier one is
held or being sent: never a resolve before its open.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from headwater.contracts.orchestration import AlertChannel, quiet_hours, rate_limit
from headwater.contracts.secrets import Secrets, references
from headwater.contracts.thresholds import parse_duration
from headwater.errors import SpecError
from headwater.observe.alerts import (
    PAGERDUTY_URL,
    Channel,
    Email,
    LogFile,
    PagerDuty,
    Slack,
    Unusable,
    Webhook,
)
from headwater.observe.routing import QuietHours, RateLimit, Route, at_least, route
from headwater.project import Project
from headwater.zones.catalog import Catalog
from headwater.zones.catalog.alerts import Incident, Pending

ALERT_LOG = ".headwater/alerts.log"
# how long a sender holds an event it is sending: one that dies with it frees it after this
CLAIM = timedelta(minutes=2)


@dataclass(frozen=True)
class Alerting:
    """The alert channels of a project — the log always, the ones it configures — and the
    routing that says which incidents go to which, and when their events may be sent."""

    channels: Sequence[Channel]
    extra: dict[str, Any]  # in every event: the project
    routes: Sequence[Route] = ()  # one per channel; the log's takes everything at once
    problems: Sequence[str] = ()  # channels that cannot send (their events are kept)

    @classmethod
    def of(
        cls, project: Project, secrets: Secrets | None = None, *, strict: bool = True
    ) -> Alerting:
        """The channels, `${VAR}`s in their secrets expanded from `secrets` (default: the
        process environment).

        Raises:
            SpecError: two channels share a name, or (`strict`) a variable a channel uses is
                not set. Not strict, such a channel is built to refuse every event with that
                error (its events wait in the catalog until the variable is set).
        """
        secrets = secrets or Secrets(os.environ)
        log = LogFile(project.root / ALERT_LOG)
        channels: list[Channel] = [log]
        routes = [Route(log.name)]
        problems = []
        for i, spec in enumerate(project.settings.alerts):
            where = f"headwater.yml: alerts[{i}]"
            name = channel_name(spec, project.root)
            if name in {c.name for c in channels}:
                raise SpecError(
                    f"two alert channels are both named {name!r} ({where})",
                    hint="give one of them a `name:`",
                )
            try:
                channels.append(_channel(spec, project.root, secrets, where=where))
            except SpecError as err:
                if strict:
                    raise
                channels.append(Unusable(name, err.message))
                problems.append(f"alert channel {name} cannot send: {err.message}")
            routes.append(_route(name, spec))
        return cls(channels, {"project": project.settings.name}, routes, problems)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.channels]

    def open(self, catalog: Catalog, incident: Incident, *, now: datetime) -> bool:
        """Open `incident` for the channels it is routed to; False if it was open already."""
        channels = route(
            self.routes or [Route(n) for n in self.names],
            severity=incident.severity,
            owner=incident.owner,
            tags=incident.tags,
        )
        opened = catalog.open_alert(incident, channels=channels, now=now, extra=self.extra)
        return opened is not None

    def resolve(self, catalog: Catalog, key: str, *, message: str, now: datetime) -> bool:
        """Resolve the open incident `key` (its resolve goes where its open went)."""
        resolved = catalog.resolve_alert(key, message=message, now=now, extra=self.extra)
        return resolved is not None

    def deliver(self, catalog: Catalog, now: datetime) -> list[str]:
        """Send every event that is due and wait for it; why those that failed did (they are
        kept, and sent again by the next pass)."""
        return self.start(catalog, now).wait()

    def start(self, catalog: Catalog, now: datetime) -> Sending:
        """Start sending every event that is due, one thread per channel."""
        by_name = {c.name: c for c in self.channels}
        routes = {r.channel: r for r in self.routes}
        lanes: dict[str, list[Pending]] = {}
        for pending in catalog.pending_alert_events():
            if pending.channel in by_name:
                lanes.setdefault(pending.channel, []).append(pending)
            else:  # a channel removed from headwater.yml since
                error = "the channel is no longer configured"
                catalog.alert_event_sent(pending.event_id, error=error, now=now)
        sent = catalog.sent_alert_times(now - _longest_window(self.routes)) if lanes else {}
        sending = Sending()
        for name, events in lanes.items():
            lane = _Lane(catalog, by_name[name], routes.get(name), now, sent.get(name, []))
            sending.add(name, functools.partial(lane.send, events))
        return sending


@dataclass
class Sending:
    """A delivery pass under way: one daemon thread per channel (a process that exits does
    not wait for them; what they had not sent is sent by the next pass)."""

    failed: list[str] = field(default_factory=list)  # "<channel>: <why>"
    _threads: dict[str, threading.Thread] = field(default_factory=dict)

    def add(self, name: str, send: Callable[[], str | None]) -> None:
        def run() -> None:
            try:
                error = send()
            except Exception as err:  # a catalog hiccup: the events stay queued
                error = f"{type(err).__name__}: {err}"
            if error is not None:
                self.failed.append(f"{name}: {error}")

        thread = threading.Thread(target=run, name=f"headwater-alerts {name}", daemon=True)
        self._threads[name] = thread
        thread.start()

    def wait(self, timeout: float | None = None) -> list[str]:
        """Wait for every channel (at most `timeout` seconds in all); why those that failed
        did, so far."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads.values():
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return list(self.failed)

    @property
    def unfinished(self) -> list[str]:
        """The channels still sending."""
        return [name for name, thread in self._threads.items() if thread.is_alive()]


@dataclass(frozen=True)
class _Lane:
    """One channel's pass over its pending events, in order."""

    catalog: Catalog
    channel: Channel
    route: Route | None
    now: datetime
    sent: list[datetime]  # when its recent events went (for the rate limit)

    def send(self, events: Sequence[Pending]) -> str | None:
        """Send what is due; why the channel refused, if it did (nothing later is sent)."""
        waiting: set[int] = set()  # incidents with an earlier event not sent
        for pending in events:
            if pending.alert_id in waiting or not self._due(pending):
                waiting.add(pending.alert_id)
                continue
            error = self.channel.send(pending.body)
            self.catalog.alert_event_sent(pending.event_id, error=error, now=self.now)
            if error is not None:
                return error
            self.sent.append(self.now)
        return None

    def _due(self, pending: Pending) -> bool:
        """Whether the event may go now (and is ours to send): not held, not being sent by
        another sender, not to be held by the route."""
        if pending.not_before is not None and pending.not_before > self.now:
            return False
        severity = str(pending.body.get("severity"))
        hold = None if self.route is None else self.route.hold(self.now, severity, self.sent)
        if hold is not None:
            self.catalog.hold_alert_event(pending.event_id, until=hold)
            return False
        return self.catalog.claim_alert_event(
            pending.event_id, now=self.now, until=self.now + CLAIM
        )


def channel_name(spec: AlertChannel, root: Path) -> str:
    """How the catalog names the channel `spec` configures (no secret in it: a `${VAR}` stays
    as written)."""
    if spec.name:
        return f"{spec.kind}:{spec.name}"
    if spec.kind == "log":
        return f"log:{root / (spec.path or '')}"
    if spec.kind == "email":
        return "email:" + ",".join(spec.to)
    if spec.kind == "pagerduty":
        key = spec.routing_key or ""
        return f"pagerduty:{key if references(key) else '…' + key[-4:]}"
    return f"{spec.kind}:{spec.url}"


def _channel(spec: AlertChannel, root: Path, secrets: Secrets, *, where: str) -> Channel:
    """The channel `spec` configures, its secrets expanded."""

    def expand(text: str, name: str) -> str:
        return secrets.expand(text, where=f"{where}.{name}")

    label = channel_name(spec, root)
    timeout = parse_duration(spec.timeout)
    if spec.kind == "log":
        return LogFile(root / (spec.path or ""), label=label)
    if spec.kind == "email":
        return Email(
            expand(spec.host or "", "host"),
            spec.port or (465 if spec.ssl else 587 if spec.starttls else 25),
            expand(spec.sender or "", "from"),
            tuple(expand(to, f"to[{i}]") for i, to in enumerate(spec.to)),
            starttls=spec.starttls,
            ssl=spec.ssl,
            username=None if spec.username is None else expand(spec.username, "username"),
            password=None if spec.password is None else expand(spec.password, "password"),
            timeout_s=timeout,
            label=label,
        )
    if spec.kind == "pagerduty":
        return PagerDuty(
            expand(spec.routing_key or "", "routing_key"),
            expand(spec.url, "url") if spec.url else PAGERDUTY_URL,
            timeout_s=timeout,
            label=label,
        )
    headers = {k: expand(v, f"headers.{k}") for k, v in spec.headers.items()}
    kind = Slack if spec.kind == "slack" else Webhook
    url = expand(spec.url or "", "url")
    return kind(url, headers, timeout_s=timeout, written=spec.url or "", label=label)


def _route(name: str, spec: AlertChannel) -> Route:
    severities = None
    if isinstance(spec.severity, str):
        severities = at_least(spec.severity)
    elif spec.severity is not None:
        severities = frozenset(spec.severity)
    limit = None
    if spec.rate_limit is not None:
        count, seconds = rate_limit(spec.rate_limit)
        limit = RateLimit(count, timedelta(seconds=seconds))
    quiet = None
    if spec.quiet_hours is not None:
        start, end, zone = quiet_hours(spec.quiet_hours)
        quiet = QuietHours(start, end, zone, frozenset(spec.quiet_hours_except))
    return Route(name, severities, frozenset(spec.owners), frozenset(spec.tags), limit, quiet)


def _longest_window(routes: Sequence[Route]) -> timedelta:
    return max((r.rate_limit.per for r in routes if r.rate_limit), default=timedelta(0))


def owned(project: Project, table: str) -> tuple[str | None, tuple[str, ...]]:
    """The owner and tags of a raw table or model (what routing by owner and tag reads)."""
    contract = project.raw_tables.get(table)
    if contract is not None:
        return contract.owner, ()
    model = project.models.get(table)
    if model is not None:
        return model.config.owner or model.sidecar.owner, tuple(model.tags)
    return None, ()
