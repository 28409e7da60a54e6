"""The probe project itself is sound: every bad-input case starts from a clean run."""

from __future__ import annotations

from pathlib import Path

from tests.badinput.harness import assert_no_traceback, assert_reconciled, hw, probe_project


def test_the_probe_project_runs_clean(tmp_path: Path) -> None:
    root = probe_project(tmp_path / "probe")
    outcome = hw(root, "run")
    assert_no_traceback(outcome)
    assert outcome.code == 0, outcome
    assert_reconciled(root, "orders", landed=10, quarantined=0)
    assert_reconciled(root, "events", landed=3, quarantined=0)
