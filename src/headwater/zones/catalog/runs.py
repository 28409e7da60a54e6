"""Runs and their tasks."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from headwater.zones.catalog.base import CatalogBase
from headwater.zones.catalog.records import TaskRecord
from headwater.zones.catalog.schema import runs, tasks


class RunsStore(CatalogBase):
    """Runs and their tasks."""

    def start_run(self, command: str, *, now: datetime) -> str:
        run_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        with self._tx() as conn:
            conn.execute(
                runs.insert().values(
                    run_id=run_id, command=command, started_at=now, status="running"
                )
            )
        return run_id

    def end_run(self, run_id: str, *, status: str, summary: dict[str, Any], now: datetime) -> None:
        with self._tx() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(
                    ended_at=now,
                    status=status,
                    summary=self._scrub(json.dumps(summary, default=str)),
                )
            )

    def record_task(self, run_id: str, record: TaskRecord) -> None:
        self.record_tasks(run_id, [record])

    def record_tasks(self, run_id: str, records: Sequence[TaskRecord]) -> None:
        if records:
            with self._tx() as conn:
                conn.execute(
                    tasks.insert(),
                    [
                        {"run_id": run_id, **r.__dict__, "error": self._text(r.error)}
                        for r in records
                    ],
                )

    def recent_runs(self, limit: int = 10) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(runs.select().order_by(runs.c.started_at.desc()).limit(limit))
            return [dict(r._mapping) for r in rows]

    def run_tasks(self, run_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(tasks.select().where(tasks.c.run_id == run_id))
            return [dict(r._mapping) for r in rows]

    def last_outcomes(self, stage: str) -> dict[str, tuple[str, str | None]]:
        """Task → (status, error) of its newest finished run of `stage`: one query."""
        newest = (
            sa.func.row_number()
            .over(partition_by=tasks.c.task, order_by=runs.c.ended_at.desc())
            .label("n")
        )
        ranked = (
            sa.select(tasks.c.task, tasks.c.status, tasks.c.error, newest)
            .select_from(tasks.join(runs, tasks.c.run_id == runs.c.run_id))
            .where(tasks.c.stage == stage, runs.c.ended_at.is_not(None))
            .subquery()
        )
        query = sa.select(ranked.c.task, ranked.c.status, ranked.c.error).where(ranked.c.n == 1)
        with self.engine.connect() as conn:
            return {task: (status, error) for task, status, error in conn.execute(query)}
