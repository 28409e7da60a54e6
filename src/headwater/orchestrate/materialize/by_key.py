"""`incremental_by_key`: the newest version of each key; new versions are merged in."""

from __future__ import annotations

from headwater.orchestrate.materialize.base import Job, replace_table
from headwater.orchestrate.materialize.merge import after_truncation, merge_into, newest_per_key


class ByKey:
    def write(self, job: Job) -> int | None:
        if job.new is None:
            everything = job.everything()
            if job.model.config.truncated_column:
                everything = after_truncation(everything, job.model)
            newest = newest_per_key(everything, job.model, job.cursor)
            job.cursor.execute(replace_table(job.target, newest))
        elif any(job.new.values()):
            merge_into(job.cursor, job.physical, job.over_new(), job.model)
        return job.count()

    def one_statement(self, job: Job) -> bool:
        return False
