"""What every run does when it ends, for the people and systems watching the project.

`after_run` is called once per run, after the run is recorded in the catalog (so what it
reads there is the run's final record): it opens and resolves alert incidents and exports
the run's trace. Nothing here may fail the run or hold it up: a step that fails says why in
a note, and alerts that cannot be delivered now are kept and sent again later.
"""

from __future__ import annotations

from datetime import datetime

from headwater.orchestrate.incidents import raise_incidents
from headwater.orchestrate.metrics import trace_run
from headwater.orchestrate.report import RunReport
from headwater.orchestrate.stores import Stores
from headwater.project import Project


def after_run(project: Project, stores: Stores, report: RunReport, *, now: datetime) -> list[str]:
    """Alert on and trace the run `report` just recorded; the notes for the user."""
    notes: list[str] = []
    notes.extend(trace_run(project, stores.catalog, report.run_id))
    notes.extend(raise_incidents(project, stores, report, now=now))
    return notes
