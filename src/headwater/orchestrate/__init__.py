"""Orchestration (band 5): one task graph across ingest → models → checks, state in the catalog.

Its members are imported when first used, so a caller of one light module of the band
(`orchestrate.uptodate`, which answers a build with nothing to do) pays for no other.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headwater.orchestrate.checks import check_all, unpublished
    from headwater.orchestrate.report import ModelOutcome, RunReport
    from headwater.orchestrate.running import run
    from headwater.orchestrate.stores import Stores

_EXPORTS = {
    "check_all": "headwater.orchestrate.checks",
    "unpublished": "headwater.orchestrate.checks",
    "ModelOutcome": "headwater.orchestrate.report",
    "RunReport": "headwater.orchestrate.report",
    "run": "headwater.orchestrate.running",
    "Stores": "headwater.orchestrate.stores",
}
__all__ = ["ModelOutcome", "RunReport", "Stores", "check_all", "run", "unpublished"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'headwater.orchestrate' has no attribute {name!r}")
