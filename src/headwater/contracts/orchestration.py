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
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from headwater.contracts.base import Duration, Spec

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


class AlertChannel(Spec):
    """Where alert events go besides `.headwater/alerts.log` (JSON lines, always written)."""

    kind: Literal["webhook", "log"] = Field(
        description="webhook: POST each event as JSON to `url`; log: append it to `path`"
    )
    url: str | None = Field(default=None, description="webhook: the address to POST to")
    headers: dict[str, str] = Field(
        default_factory=dict, description="webhook: extra headers, e.g. an Authorization token"
    )
    path: str | None = Field(default=None, description="log: a file, relative to the project")

    @model_validator(mode="after")
    def _target(self) -> AlertChannel:
        if self.kind == "webhook" and not (self.url or "").startswith(("http://", "https://")):
            raise ValueError("a webhook channel needs `url:` starting with http:// or https://")
        if self.kind == "log" and not self.path:
            raise ValueError("a log channel needs `path:`, e.g. logs/alerts.jsonl")
        return self


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
