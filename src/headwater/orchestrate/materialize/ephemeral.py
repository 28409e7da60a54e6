"""`ephemeral`: never stored; the build inlines its query into every model that reads it."""

from __future__ import annotations

from headwater.orchestrate.materialize.base import Job


class Ephemeral:
    def write(self, job: Job) -> int | None:
        raise AssertionError(f"{job.model.name} is ephemeral: it is inlined, never written")

    def one_statement(self, job: Job) -> bool:
        return True
