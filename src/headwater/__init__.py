"""headwater: one package for the data platform of SEED.md, embedded on DuckDB by default.

`import headwater` loads nothing heavy; the public surface is imported lazily from its band.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_project": "headwater.project",
    "Project": "headwater.project",
    "run": "headwater.orchestrate",
    "check_all": "headwater.orchestrate",
    "Stores": "headwater.orchestrate",
    "RunReport": "headwater.orchestrate",
    "Contract": "headwater.contracts",
    "Rule": "headwater.contracts",
    "Settings": "headwater.contracts",
    "CheckResult": "headwater.quality",
    "HeadwaterError": "headwater.errors",
    "SpecError": "headwater.errors",
    "ModelError": "headwater.errors",
    "DataError": "headwater.errors",
    "Denied": "headwater.errors",
    "LeakError": "headwater.errors",
    "EngineError": "headwater.errors",
    "SourceError": "headwater.errors",
    "TransientSourceError": "headwater.errors",
    "UserCodeError": "headwater.errors",
    "read": "headwater.serve.client",
    "training_set": "headwater.serve.features",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'headwater' has no attribute {name!r}")
