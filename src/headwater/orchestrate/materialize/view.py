"""`view`: the version is a view over the versions it reads; nothing is stored."""

from __future__ import annotations

from sqlglot import exp

from headwater.orchestrate.materialize.base import Job


class View:
    def write(self, job: Job) -> int | None:
        create = exp.Create(this=job.target, kind="VIEW", replace=True, expression=job.query)
        job.cursor.execute(create)
        return None

    def one_statement(self, job: Job) -> bool:
        return True
