"""Shared fixtures: the example project "shop" (small), scaffolded fresh or built once."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from headwater.cli.scaffold import scaffold
from headwater.orchestrate import RunReport, Stores, run
from headwater.project import Project, load_project
from tests.browser import browser  # noqa: F401  (the fixture of the browser tests)
from tests.engines import CONFORMANCE

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SMALL_EVENTS = 4_500


@pytest.fixture(scope="session")
def shop_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project with a small data set, never run (copy it before use)."""
    root = tmp_path_factory.mktemp("template") / "shop"
    scaffold(root, events=SMALL_EVENTS, now=NOW)
    return root


@pytest.fixture
def shop(shop_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the small example project, not yet run."""
    root = tmp_path / "shop"
    shutil.copytree(shop_template, root)
    return root


@pytest.fixture(scope="module")
def built_shop(
    shop_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Project, Stores, RunReport]]:
    """The small example project after one full run (read-only for tests that use it)."""
    root = tmp_path_factory.mktemp("built") / "shop"
    shutil.copytree(shop_template, root)
    project = load_project(root)
    stores = Stores.open(project)
    report = run(project, stores, now=NOW)
    yield project, stores, report
    stores.close()


@pytest.fixture(params=CONFORMANCE)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The engine a conformance test runs every project on: DuckDB; DuckDB behind a dialect
    of another name that records what it is sent; that engine with no optional capability;
    and Spark (tests/engines.py). A new engine adds a parameter there."""
    from tests.engines import engine_named, text_statements

    with engine_named(request.param, monkeypatch) as log:
        yield request.param
    assert request.param == "duckdb" or log, f"the {request.param} engine was never opened"
    assert not text_statements(log), f"sent as text, not as ASTs: {text_statements(log)[:3]}"
