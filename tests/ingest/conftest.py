"""Fixtures of the ingest tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.zones.lake import Lake


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    """An empty lake with its SQLite catalog in the test's folder."""
    return Lake(f"sqlite:///{tmp_path / 'catalog.db'}", "lake", tmp_path)
