"""Alert incidents and the events sent for them.

One incident per problem (`key`, e.g. `sla:raw.orders`): opening it while it is open does
nothing, so a breach checked every minute alerts once; resolving it closes it and sends a
resolved event to the channels its open went to. Each event is queued once per channel and
marked sent only when that channel took it, so a webhook that was down gets the event later,
and one that took it never twice. An event may be held (`not_before`: quiet hours, a rate
limit) and is claimed while it is being sent, so two senders never send it both.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa

from headwater.zones.catalog.base import CatalogBase
from headwater.zones.catalog.schema import alert_events, alerts

# a channel that refused an event gets it again after 30 s, then 1, 2, 4 … minutes, at most an
# hour apart: a wrong URL or a rejected payload (HTTP 4xx) is not sent again on every tick,
# and a channel fixed or back up still gets every event
RETRY_FIRST_S = 30.0
RETRY_MOST_S = 3600.0


@dataclass(frozen=True)
class Incident:
    key: str
    kind: str  # sla_freshness, sla_run_duration, …
    subject: str  # the table, model or run it is about
    severity: str  # info | warn | error | critical
    message: str
    owner: str | None = None  # of the table or model it is about: what routing reads
    tags: tuple[str, ...] = ()
    title: str = ""  # a few words: "rule not_null_order_id failed on raw.orders"


@dataclass(frozen=True)
class Pending:
    event_id: int
    channel: str
    body: dict[str, Any]
    attempts: int
    alert_id: int = 0
    not_before: datetime | None = None  # held (or being sent) until then
    last_error: str | None = None


@dataclass(frozen=True)
class Delivery:
    """How one incident's events fared on one channel."""

    channel: str
    delivered: int
    pending: int
    held_until: datetime | None  # the latest hold of a pending event, if one is held
    last_error: str | None  # of a pending event


class AlertsStore(CatalogBase):
    """Alert incidents and the events sent for them."""

    def open_alert(
        self, incident: Incident, *, channels: Sequence[str], now: datetime, extra: dict[str, Any]
    ) -> int | None:
        """Open an incident unless one with its key is open; its id, or None if it was."""
        with self._tx() as conn:
            if self._open_id(conn, incident.key) is not None:
                return None
            inserted = conn.execute(
                alerts.insert().values(
                    key=incident.key,
                    kind=incident.kind,
                    subject=incident.subject,
                    severity=incident.severity,
                    message=self._scrub(incident.message),
                    opened_at=now,
                    owner=incident.owner,
                    tags=json.dumps(list(incident.tags)),
                )
            ).inserted_primary_key
            assert inserted is not None
            alert_id = int(inserted[0])
            body = {
                **extra,
                "event": "open",
                "alert_id": alert_id,
                **incident.__dict__,
                "tags": list(incident.tags),
                "title": incident.title or f"{incident.kind} on {incident.subject}",
                "opened_at": now.isoformat(),
            }
            self._queue(conn, alert_id, body, channels, now)
        return alert_id

    def resolve_alert(
        self,
        key: str,
        *,
        message: str,
        now: datetime,
        extra: dict[str, Any],
        channels: Sequence[str] | None = None,
    ) -> int | None:
        """Resolve the open incident `key`; its id, or None if none was open. The resolved
        event goes to the channels its open went to (of those, only to `channels` if given):
        never a resolve to a channel that had no open."""
        with self._tx() as conn:
            alert_id = self._open_id(conn, key)
            if alert_id is None:
                return None
            conn.execute(
                alerts.update().where(alerts.c.alert_id == alert_id).values(resolved_at=now)
            )
            row = conn.execute(alerts.select().where(alerts.c.alert_id == alert_id)).one()._mapping
            opened = self._opened(conn, alert_id)
            first = next(iter(opened.values()), {})
            body = {
                **extra,
                "event": "resolved",
                "alert_id": alert_id,
                "key": key,
                "kind": row["kind"],
                "subject": row["subject"],
                "severity": row["severity"],
                "message": self._scrub(message),
                "owner": row["owner"],
                "tags": json.loads(row["tags"] or "[]"),
                "title": first.get("title") or f"{row['kind']} on {row['subject']}",
                "opened_at": _iso(row["opened_at"]),
                "resolved_at": now.isoformat(),
            }
            targets = [c for c in opened if channels is None or c in channels]
            self._queue(conn, alert_id, body, targets, now)
        return alert_id

    @staticmethod
    def _opened(conn: sa.Connection, alert_id: int) -> dict[str, dict[str, Any]]:
        """The channels the open event of `alert_id` was queued for, with its body."""
        query = (
            sa.select(alert_events.c.payload)
            .where(alert_events.c.alert_id == alert_id)
            .order_by(alert_events.c.event_id)
        )
        out: dict[str, dict[str, Any]] = {}
        for (payload,) in conn.execute(query):
            stored = json.loads(payload)
            if stored["body"].get("event") == "open":
                out.setdefault(stored["channel"], stored["body"])
        return out

    def open_alert_keys(self, prefix: str = "") -> set[str]:
        query = sa.select(alerts.c.key).where(alerts.c.resolved_at.is_(None))
        if prefix:
            query = query.where(alerts.c.key.startswith(prefix, autoescape=True))
        with self.engine.connect() as conn:
            return {key for (key,) in conn.execute(query)}

    def alert_history(self, limit: int = 50, *, open_only: bool = False) -> list[dict[str, Any]]:
        """Open incidents first, then the most recently opened (`tags` decoded)."""
        query = (
            alerts.select()
            .order_by(alerts.c.resolved_at.is_not(None), alerts.c.opened_at.desc())
            .limit(limit)
        )
        if open_only:
            query = query.where(alerts.c.resolved_at.is_(None))
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for row in rows:
            row["tags"] = json.loads(row["tags"] or "[]")
        return rows

    def alert_deliveries(self, alert_ids: Sequence[int]) -> dict[int, list[Delivery]]:
        """How each incident's events fared, per channel."""
        query = alert_events.select().where(alert_events.c.alert_id.in_(list(alert_ids)))
        with self.engine.connect() as conn:
            rows = [r._mapping for r in conn.execute(query.order_by(alert_events.c.event_id))]
        tally: dict[tuple[int, str], list[Any]] = {}
        for row in rows:
            channel = json.loads(row["payload"])["channel"]
            seen = tally.setdefault((row["alert_id"], channel), [0, 0, None, None])
            if row["delivered_at"] is not None:
                seen[0] += 1
                continue
            seen[1] += 1
            if row["not_before"] is not None:
                seen[2] = max(filter(None, [seen[2], row["not_before"]]))
            seen[3] = row["last_error"] or seen[3]
        out: dict[int, list[Delivery]] = {}
        for (alert_id, channel), (delivered, pending, held, error) in tally.items():
            out.setdefault(alert_id, []).append(Delivery(channel, delivered, pending, held, error))
        return out

    def pending_alert_events(self) -> list[Pending]:
        """Every event not yet delivered, held ones included, oldest first."""
        query = (
            alert_events.select()
            .where(alert_events.c.delivered_at.is_(None))
            .order_by(alert_events.c.event_id)
        )
        with self.engine.connect() as conn:
            rows = [r._mapping for r in conn.execute(query)]
        out = []
        for row in rows:
            stored = json.loads(row["payload"])
            out.append(
                Pending(
                    row["event_id"],
                    stored["channel"],
                    stored["body"],
                    row["attempts"],
                    alert_id=row["alert_id"],
                    not_before=row["not_before"],
                    last_error=row["last_error"],
                )
            )
        return out

    def sent_alert_times(self, since: datetime) -> dict[str, list[datetime]]:
        """When each channel's events were delivered, since `since` (for rate limits)."""
        query = sa.select(alert_events.c.payload, alert_events.c.delivered_at).where(
            alert_events.c.delivered_at >= since.astimezone(UTC)
        )
        out: dict[str, list[datetime]] = {}
        with self.engine.connect() as conn:
            for payload, delivered_at in conn.execute(query):
                channel = json.loads(payload)["channel"]
                out.setdefault(channel, []).append(cast(datetime, delivered_at))
        return out

    def hold_alert_event(self, event_id: int, *, until: datetime) -> None:
        """Keep an event back until `until` (quiet hours, a rate limit)."""
        with self._tx() as conn:
            conn.execute(
                alert_events.update()
                .where(alert_events.c.event_id == event_id)
                .values(not_before=until.astimezone(UTC))
            )

    def claim_alert_event(self, event_id: int, *, now: datetime, until: datetime) -> bool:
        """Take an event to send it: False if it is delivered, held or another sender has
        it. A sender that dies with it leaves it to be taken again after `until`."""
        now, until = now.astimezone(UTC), until.astimezone(UTC)
        due = sa.or_(alert_events.c.not_before.is_(None), alert_events.c.not_before <= now)
        with self._tx() as conn:
            taken = conn.execute(
                alert_events.update()
                .where(
                    alert_events.c.event_id == event_id,
                    alert_events.c.delivered_at.is_(None),
                    due,
                )
                .values(not_before=until)
            )
        return taken.rowcount == 1

    def alert_event_sent(self, event_id: int, *, error: str | None, now: datetime) -> None:
        """Record one attempt to send an event: delivered (`error` None) or why not; a refused
        event may be sent again after a wait that doubles with each attempt (`RETRY_FIRST_S`
        up to `RETRY_MOST_S`)."""
        values: dict[str, Any] = {"attempts": alert_events.c.attempts + 1, "not_before": None}
        row = alert_events.c.event_id == event_id
        with self._tx() as conn:
            if error is None:
                values["delivered_at"] = now
            else:
                tried = conn.execute(sa.select(alert_events.c.attempts).where(row)).scalar() or 0
                wait = min(RETRY_MOST_S, RETRY_FIRST_S * 2 ** min(tried, 20))
                values |= {
                    "last_error": self._text(error),
                    "not_before": now.astimezone(UTC) + timedelta(seconds=wait),
                }
            conn.execute(alert_events.update().where(row).values(**values))

    def _queue(
        self,
        conn: sa.Connection,
        alert_id: int,
        body: dict[str, Any],
        channels: Sequence[str],
        now: datetime,
    ) -> None:
        payloads = [
            json.dumps({"channel": channel, "body": body}, default=str) for channel in channels
        ]
        if payloads:
            conn.execute(
                alert_events.insert(),
                [
                    {"alert_id": alert_id, "payload": self._scrub(p), "created_at": now}
                    for p in payloads
                ],
            )

    @staticmethod
    def _open_id(conn: sa.Connection, key: str) -> int | None:
        found = conn.execute(
            sa.select(alerts.c.alert_id).where(alerts.c.key == key, alerts.c.resolved_at.is_(None))
        ).first()
        return None if found is None else int(found[0])


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
