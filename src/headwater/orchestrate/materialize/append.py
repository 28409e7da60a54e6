"""`append`: the first build runs the query over every raw batch; later builds insert what
it makes of the batches not seen yet."""

from __future__ import annotations

from sqlglot import exp

from headwater.orchestrate.materialize.base import Job, replace_table


class Append:
    def write(self, job: Job) -> int | None:
        if job.new is None:
            job.cursor.execute(replace_table(job.target, job.everything()))
        elif any(job.new.values()):
            job.cursor.execute(exp.insert(job.over_new(), job.target))
        return job.count()

    def one_statement(self, job: Job) -> bool:
        return False
