"""`incremental_by_time`: each batch of intervals is deleted, then inserted again, so writing
an interval twice (a restatement, a retry) equals writing it once."""

from __future__ import annotations

from datetime import datetime

from sqlglot import exp

from headwater.models.intervals import batches, intersect
from headwater.orchestrate.incremental import IntervalPlan
from headwater.orchestrate.materialize.base import Job, count_star, replace_table

EPOCH = datetime(1970, 1, 1)


class ByTime:
    def write(self, job: Job) -> int | None:
        """Every batch of intervals as delete + insert, all in the caller's transaction."""
        assert job.intervals is not None and job.model.config.time_column is not None
        cfg, cursor, intervals = job.model.config, job.cursor, job.intervals
        fresh = is_fresh(intervals)
        if fresh:
            empty = exp.select(exp.Star()).from_(exp.Subquery(this=job.query, alias="_q")).limit(0)
            cursor.execute(replace_table(job.target, empty), {"start": EPOCH, "end": EPOCH})
        delete = exp.delete(job.target).where(within(job.model.config.time_column))
        insert = exp.insert(job.query, job.target)
        # the row count follows from what each statement reports: no COUNT(*) afterwards
        rows = 0 if fresh else job.continued_rows
        for lo, hi in batches(intervals.work, cfg.interval, cfg.batch_size):
            bounds = {"start": lo, "end": hi}
            deleted: int | None = 0
            if not fresh and intersect([(lo, hi)], intervals.done):  # never written: no delete
                deleted = cursor.execute(delete, bounds)
            inserted = cursor.execute(insert, bounds)
            if rows is not None and deleted is not None and inserted is not None:
                rows = rows - deleted + inserted
            else:
                rows = None
        if rows is None:
            rows = int(cursor.rows(count_star(job.target))[0][0])
        return rows

    def one_statement(self, job: Job) -> bool:
        """At most one INSERT (into the existing table, one batch, over intervals never
        written)."""
        assert job.intervals is not None
        if is_fresh(job.intervals):
            return False
        cfg = job.model.config
        chunks = batches(job.intervals.work, cfg.interval, cfg.batch_size)
        return len(chunks) <= 1 and not intersect(chunks, job.intervals.done)


def within(column: str) -> exp.Expr:
    """`column >= :start AND column < :end`."""
    time = exp.column(column, quoted=True)
    return exp.and_(
        exp.GTE(this=time, expression=exp.Placeholder(this="start")),
        exp.LT(this=time.copy(), expression=exp.Placeholder(this="end")),
    )


def is_fresh(intervals: IntervalPlan) -> bool:
    """Whether the intervals are written into a new table (a first or full build)."""
    return not intervals.done_after or intervals.done_after == intervals.work
