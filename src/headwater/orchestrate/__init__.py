"""Orchestration (band 5): one task graph across ingest → models → checks, state in the catalog."""

from headwater.orchestrate.checks import check_all, unpublished
from headwater.orchestrate.report import ModelOutcome, RunReport
from headwater.orchestrate.run import run
from headwater.orchestrate.stores import Stores

__all__ = ["ModelOutcome", "RunReport", "Stores", "check_all", "run", "unpublished"]
