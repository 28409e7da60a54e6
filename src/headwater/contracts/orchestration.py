"""What a project says about when things run and how late is too late: schedules, freshness
SLAs, pools, alert channels and where lineage goes.

    # headwater.yml
    schedule: {cron: "0 * * * *", timezone: Europe/Berlin, catch_up: latest}
    sla: {max_duration: 1h}                 # a run taking longer raises an alert
    pools: {postgres: 1, heavy: 2}          # tasks running at once per pool
    alerts: [{kind: webhook, url: "https://hooks.example.com/hw"}]
    lineage: {transport: http, url: "http://localhost:5000"}   # OpenLineage (Marquez)

    # a contract, or a model's header
    schedule: "*/15 * * * *"
    sla: {fresh_by: "06:00 Europe/Berlin", max_age: 2h}
    pool: postgres
"""

from __future__ import annotations

import re
from datetime import time
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ConfigDict, Field, field_validator, model_validator

from headwater.contracts.base import Duration, FieldError, Spec
from headwater.contracts.secrets import references
from headwater.contracts.thresholds import parse_duration

_FRESH_BY = re.compile(r"^\s*(\d{1,2}):(\d{2})(?:\s+(\S+))?\s*$")


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` ("Europe/Berlin", "UTC")."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not a time zone; write an IANA name such as UTC or Europe/Berlin"
        ) from None


class Schedule(Spec):
    """When something runs: a cron expression read in a time zone (DST-safe: a time skipped
    by a clock change fires once, at the change; a repeated hour fires once)."""

    cron: str = Field(description="five fields: minute hour day-of-month month day-of-week")
    timezone: str = Field(default="UTC", description="IANA time zone the cron is read in")
    catch_up: Literal["all", "latest"] = Field(
        default="latest",
        description="after downtime: `latest` runs once for the newest missed time, `all` "
        "runs once for every missed time, oldest first",
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"cron": data} if isinstance(data, str) else data

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(
                f"{value!r} is not a cron expression; write five fields, e.g. '0 6 * * *' "
                "(06:00 every day) or '*/15 * * * *' (every 15 minutes)"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value


class Sla(Spec):
    """How fresh a table must be. A breach raises an alert even when nothing ran."""

    fresh_by: str | None = Field(
        default=None,
        description="'HH:MM [time zone]': every day by then, the table has been updated since "
        "that day's midnight, e.g. '06:00 Europe/Berlin'",
    )
    max_age: Duration | None = Field(
        default=None, description="the table is never older than this, e.g. '2h'"
    )

    @field_validator("fresh_by")
    @classmethod
    def _fresh_by(cls, value: str | None) -> str | None:
        if value is not None:
            fresh_by(value)
        return value

    @model_validator(mode="after")
    def _something(self) -> Sla:
        if self.fresh_by is None and self.max_age is None:
            raise ValueError("an sla needs fresh_by: (e.g. '06:00 UTC') or max_age: (e.g. 2h)")
        return self


def fresh_by(text: str) -> tuple[int, int, ZoneInfo]:
    """(hour, minute, time zone) of a `fresh_by:` value."""
    match = _FRESH_BY.match(text)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"{text!r} is not a time of day; write e.g. '06:00 Europe/Berlin'")
    return int(match.group(1)), int(match.group(2)), zone(match.group(3) or "UTC")


class RunSla(Spec):
    """`headwater.yml`'s `sla:`: how long a run may take."""

    max_duration: Duration | None = Field(
        default=None, description="a run still going after this long raises an alert, e.g. 1h"
    )


SEVERITIES = ("info", "warn", "error", "critical")  # lowest first
_QUIET = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})(?:\s+(\S+))?\s*$")
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(.+?)\s*$")
# the fields only some kinds of channel read (routing fields apply to every kind)
_KIND_FIELDS = {
    "url": ("webhook", "slack", "pagerduty"),
    "headers": ("webhook", "slack", "pagerduty"),
    "timeout": ("webhook", "slack", "pagerduty", "email"),
    "path": ("log",),
    "host": ("email",),
    "port": ("email",),
    "starttls": ("email",),
    "ssl": ("email",),
    "username": ("email",),
    "password": ("email",),
    "sender": ("email",),
    "to": ("email",),
    "routing_key": ("pagerduty",),
}


class AlertChannel(Spec):
    """Where alert events go besides `.headwater/alerts.log` (JSON lines, always written), and
    which of them: an incident goes to every channel whose filters it passes (a channel with
    no filter takes every incident), and its resolve follows its open.

        alerts:
          - {kind: webhook, url: "https://hooks.example.com/hw"}
          - {kind: slack, url: "${SLACK_WEBHOOK}", severity: error}
          - kind: email
            host: smtp.example.com
            starttls: true
            username: alerts
            password: "${SMTP_PASSWORD}"
            from: headwater@example.com
            to: [data-oncall@example.com]
            owners: [orders-team@example.com]
            quiet_hours: "22:00-07:00 Europe/Berlin"
          - {kind: pagerduty, routing_key: "${PD_KEY}", severity: [error, critical],
             rate_limit: 10/h, quiet_hours: "22:00-07:00 Europe/Berlin",
             quiet_hours_except: [critical]}
    """

    # `from:` is a Python keyword: the field is `sender`, written `from:` (or `sender:`)
    model_config = ConfigDict(**Spec.model_config, populate_by_name=True)

    kind: Literal["webhook", "slack", "email", "pagerduty", "log"] = Field(
        description="webhook: POST each event as JSON to `url`; slack: a Slack incoming "
        "webhook (text and blocks); email: a message over SMTP; pagerduty: an Events API v2 "
        "trigger or resolve; log: append the event as a JSON line to `path`"
    )
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="how `headwater alerts` and the catalog name the channel (default: its "
        "kind and target); needed when two channels would otherwise share a name",
    )
    url: str | None = Field(
        default=None,
        description="webhook, slack: the address to POST to; pagerduty: the Events API "
        "(default https://events.pagerduty.com/v2/enqueue)",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="webhook: extra headers, e.g. an Authorization token"
    )
    timeout: Duration = Field(default="10s", description="how long to wait for the receiver")
    path: str | None = Field(default=None, description="log: a file, relative to the project")
    host: str | None = Field(default=None, description="email: the SMTP server")
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="email: default 465 with ssl, else 587 with starttls, else 25",
    )
    starttls: bool = Field(default=False, description="email: upgrade to TLS after connecting")
    ssl: bool = Field(default=False, description="email: TLS from the start (SMTPS)")
    username: str | None = Field(default=None, description="email: to log in with")
    password: str | None = Field(default=None, description="email: write it as ${VAR}")
    sender: str | None = Field(default=None, alias="from", description="email: the From address")
    to: list[str] = Field(default_factory=list, description="email: the recipients")
    routing_key: str | None = Field(
        default=None, description="pagerduty: the integration key; write it as ${VAR}"
    )
    severity: str | list[str] | None = Field(
        default=None,
        description="only incidents of this severity or above (`error`), or of these "
        "severities (`[warn]`); severities are info < warn < error < critical",
    )
    owners: list[str] = Field(
        default_factory=list,
        description="only incidents whose table or model has one of these owners",
    )
    tags: list[str] = Field(
        default_factory=list, description="only incidents whose model has one of these tags"
    )
    rate_limit: str | None = Field(
        default=None,
        description="at most this many events per period, e.g. 10/h or 100/1d: the rest wait "
        "(kept, never dropped) until the period has room",
    )
    quiet_hours: str | None = Field(
        default=None,
        description="'HH:MM-HH:MM [time zone]': events wait until the quiet hours end, e.g. "
        "'22:00-07:00 Europe/Berlin'",
    )
    quiet_hours_except: list[str] = Field(
        default_factory=list,
        description="severities sent even in quiet hours, e.g. [critical]",
    )

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: str | list[str] | None) -> str | list[str] | None:
        for i, name in enumerate([value] if isinstance(value, str) else value or []):
            _known_severity(name, loc=() if isinstance(value, str) else (i,))
        if isinstance(value, list) and not value:
            raise ValueError("an empty list takes no incident: list severities, or leave it out")
        return value

    @field_validator("quiet_hours_except")
    @classmethod
    def _except(cls, value: list[str]) -> list[str]:
        for i, name in enumerate(value):
            _known_severity(name, loc=(i,))
        return value

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is not None:
            rate_limit(value)
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: str | None) -> str | None:
        if value is not None:
            quiet_hours(value)
        return value

    @model_validator(mode="after")
    def _target(self) -> AlertChannel:
        for name, kinds in _KIND_FIELDS.items():
            if name in self.model_fields_set and self.kind not in kinds:
                shown = "from" if name == "sender" else name
                raise FieldError(
                    f"`{shown}:` is for {' and '.join(kinds)} channels, not {self.kind}",
                    loc=(shown,),
                )
        if self.kind in ("webhook", "slack") and not _http(self.url):
            raise ValueError(
                f"a {self.kind} channel needs `url:` starting with http:// or https://"
            )
        if self.kind == "pagerduty" and self.url is not None and not _http(self.url):
            raise FieldError("url must start with http:// or https://", loc=("url",))
        if self.kind == "pagerduty" and not self.routing_key:
            raise ValueError('a pagerduty channel needs `routing_key:`, e.g. "${PD_ROUTING_KEY}"')
        if self.kind == "log" and not self.path:
            raise ValueError("a log channel needs `path:`, e.g. logs/alerts.jsonl")
        if self.kind == "email":
            self._email()
        if self.quiet_hours_except and self.quiet_hours is None:
            raise FieldError(
                "quiet_hours_except needs `quiet_hours:`, e.g. '22:00-07:00 Europe/Berlin'",
                loc=("quiet_hours_except",),
            )
        return self

    def _email(self) -> None:
        if not self.host:
            raise ValueError("an email channel needs `host:`, the SMTP server")
        if not self.sender:
            raise ValueError("an email channel needs `from:`, e.g. headwater@example.com")
        if not self.to:
            raise ValueError("an email channel needs `to:`, a list of addresses")
        for i, address in enumerate(self.to):
            if "@" not in address and "${" not in address:
                raise FieldError(f"{address!r} is not an e-mail address", loc=("to", i))
        if self.ssl and self.starttls:
            raise FieldError(
                "set one of `ssl:` (TLS from the start, port 465) or `starttls:` (port 587)",
                loc=("ssl",),
            )
        if self.password is not None and not references(self.password):
            raise FieldError(
                'write the password as ${VAR} (e.g. "${SMTP_PASSWORD}"), so it stays out of '
                "headwater.yml and out of version control",
                loc=("password",),
            )
        if (self.username is None) != (self.password is None):
            missing = "password" if self.password is None else "username"
            raise ValueError(f"an email channel that logs in needs both username and {missing}")


def _http(url: str | None) -> bool:
    return (url or "").startswith(("http://", "https://")) or (url or "").startswith("${")


def _known_severity(name: object, *, loc: tuple[str | int, ...]) -> None:
    if name not in SEVERITIES:
        raise FieldError(
            f"{name!r} is not a severity; write one of {', '.join(SEVERITIES)}", loc=loc
        )


def rate_limit(text: str) -> tuple[int, float]:
    """(events, seconds) of a `rate_limit:` value such as "10/h" or "100/1d"."""
    match = _RATE.match(text)
    period = match.group(2) if match else ""
    try:
        seconds = parse_duration(period if period[:1].isdigit() else f"1{period}")
    except ValueError:
        seconds = 0.0
    if not match or int(match.group(1)) < 1 or seconds <= 0:
        raise ValueError(
            f"{text!r} is not a rate limit; write events/period, e.g. 10/h, 5/10m or 100/1d"
        )
    return int(match.group(1)), seconds


def quiet_hours(text: str) -> tuple[time, time, ZoneInfo]:
    """(start, end, time zone) of a `quiet_hours:` value such as "22:00-07:00 Europe/Berlin"
    (an end at or before the start is the next day)."""
    match = _QUIET.match(text)
    numbers = [int(g) for g in match.groups()[:4]] if match else []
    if not match or numbers[0] > 23 or numbers[2] > 23 or numbers[1] > 59 or numbers[3] > 59:
        raise ValueError(
            f"{text!r} is not a span of hours; write 'HH:MM-HH:MM [time zone]', e.g. "
            "'22:00-07:00 Europe/Berlin'"
        )
    start, end = time(numbers[0], numbers[1]), time(numbers[2], numbers[3])
    if start == end:
        raise ValueError(f"{text!r} starts and ends at the same time: write two different times")
    return start, end, zone(match.group(5) or "UTC")


class Lineage(Spec):
    """Where OpenLineage events go."""

    transport: Literal["file", "http", "console"] = Field(
        description="file: JSON lines in `path`; http: POST to `url` (Marquez); console: the log"
    )
    url: str | None = Field(default=None, description="http: the OpenLineage endpoint's base")
    endpoint: str = Field(default="api/v1/lineage", description="http: the path under `url`")
    path: str | None = Field(default=None, description="file: relative to the project")
    namespace: str | None = Field(
        default=None, description="the job namespace (default: the project's name)"
    )

    @model_validator(mode="after")
    def _target(self) -> Lineage:
        if self.transport == "http" and not (self.url or "").startswith(("http://", "https://")):
            raise ValueError("lineage over http needs `url:` starting with http:// or https://")
        if self.transport == "file" and not self.path:
            raise ValueError("lineage to a file needs `path:`, e.g. .headwater/lineage.jsonl")
        return self
