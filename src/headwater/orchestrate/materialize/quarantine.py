"""Rows of a new version failing `on_fail: quarantine` rules move to `<version>__quarantine`,
each with the rules it failed (`_hw_reason`)."""

from __future__ import annotations

from sqlglot import exp

from headwater.contracts import Rule
from headwater.contracts.predicates import bad_rows, failure_reason
from headwater.orchestrate.materialize.base import Job, replace_table
from headwater.orchestrate.materialize.by_time import within


def route(job: Job, rules: list[Rule]) -> int:
    """Move the rows failing `rules` out of the version; returns how many moved. An
    incremental model's quarantine keeps the other intervals' rows and replaces those of the
    intervals written now."""
    cursor, target = job.cursor, job.target
    aside = exp.to_table(f"{job.physical}__quarantine")
    failing = exp.or_(*[bad_rows(r) for r in rules])
    declared = job.model.sidecar.columns
    tagged = {c for c, doc in declared.items() if getattr(doc, "pii", None) not in (None, "none")}
    reasons = [failure_reason(r, hidden=bool(r.columns) and r.columns[0] in tagged) for r in rules]
    why = exp.Anonymous(this="concat_ws", expressions=[exp.Literal.string("; "), *reasons]).as_(
        "_hw_reason"
    )
    intervals = job.intervals
    if intervals is None:
        moved = cursor.execute(
            replace_table(aside, exp.select(exp.Star(), why).from_(target).where(failing))
        )
        cursor.execute(exp.delete(target).where(failing.copy()))
        return moved or 0
    if not intervals.done_after or intervals.done_after == intervals.work:
        empty = exp.select(exp.Star(), exp.Literal.string("").as_("_hw_reason")).from_(target)
        cursor.execute(replace_table(aside, empty.limit(0)))
    span = within(job.model.config.time_column or "")
    count = 0
    for lo, hi in intervals.work:
        bounds = {"start": lo, "end": hi}
        cursor.execute(exp.delete(aside).where(span.copy()), bounds)
        bad = exp.and_(span.copy(), exp.Paren(this=failing.copy()))
        moved = cursor.execute(
            exp.insert(exp.select(exp.Star(), why.copy()).from_(target).where(bad), aside), bounds
        )
        cursor.execute(exp.delete(target).where(bad.copy()), bounds)
        count += moved or 0
    return count
