"""Rule results and their history."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from headwater.zones.catalog.base import CatalogBase
from headwater.zones.catalog.records import CheckRecord
from headwater.zones.catalog.schema import check_results


class ChecksStore(CatalogBase):
    """Rule results and their history."""

    def metric_history(
        self, target: str, rules: Sequence[str], *, limit: int
    ) -> dict[str, list[float]]:
        """The earlier metrics of `rules` on `target`, newest first, at most `limit` each."""
        if not rules:
            return {}
        query = (
            sa.select(check_results.c.rule, check_results.c.metric)
            .where(
                check_results.c.target == target,
                check_results.c.rule.in_(list(rules)),
                check_results.c.metric.is_not(None),
            )
            .order_by(check_results.c.checked_at.desc())
        )
        out: dict[str, list[float]] = {rule: [] for rule in rules}
        with self.engine.connect() as conn:
            for rule, metric in conn.execute(query):
                if len(out[rule]) < limit:
                    out[rule].append(float(metric))
        return out

    def record_checks(self, run_id: str, results: Sequence[CheckRecord], *, now: datetime) -> None:
        if not results:
            return
        values = [
            {
                **r.__dict__,
                "sql": self._scrub(r.sql),
                "samples": self._scrub(json.dumps(r.samples, default=str)),
                "run_id": run_id,
                "checked_at": now,
            }
            for r in results
        ]
        with self._tx() as conn:
            conn.execute(check_results.insert(), values)

    def check_history(self, target: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        query = check_results.select().order_by(check_results.c.checked_at.desc()).limit(limit)
        if target:
            query = query.where(check_results.c.target == target)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
