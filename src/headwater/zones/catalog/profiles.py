"""Profiles of landed batches and built versions: one row each, its columns as compact JSON
(see `quality.profile.TableProfile`); the history `headwater profile` draws and the anomaly
rules judge against."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from headwater.zones.catalog.base import CatalogBase
from headwater.zones.catalog.schema import profiles


@dataclass(frozen=True)
class StoredProfile:
    target: str
    kind: str  # batch | version
    ref: str  # the batch id or the version's fingerprint
    run_id: str | None
    profiled_at: datetime
    rows: int
    columns: str  # JSON


class ProfilesStore(CatalogBase):
    """Profiles of batches and versions."""

    def record_profile(self, profile: StoredProfile) -> None:
        with self._tx() as conn:
            conn.execute(profiles.insert().values(**profile.__dict__))

    def profile_history(
        self, target: str, *, limit: int = 100, before: datetime | None = None
    ) -> list[StoredProfile]:
        """The newest `limit` profiles of `target` (before `before`, if given), oldest
        first."""
        query = sa.select(*(profiles.c[f] for f in StoredProfile.__dataclass_fields__)).where(
            profiles.c.target == target
        )
        if before is not None:
            query = query.where(profiles.c.profiled_at < before)
        query = query.order_by(profiles.c.profiled_at.desc(), profiles.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            found = [StoredProfile(**r._mapping) for r in conn.execute(query)]
        return found[::-1]

    def profiled_targets(self) -> list[str]:
        with self.engine.connect() as conn:
            query = sa.select(profiles.c.target).distinct().order_by(profiles.c.target)
            return [t for (t,) in conn.execute(query)]
