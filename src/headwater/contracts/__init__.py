"""Specs: the frozen objects a project's YAML and model headers load into (band 1)."""

from headwater.contracts.connectors import (
    FilesConnector,
    HttpConnector,
    Incremental,
    PostgresConnector,
    SqlConnector,
)
from headwater.contracts.specs import (
    Column,
    Contract,
    Defaults,
    Delivery,
    Evolution,
    Load,
    ModelConfig,
    ModelKind,
    ModelSidecar,
    OnFail,
    PrivacyLevel,
    Rule,
    RuleType,
    Settings,
    Severity,
)

__all__ = [
    "Column",
    "Contract",
    "Defaults",
    "Delivery",
    "Evolution",
    "FilesConnector",
    "HttpConnector",
    "Incremental",
    "Load",
    "ModelConfig",
    "ModelKind",
    "ModelSidecar",
    "OnFail",
    "PostgresConnector",
    "PrivacyLevel",
    "Rule",
    "RuleType",
    "Settings",
    "Severity",
    "SqlConnector",
]
