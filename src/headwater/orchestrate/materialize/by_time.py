"""`incremental_by_time`: each batch of intervals is deleted, then inserted again, so writing
an interval twice (a restatement, a retry) equals writing it once.

A first (or full) build writes every interval into a new table in one CREATE TABLE AS over
the whole range — the cost of the same model as a table — unless the model sets `batch_size`
itself (to bound what one query holds in memory): the intervals are the model's own, so
writing them at once or batch by batch gives the same rows."""

from __future__ import annotations

from datetime import datetime

from sqlglot import exp

from headwater.models.intervals import Range, batches, intersect
from headwater.orchestrate.incremental import IntervalPlan
from headwater.orchestrate.materialize.base import Job, count_star, replace_table

EPOCH = datetime(1970, 1, 1)


class ByTime:
    def write(self, job: Job) -> int | None:
        """Every batch of intervals as delete + insert, all in the caller's transaction; a
        first build at once."""
        assert job.intervals is not None and job.model.config.time_column is not None
        cfg, cursor, intervals = job.model.config, job.cursor, job.intervals
        if at_once(job):
            lo, hi = intervals.work[0]
            rows = cursor.execute(replace_table(job.target, job.query), {"start": lo, "end": hi})
            return rows if rows is not None else int(cursor.rows(count_star(job.target))[0][0])
        fresh = is_fresh(intervals)
        if fresh:
            create_empty(job)
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
        if at_once(job):
            return True
        if is_fresh(job.intervals):
            return False
        cfg = job.model.config
        chunks = batches(job.intervals.work, cfg.interval, cfg.batch_size)
        return len(chunks) <= 1 and not intersect(chunks, job.intervals.done)


def create_empty(job: Job) -> None:
    """Make the version's table, empty, with the columns its query returns."""
    empty = exp.select(exp.Star()).from_(exp.Subquery(this=job.query, alias="_q")).limit(0)
    job.cursor.execute(replace_table(job.target, empty), {"start": EPOCH, "end": EPOCH})


def replace_interval(job: Job, span: Range) -> tuple[int | None, int | None]:
    """Delete the rows of the intervals in `span`, then insert them again, in the caller's
    transaction (a backfill's unit): the rows deleted and inserted, as the engine reports
    them. It always deletes: a write whose catalog record a crash lost may have committed."""
    assert job.model.config.time_column is not None
    bounds = {"start": span[0], "end": span[1]}
    delete = exp.delete(job.target).where(within(job.model.config.time_column))
    deleted = job.cursor.execute(delete, bounds)
    return deleted, job.cursor.execute(exp.insert(job.query, job.target), bounds)


def within(column: str) -> exp.Expr:
    """`column >= :start AND column < :end`."""
    time = exp.column(column, quoted=True)
    return exp.and_(
        exp.GTE(this=time, expression=exp.Placeholder(this="start")),
        exp.LT(this=time.copy(), expression=exp.Placeholder(this="end")),
    )


def at_once(job: Job) -> bool:
    """Whether the version is written whole in one statement: a new table over one range
    of intervals, for a model that leaves `batch_size` to headwater."""
    assert job.intervals is not None
    return (
        is_fresh(job.intervals)
        and len(job.intervals.work) == 1
        and "batch_size" not in job.model.config.model_fields_set
    )


def is_fresh(intervals: IntervalPlan) -> bool:
    """Whether the intervals are written into a new table (a first or full build)."""
    return not intervals.done_after or intervals.done_after == intervals.work
