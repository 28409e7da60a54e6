"""Raw batches held back from readers: a blocking contract rule failed on them. Each stays
held until its rules pass (re-checked at every landing) or an operator decides: release it
into `raw.<name>`, or discard it (out of raw for good; it stays in the immutable lake)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa

from headwater.zones.catalog.base import CatalogBase
from headwater.zones.catalog.schema import check_results, held_batches

REASON_PREFIX = "error rule(s) failed: "  # how `land_one` words a hold: the rules after it


class HoldState(StrEnum):
    HELD = "held"  # awaiting a decision, re-checked at every landing
    RELEASED = "released"  # back in raw.<name>: by its rules passing, or by an operator
    DISCARDED = "discarded"  # out of raw.<name> for good


@dataclass(frozen=True)
class HeldBatch:
    """One batch ever held, and what was decided about it."""

    table: str
    batch_id: str
    reason: str
    held_at: datetime
    released_at: datetime | None = None
    discarded_at: datetime | None = None
    decided_by: str | None = None  # None: released by its rules passing
    decision_note: str | None = None

    @property
    def state(self) -> HoldState:
        if self.discarded_at is not None:
            return HoldState.DISCARDED
        return HoldState.HELD if self.released_at is None else HoldState.RELEASED

    @property
    def decided_at(self) -> datetime | None:
        return self.discarded_at or self.released_at

    @property
    def rules(self) -> list[str]:
        """The blocking rules the reason names (none when it is worded otherwise)."""
        if not self.reason.startswith(REASON_PREFIX):
            return []
        return [r.strip() for r in self.reason.removeprefix(REASON_PREFIX).split(",") if r.strip()]


@dataclass(frozen=True)
class FailedRule:
    """A blocking rule's result on a held batch: what it measured against its bar."""

    rule: str
    type: str
    metric: float | None
    threshold: str | None
    checked_at: datetime


class HoldsStore(CatalogBase):
    """Raw batches held back from readers: a blocking contract rule failed on them."""

    def hold(self, table: str, batch_id: str, *, reason: str, now: datetime) -> None:
        with self._tx() as conn:
            conn.execute(
                held_batches.delete().where(
                    held_batches.c.table_name == table, held_batches.c.batch_id == batch_id
                )
            )
            conn.execute(
                held_batches.insert().values(
                    table_name=table, batch_id=batch_id, reason=self._scrub(reason), held_at=now
                )
            )

    def release(
        self,
        table: str,
        batch_id: str,
        *,
        now: datetime,
        by: str | None = None,
        note: str | None = None,
    ) -> bool:
        """Put a held batch back into `raw.<name>` (`by` None: its rules pass now); False
        when it is no longer held (decided meanwhile)."""
        return self._decide(table, batch_id, {"released_at": now}, by=by, note=note)

    def discard(self, table: str, batch_id: str, *, now: datetime, by: str, note: str) -> bool:
        """Keep a held batch out of `raw.<name>` for good: never re-checked, never released;
        False when it is no longer held (decided meanwhile)."""
        return self._decide(table, batch_id, {"discarded_at": now}, by=by, note=note)

    def _decide(
        self,
        table: str,
        batch_id: str,
        when: dict[str, datetime],
        *,
        by: str | None,
        note: str | None,
    ) -> bool:
        values = {**when, "decided_by": by, "decision_note": self._text(note)}
        with self._tx() as conn:
            done = conn.execute(
                held_batches.update()
                .where(
                    held_batches.c.table_name == table,
                    held_batches.c.batch_id == batch_id,
                    held_batches.c.released_at.is_(None),  # one decision: the first one wins
                    held_batches.c.discarded_at.is_(None),
                )
                .values(**values)
            )
            return bool(done.rowcount)

    def held(self, table: str) -> dict[str, str]:
        """Batch id → why it is held, for the batches of `table` awaiting a decision (the ones
        re-checked at each landing; discarded batches are not among them)."""
        return {b.batch_id: b.reason for b in self.holds(table=table)}

    def held_all(self) -> dict[str, dict[str, str]]:
        """Table → the batches readers must not see (batch id → why): those held awaiting a
        decision and those discarded. One query for every raw table."""
        query = sa.select(
            held_batches.c.table_name, held_batches.c.batch_id, held_batches.c.reason
        ).where(held_batches.c.released_at.is_(None))
        out: dict[str, dict[str, str]] = {}
        with self.engine.connect() as conn:
            for table, batch, reason in conn.execute(query):
                out.setdefault(table, {})[batch] = reason
        return out

    def withheld(self, table: str) -> dict[str, str]:
        """Batch id → why, for the batches of `table` readers must not see (held or discarded)."""
        return self.held_all().get(table, {})

    def holds(self, *, table: str | None = None, decided: bool = False) -> list[HeldBatch]:
        """The batches held awaiting a decision, oldest first; `decided`: also those released
        or discarded since."""
        query = sa.select(held_batches).order_by(
            held_batches.c.held_at, held_batches.c.table_name, held_batches.c.batch_id
        )
        if table is not None:
            query = query.where(held_batches.c.table_name == table)
        if not decided:
            query = query.where(
                held_batches.c.released_at.is_(None), held_batches.c.discarded_at.is_(None)
            )
        with self.engine.connect() as conn:
            return [
                HeldBatch(
                    r.table_name,
                    r.batch_id,
                    r.reason,
                    r.held_at,
                    r.released_at,
                    r.discarded_at,
                    r.decided_by,
                    r.decision_note,
                )
                for r in conn.execute(query)
            ]

    def failed_rules(self, batch: HeldBatch) -> list[FailedRule]:
        """The failing results that held `batch`: for each rule its reason names, the newest
        failing result on its table at or before the hold (recorded by the same landing)."""
        out = []
        with self.engine.connect() as conn:
            for rule in batch.rules:
                query = (
                    sa.select(
                        check_results.c.type,
                        check_results.c.metric,
                        check_results.c.threshold,
                        check_results.c.checked_at,
                    )
                    .where(
                        check_results.c.target == batch.table,
                        check_results.c.rule == rule,
                        check_results.c.passed.is_(False),
                        check_results.c.checked_at <= batch.held_at,
                    )
                    .order_by(check_results.c.checked_at.desc())
                    .limit(1)
                )
                found = conn.execute(query).first()
                out.append(
                    FailedRule(rule, *found)
                    if found
                    else FailedRule(rule, "", None, None, batch.held_at)
                )
        return out

    def releases(self) -> dict[str, int]:
        """Table → how many of its batches were ever released (models that read a table
        built while a batch was held must take the released batch in)."""
        query = (
            sa.select(held_batches.c.table_name, sa.func.count())
            .where(held_batches.c.released_at.is_not(None))
            .group_by(held_batches.c.table_name)
        )
        with self.engine.connect() as conn:
            return {table: int(n) for table, n in conn.execute(query)}
