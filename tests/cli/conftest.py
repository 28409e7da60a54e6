"""Fixtures of the command-line tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headwater.cli.main import app


@pytest.fixture(scope="module")
def ran_shop(shop_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example after one `headwater run`, a copy per test module (its tests share it)."""
    root = tmp_path_factory.mktemp("ran") / "shop"
    shutil.copytree(shop_template, root)
    result = CliRunner().invoke(app, ["run", "-p", str(root)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return root
