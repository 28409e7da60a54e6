"""Write a conversion into OUT: refuse a folder the import did not write (unless forced), and
replace exactly what an earlier import wrote, so importing again gives the same tree."""

from __future__ import annotations

import shutil
from pathlib import Path

from headwater.change.dbt.report import MARKER, REPORT_FILE
from headwater.change.dbt.unit_tests import TESTS_FILE
from headwater.errors import Location, SpecError

# what an import owns in OUT: replaced whole on a re-import (state such as .headwater/ stays)
OWNED = ("models", "seeds", "contracts", "headwater.yml", TESTS_FILE, REPORT_FILE)


def write(files: dict[str, bytes], out: Path, *, force: bool = False) -> None:
    """Write `files` (relative path → bytes) under `out`.

    Raises:
        SpecError: `out` is a file, or a non-empty folder an import did not write (without
            `force`).
    """
    if out.exists() and not out.is_dir():
        raise SpecError("is a file, not a folder", where=Location(str(out)))
    if written_by_import(out):
        for name in OWNED:
            _remove(out / name)
    elif out.exists() and any(out.iterdir()) and not force:
        raise SpecError(
            "the folder is not empty and was not written by `headwater import dbt`",
            where=Location(str(out)),
            hint="choose an empty folder, or pass --force to write into it anyway",
        )
    for name, data in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def written_by_import(out: Path) -> bool:
    """Whether `out` holds an import's report (its first line is the marker)."""
    report = out / REPORT_FILE
    try:
        with report.open(encoding="utf-8") as handle:
            return handle.readline().rstrip("\n") == MARKER
    except (OSError, UnicodeDecodeError):
        return False


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
