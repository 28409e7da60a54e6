"""The public surface of `headwater`, pinned: changing it is a decision, not an accident."""

import headwater

EXPECTED = [
    "CheckResult",
    "Contract",
    "DataError",
    "Denied",
    "EngineError",
    "HeadwaterError",
    "LeakError",
    "ModelError",
    "Project",
    "Rule",
    "RunReport",
    "Settings",
    "SourceError",
    "SpecError",
    "Stores",
    "TransientSourceError",
    "UserCodeError",
    "check_all",
    "load_project",
    "read",
    "run",
    "training_set",
]


def test_public_surface() -> None:
    assert headwater.__all__ == EXPECTED
    for name in EXPECTED:
        assert getattr(headwater, name) is not None
