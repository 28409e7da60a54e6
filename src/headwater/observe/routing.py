"""Alert routing: which channels an incident goes to, and when each of its events may be sent.

Pure decisions over plain values (the orchestrator builds a `Route` per channel from
headwater.yml and keeps the events in the catalog). A channel's filters are ANDed — severity,
owners, tags — and each takes any of its values; a filter left out takes everything. An event
that must wait (quiet hours, a full rate limit) is held until a given time, never dropped.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

SEVERITIES = ("info", "warn", "error", "critical")  # lowest first


def at_least(severity: str) -> frozenset[str]:
    """The severities from `severity` up: `at_least("error")` is error and critical."""
    return frozenset(SEVERITIES[SEVERITIES.index(severity) :])


@dataclass(frozen=True)
class QuietHours:
    """Local hours in which events wait, e.g. 22:00 to 07:00 in Europe/Berlin (an end at or
    before the start is the next day); severities in `exempt` are sent all the same."""

    start: time
    end: time
    zone: tzinfo
    exempt: frozenset[str] = frozenset()

    def until(self, now: datetime, severity: str) -> datetime | None:
        """When the quiet hours `now` falls in end; None if it is not in them (or exempt).

        Example:
            >>> from zoneinfo import ZoneInfo
            >>> quiet = QuietHours(time(22), time(7), ZoneInfo("UTC"))
            >>> quiet.until(datetime(2026, 1, 5, 23, 30, tzinfo=ZoneInfo("UTC")), "error")
            datetime.datetime(2026, 1, 6, 7, 0, tzinfo=zoneinfo.ZoneInfo(key='UTC'))
        """
        if severity in self.exempt:
            return None
        local = now.astimezone(self.zone)
        clock = local.time().replace(tzinfo=None)
        if self.start < self.end:
            inside = self.start <= clock < self.end
        else:
            inside = clock >= self.start or clock < self.end
        if not inside:
            return None
        day = local.date() if clock < self.end else local.date() + timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=self.zone).astimezone(now.tzinfo)


@dataclass(frozen=True)
class RateLimit:
    """At most `count` events per `per` (a sliding window) on one channel."""

    count: int
    per: timedelta

    def until(self, now: datetime, sent: Sequence[datetime]) -> datetime | None:
        """When the window has room again, given when the channel's recent events were sent;
        None if it has room now."""
        recent = sorted(t for t in sent if now - t < self.per)
        if len(recent) < self.count:
            return None
        return recent[len(recent) - self.count] + self.per


@dataclass(frozen=True)
class Route:
    """One channel's filters and pacing."""

    channel: str
    severities: frozenset[str] | None = None  # None: every severity
    owners: frozenset[str] = frozenset()  # empty: any owner (or none)
    tags: frozenset[str] = frozenset()  # empty: any tags (or none)
    rate_limit: RateLimit | None = None
    quiet: QuietHours | None = None

    def takes(self, severity: str, owner: str | None, tags: Collection[str]) -> bool:
        """Whether an incident of this severity, owner and tags goes to the channel."""
        if self.severities is not None and severity not in self.severities:
            return False
        if self.owners and owner not in self.owners:
            return False
        return not self.tags or bool(self.tags & set(tags))

    def hold(self, now: datetime, severity: str, sent: Sequence[datetime]) -> datetime | None:
        """Until when an event of `severity` must wait before it is sent at `now` (None: send
        it now); `sent`: when the channel's recent events were sent."""
        quiet = None if self.quiet is None else self.quiet.until(now, severity)
        if quiet is not None:
            return quiet
        return None if self.rate_limit is None else self.rate_limit.until(now, sent)


def route(
    routes: Sequence[Route], *, severity: str, owner: str | None, tags: Collection[str]
) -> list[str]:
    """The channels an incident goes to, in the order the routes are given."""
    return [r.channel for r in routes if r.takes(severity, owner, tags)]
