"""`scd2`: every version of each key with its validity; new data restates the keys it
touches, from every batch."""

from __future__ import annotations

from headwater.orchestrate.materialize.base import Job, replace_table
from headwater.orchestrate.materialize.merge import history, restate_keys


class Scd2:
    def write(self, job: Job) -> int | None:
        everything = job.everything()
        if job.new is None:
            job.cursor.execute(
                replace_table(job.target, history(everything, job.model, job.cursor))
            )
        elif any(job.new.values()):
            restate_keys(
                job.cursor, job.physical, everything=everything, new=job.over_new(), model=job.model
            )
        return job.count()

    def one_statement(self, job: Job) -> bool:
        return False
