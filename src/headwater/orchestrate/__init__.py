"""Orchestration (band 5): one task graph across ingest → models → checks, state in the catalog."""

from headwater.orchestrate.run import ModelOutcome, RunReport, check_all, run
from headwater.orchestrate.stores import Stores

__all__ = ["ModelOutcome", "RunReport", "Stores", "check_all", "run"]
