"""Runs and their tasks, and what `headwater runs` and `status` ask of them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from headwater.zones.catalog.base import CatalogBase, utcnow
from headwater.zones.catalog.records import TaskRecord
from headwater.zones.catalog.schema import check_results, runs, tasks


class RunsStore(CatalogBase):
    """Runs and their tasks."""

    def start_run(self, command: str, *, now: datetime, env: str | None = None) -> str:
        """Record a run starting; `env`: the environment it builds, if not prod."""
        run_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        with self._tx() as conn:
            conn.execute(
                runs.insert().values(
                    run_id=run_id,
                    command=command,
                    started_at=now,
                    status="running",
                    env=None if env == "prod" else env,
                )
            )
        return run_id

    @contextmanager
    def recorded(self, command: str, *, env: str | None = None) -> Iterator[str]:
        """A run of a command that runs no task (promote, rollback): its id, ended as a
        success unless the block raises."""
        run_id = self.start_run(command, now=utcnow(), env=env)
        status = "failed"
        try:
            yield run_id
            status = "success"
        finally:
            self.end_run(run_id, status=status, summary={}, now=utcnow())

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

    def run_counts(self) -> list[tuple[str, str, int]]:
        """(command, status, how many) over every finished run: one query."""
        query = (
            sa.select(runs.c.command, runs.c.status, sa.func.count())
            .where(runs.c.ended_at.is_not(None))
            .group_by(runs.c.command, runs.c.status)
        )
        with self.engine.connect() as conn:
            return [(c, s, int(n)) for c, s, n in conn.execute(query)]

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

    def last_success(self, stage: str) -> dict[str, datetime]:
        """Task → when the newest run that built it or found it up to date in prod ended."""
        query = (
            sa.select(tasks.c.task, sa.func.max(runs.c.ended_at))
            .select_from(tasks.join(runs, tasks.c.run_id == runs.c.run_id))
            .where(tasks.c.stage == stage, tasks.c.status.in_(("built", "up_to_date")))
            # prod's builds only (a run from before runs recorded their environment: its
            # command says)
            .where(runs.c.env.is_(None))
            .where(~runs.c.command.contains("--env", autoescape=True))
            .group_by(tasks.c.task)
        )
        with self.engine.connect() as conn:
            return {task: at for task, at in conn.execute(query) if at is not None}

    def run_history(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest runs first, each with what its tasks and rules came to (three queries):
        `tasks` (stage → status → how many), `landed` and `quarantined` (rows its ingest tasks
        wrote) and `rules_failed` (severity → how many of its rule results failed)."""
        history = self.recent_runs(limit)
        ids = [r["run_id"] for r in history]
        by_id = {
            r["run_id"]: {**r, "tasks": {}, "landed": 0, "quarantined": 0, "rules_failed": {}}
            for r in history
        }
        counted = (
            sa.select(
                tasks.c.run_id,
                tasks.c.stage,
                tasks.c.status,
                sa.func.count(),
                sa.func.sum(tasks.c.rows),
                sa.func.sum(tasks.c.quarantined),
            )
            .where(tasks.c.run_id.in_(ids))
            .group_by(tasks.c.run_id, tasks.c.stage, tasks.c.status)
        )
        failed = (
            sa.select(check_results.c.run_id, check_results.c.severity, sa.func.count())
            .where(check_results.c.run_id.in_(ids), check_results.c.passed.is_(False))
            .group_by(check_results.c.run_id, check_results.c.severity)
        )
        with self.engine.connect() as conn:
            for run_id, stage, status, n, rows, quarantined in conn.execute(counted):
                run = by_id[run_id]
                run["tasks"].setdefault(stage, {})[status] = int(n)
                if stage == "ingest":
                    run["landed"] += int(rows or 0)
                run["quarantined"] += int(quarantined or 0)
            for run_id, severity, n in conn.execute(failed):
                by_id[run_id]["rules_failed"][severity] = int(n)
        return list(by_id.values())

    def find_run(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(runs.select().where(runs.c.run_id == run_id)).first()
        return None if row is None else dict(row._mapping)

    def matching_runs(self, key: str, limit: int = 10) -> list[str]:
        """The ids of the runs `key` may stand for (any case), newest first: those that start
        with it, and those whose random part (after the `-`) does."""
        run_id, key = sa.func.lower(runs.c.run_id), key.lower()
        query = (
            sa.select(runs.c.run_id)
            .where(
                sa.or_(
                    run_id.startswith(key, autoescape=True),
                    run_id.contains("-" + key, autoescape=True),
                )
            )
            .order_by(runs.c.started_at.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [found for (found,) in conn.execute(query)]

    def run_checks(self, run_id: str) -> list[dict[str, Any]]:
        """The rule results a run recorded, by table and rule."""
        query = (
            check_results.select()
            .where(check_results.c.run_id == run_id)
            .order_by(check_results.c.target, check_results.c.rule, check_results.c.checked_at)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def newest_tasks(self, stage: str) -> dict[str, dict[str, Any]]:
        """Task → its row in the newest finished run of `stage` that ran it, with that run's
        `command` and `run_ended_at`: one query."""
        newest = (
            sa.func.row_number()
            .over(
                partition_by=tasks.c.task,
                # a stream's run records a task per batch: the newest batch
                order_by=(runs.c.ended_at.desc(), tasks.c.ended_at.desc()),
            )
            .label("n")
        )
        ranked = (
            sa.select(*tasks.c, runs.c.command, runs.c.ended_at.label("run_ended_at"), newest)
            .select_from(tasks.join(runs, tasks.c.run_id == runs.c.run_id))
            .where(tasks.c.stage == stage, runs.c.ended_at.is_not(None))
            .subquery()
        )
        query = sa.select(ranked).where(ranked.c.n == 1)
        with self.engine.connect() as conn:
            return {
                r.task: {k: v for k, v in r._mapping.items() if k != "n"}
                for r in conn.execute(query)
            }

    def newest_check_results(self) -> list[dict[str, Any]]:
        """The newest result of every rule on every table (removed rules' too), by table."""
        newest = (
            sa.func.row_number()
            .over(
                partition_by=(check_results.c.target, check_results.c.rule),
                order_by=check_results.c.checked_at.desc(),
            )
            .label("n")
        )
        ranked = sa.select(*check_results.c, newest).subquery()
        query = sa.select(ranked).where(ranked.c.n == 1).order_by(ranked.c.target, ranked.c.rule)
        with self.engine.connect() as conn:
            return [{k: v for k, v in r._mapping.items() if k != "n"} for r in conn.execute(query)]
