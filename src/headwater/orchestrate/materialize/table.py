"""`table`: every build replaces the version whole with what the query returns."""

from __future__ import annotations

from headwater.orchestrate.materialize.base import Job, replace_table


class Table:
    def write(self, job: Job) -> int | None:
        return job.cursor.execute(replace_table(job.target, job.query))

    def one_statement(self, job: Job) -> bool:
        return True
