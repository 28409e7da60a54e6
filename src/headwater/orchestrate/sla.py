"""Freshness SLAs and run duration: what is late, why, and the alerts that say so.

A table's freshness is when its data last changed: for a raw table, the newest batch that
landed rows (its `landed_at`, the landing run's clock); for a model, the end of the newest
run that built it or found it up to date. An SLA is checked against the clock passed in, so
the scheduler checks deadlines whether or not anything ran: a source that stopped delivering
alerts at its deadline, not when someone next looks.

    fresh_by: "06:00 Europe/Berlin"   each day by 06:00 Berlin time, updated since that
                                      day's midnight (Berlin time)
    max_age: 2h                       never older than two hours
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from headwater.contracts.orchestration import Sla, fresh_by
from headwater.contracts.thresholds import parse_duration
from headwater.orchestrate.alerting import ALERT_LOG, Alerting, owned
from headwater.orchestrate.lease import RUN
from headwater.project import Project
from headwater.zones.catalog import Catalog
from headwater.zones.catalog.alerts import Incident
from headwater.zones.lake import Lake

__all__ = ["ALERT_LOG", "Alerting", "Checked", "Freshness", "check", "freshness", "landed_at"]


@dataclass(frozen=True)
class Freshness:
    table: str
    sla: Sla | None
    updated_at: datetime | None
    late: bool
    why: str  # the verdict in words ("fresh", "3h 5m old; its sla allows 2h", …)


def freshness(project: Project, catalog: Catalog, lake: Lake, now: datetime) -> list[Freshness]:
    """The freshness of every raw table and model, judged against its SLA where it has one."""
    built = catalog.last_success("build")
    out = []
    for table, contract in sorted(project.raw_tables.items()):
        out.append(_judge(table, contract.sla, landed_at(lake, table), now))
    for name, model in sorted(project.models.items()):
        out.append(_judge(name, model.config.sla, built.get(name), now))
    return out


def _judge(table: str, sla: Sla | None, updated: datetime | None, now: datetime) -> Freshness:
    reasons = [] if sla is None else _breaches(table, sla, updated, now)
    if reasons:
        return Freshness(table, sla, updated, True, "; ".join(reasons))
    why = "no sla" if sla is None else "fresh"
    return Freshness(table, sla, updated, False, why)


def _breaches(table: str, sla: Sla, updated: datetime | None, now: datetime) -> list[str]:
    last = "it has never been updated" if updated is None else f"last updated {_at(updated)}"
    out = []
    if sla.max_age is not None:
        allowed = timedelta(seconds=parse_duration(sla.max_age))
        if updated is None:
            out.append(f"{table} has never been updated; its sla allows at most {sla.max_age}")
        elif now - updated > allowed:
            age = _span(now - updated)
            out.append(f"{table} is {age} old; its sla allows {sla.max_age} ({last})")
    if sla.fresh_by is not None:
        since = _day_start_due(sla.fresh_by, now)
        if since is not None and (updated is None or updated < since):
            out.append(
                f"{table} must be updated each day by {sla.fresh_by}, and has not been since "
                f"{_at(since)} ({last})"
            )
    return out


def _day_start_due(text: str, now: datetime) -> datetime | None:
    """The start of the local day whose `fresh_by` deadline has passed most recently: the
    table must have been updated since then (None: no deadline has passed yet)."""
    hour, minute, zone = fresh_by(text)
    local = now.astimezone(zone)
    day = local.date() if local.time() >= time(hour, minute) else local.date() - timedelta(days=1)
    return datetime.combine(day, time(0, 0), tzinfo=zone).astimezone(UTC)


def landed_at(lake: Lake, table: str) -> datetime | None:
    """When the newest batch of `table` that brought rows landed."""
    for snapshots in (lake.recent(table), lake.snapshots(table)):
        for snap in reversed(snapshots):
            if snap.properties.get("rows"):
                landed = snap.properties.get("landed_at")
                if isinstance(landed, str):
                    return datetime.fromisoformat(landed)
                return datetime.fromtimestamp(snap.timestamp_ms / 1000, UTC)
    return None


@dataclass(frozen=True)
class Checked:
    """One SLA check: what is late now, and the incidents it opened and resolved."""

    late: list[Freshness]
    opened: list[str]
    resolved: list[str]
    undelivered: list[str]


def check(
    project: Project, catalog: Catalog, lake: Lake, *, now: datetime, alerting: Alerting
) -> Checked:
    """Judge every SLA at `now`: open an incident for each breach not yet open, resolve each
    open one that no longer holds, then send the events."""
    states = freshness(project, catalog, lake, now)
    incidents = [
        Incident(
            f"sla:{s.table}",
            "sla_freshness",
            s.table,
            "error",
            s.why,
            *owned(project, s.table),
            title=f"{s.table} is late",
        )
        for s in states
        if s.late
    ]
    incidents += _run_duration(project, catalog, now)
    opened, resolved = [], []
    for incident in incidents:
        if alerting.open(catalog, incident, now=now):
            opened.append(incident.key)
    breached = {i.key for i in incidents}
    for key in sorted(catalog.open_alert_keys("sla:") | catalog.open_alert_keys("run:")):
        if key not in breached:
            alerting.resolve(catalog, key, message=_resolution(key, states), now=now)
            resolved.append(key)
    undelivered = alerting.deliver(catalog, now)
    return Checked([s for s in states if s.late], opened, resolved, undelivered)


def _run_duration(project: Project, catalog: Catalog, now: datetime) -> list[Incident]:
    """A run holding the project longer than `sla.max_duration` (wall clock)."""
    limit = project.settings.sla.max_duration
    holder = catalog.lease_holder(RUN)
    if limit is None or holder is None:
        return []
    wall = datetime.now(UTC)
    took = wall - holder.acquired_at
    if holder.gone(wall) or took <= timedelta(seconds=parse_duration(limit)):
        return []
    return [
        Incident(
            f"run:{holder.token}",
            "sla_run_duration",
            f"headwater {holder.command}",
            "error",
            f"a run has been going for {_span(took)}, past the project's max_duration "
            f"{limit}: {holder.describe(wall)}",
            title=f"headwater {holder.command} is taking longer than {limit}",
        )
    ]


def _resolution(key: str, states: list[Freshness]) -> str:
    table = key.removeprefix("sla:")
    state = next((s for s in states if s.table == table), None)
    if state is not None and state.updated_at is not None:
        return f"{table} is fresh again (updated {_at(state.updated_at)})"
    if key.startswith("run:"):
        return "the run ended"
    return f"{table} no longer has a breached sla"


def _at(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours) + [f"{minutes}m"]
    return " ".join(parts)
