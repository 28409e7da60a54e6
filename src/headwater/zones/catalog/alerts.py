"""Alert incidents and the events sent for them.

One incident per problem (`key`, e.g. `sla:raw.orders`): opening it while it is open does
nothing, so a breach checked every minute alerts once; resolving it closes it and sends a
resolved event. Each event is queued once per channel and marked sent only when that channel
took it, so a webhook that was down gets the event later, and one that took it never twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from headwater.zones.catalog.base import CatalogBase
from headwater.zones.catalog.schema import alert_events, alerts


@dataclass(frozen=True)
class Incident:
    key: str
    kind: str  # sla_freshness, sla_run_duration, …
    subject: str  # the table, model or run it is about
    severity: str  # error | warn
    message: str


@dataclass(frozen=True)
class Pending:
    event_id: int
    channel: str
    body: dict[str, Any]
    attempts: int


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
                )
            ).inserted_primary_key
            assert inserted is not None
            alert_id = int(inserted[0])
            body = {
                **extra,
                "event": "open",
                "alert_id": alert_id,
                **incident.__dict__,
                "opened_at": now.isoformat(),
            }
            self._queue(conn, alert_id, body, channels, now)
        return alert_id

    def resolve_alert(
        self,
        key: str,
        *,
        message: str,
        channels: Sequence[str],
        now: datetime,
        extra: dict[str, Any],
    ) -> int | None:
        """Resolve the open incident `key`; its id, or None if none was open."""
        with self._tx() as conn:
            alert_id = self._open_id(conn, key)
            if alert_id is None:
                return None
            conn.execute(
                alerts.update().where(alerts.c.alert_id == alert_id).values(resolved_at=now)
            )
            row = conn.execute(alerts.select().where(alerts.c.alert_id == alert_id)).one()._mapping
            body = {
                **extra,
                "event": "resolved",
                "alert_id": alert_id,
                "key": key,
                "kind": row["kind"],
                "subject": row["subject"],
                "severity": row["severity"],
                "message": self._scrub(message),
                "opened_at": _iso(row["opened_at"]),
                "resolved_at": now.isoformat(),
            }
            self._queue(conn, alert_id, body, channels, now)
        return alert_id

    def open_alert_keys(self, prefix: str = "") -> set[str]:
        query = sa.select(alerts.c.key).where(alerts.c.resolved_at.is_(None))
        if prefix:
            query = query.where(alerts.c.key.startswith(prefix, autoescape=True))
        with self.engine.connect() as conn:
            return {key for (key,) in conn.execute(query)}

    def alert_history(self, limit: int = 50) -> list[dict[str, Any]]:
        """Open incidents first, then the most recently opened."""
        query = (
            alerts.select()
            .order_by(alerts.c.resolved_at.is_not(None), alerts.c.opened_at.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def pending_alert_events(self) -> list[Pending]:
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
            out.append(Pending(row["event_id"], stored["channel"], stored["body"], row["attempts"]))
        return out

    def alert_event_sent(self, event_id: int, *, error: str | None, now: datetime) -> None:
        """Record one attempt to send an event: delivered (`error` None) or why not."""
        values: dict[str, Any] = {"attempts": alert_events.c.attempts + 1}
        values |= {"delivered_at": now} if error is None else {"last_error": self._text(error)}
        with self._tx() as conn:
            conn.execute(
                alert_events.update().where(alert_events.c.event_id == event_id).values(**values)
            )

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
