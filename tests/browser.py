"""Debian's chromium driven by Playwright, for the pages headwater writes (the catalog site,
the HTML report): no browser download. Without chromium or playwright a browser test is
skipped — but under CI=true, where `.ci/run` installs both, it fails."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest


def chromium() -> str:
    """The path of Debian's chromium (skips or fails the test without it, see above)."""
    path = shutil.which("chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail("chromium or playwright is missing under CI=true (.ci/run installs them)")
    pytest.skip("chromium or playwright not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless chromium, one per test module."""
    path = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=path, args=["--no-sandbox"], headless=True
        )
        yield launched
        launched.close()
