"""The scheduler's memory: when each job last fired and what raw data it last saw."""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa

from headwater.zones.catalog.base import CatalogBase
from headwater.zones.catalog.schema import schedule_state


class SchedulesStore(CatalogBase):
    """The scheduler's memory: when each job last fired and what raw data it last saw."""

    def fired_at(self, job: str) -> datetime | None:
        """The cron time `job` last fired for (None: never)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(schedule_state.c.fired_at).where(schedule_state.c.job == job)
            ).first()
        if found is None or found[0] is None:
            return None
        moment: datetime = found[0]
        return moment

    def mark_fired(self, job: str, moment: datetime) -> None:
        self._upsert(job, fired_at=moment)

    def seen_versions(self, job: str) -> dict[str, str] | None:
        """What raw table versions `job` last looked at (None: it never looked)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(schedule_state.c.seen).where(schedule_state.c.job == job)
            ).first()
        if found is None or found[0] is None:
            return None
        seen: dict[str, str] = json.loads(found[0])
        return seen

    def see_versions(self, job: str, versions: dict[str, str | None]) -> None:
        self._upsert(job, seen=json.dumps({t: v for t, v in versions.items() if v}))

    def _upsert(self, job: str, **values: object) -> None:
        with self._tx() as conn:
            done = conn.execute(
                schedule_state.update().where(schedule_state.c.job == job).values(**values)
            )
            if done.rowcount == 0:
                conn.execute(schedule_state.insert().values(job=job, **values))
