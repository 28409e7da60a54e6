"""Golden-file tests: every malformed project file gives one line naming file, line and field.

Each folder in `golden/` holds only the files that differ from the example project, plus
`expected.txt`: the exact line a user sees. `HEADWATER_UPDATE_GOLDEN=1` rewrites the goldens
(review every message before committing).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

import headwater.cli
from headwater.errors import SpecError
from headwater.project import load_project

EXAMPLE = Path(headwater.cli.__file__).parent / "example"
GOLDEN = Path(__file__).parent / "golden"
EXPECTED = "expected.txt"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
UPDATE = os.environ.get("HEADWATER_UPDATE_GOLDEN") == "1"


def _project(tmp_path: Path, case: str | None = None) -> Path:
    """The example project in `tmp_path`, with the case's files laid over it."""
    root = tmp_path / "project"
    shutil.copytree(EXAMPLE, root)
    if case is not None:
        overlay = GOLDEN / case
        for source in overlay.rglob("*"):
            if source.is_file() and source.name != EXPECTED:
                target = root / source.relative_to(overlay)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
    return root


def _overlaid(case: str) -> set[str]:
    overlay = GOLDEN / case
    return {
        p.relative_to(overlay).as_posix()
        for p in overlay.rglob("*")
        if p.is_file() and p.name != EXPECTED
    }


def test_example_project_loads(tmp_path: Path) -> None:
    project = load_project(_project(tmp_path))

    assert {c.table for c in project.contracts.values()} == {
        "raw.customers",
        "raw.events",
        "raw.orders",
        "seed.countries",
    }
    assert "marts.funnel_daily" in project.models


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 14


@pytest.mark.parametrize("case", CASES)
def test_malformed_file_gives_one_clear_line(tmp_path: Path, case: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_project(_project(tmp_path, case))
    line = caught.value.render()

    expected_file = GOLDEN / case / EXPECTED
    if UPDATE:
        expected_file.write_text(line + "\n", encoding="utf-8")
    assert line == expected_file.read_text(encoding="utf-8").rstrip("\n")
    assert "\n" not in line
    match = re.match(r"^(?P<file>[^:\s]+):(?P<line>[1-9][0-9]*): ", line)
    assert match, f"{line!r} does not start with `file:line: `"
    assert match["file"] in _overlaid(case), "the error names a file the case did not change"
