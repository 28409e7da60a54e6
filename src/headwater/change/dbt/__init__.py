"""`headwater import dbt`: convert a dbt project into a headwater project and a report.

    >>> result = import_dbt(Path("jaffle_shop"), Path("shop"))   # doctest: +SKIP
    >>> [f.where for f in result.report.unconverted]               # doctest: +SKIP
    ['models/marts/orders.sql:12']

Jinja2 is imported here only (band 4, `change/dbt`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from headwater.change.dbt.convert import convert
from headwater.change.dbt.output import write
from headwater.change.dbt.report import REPORT_FILE, Finding, Report
from headwater.errors import Location, SpecError


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote: where, the report, and the report's path."""

    out: Path
    report: Report
    files: int

    @property
    def report_path(self) -> Path:
        return self.out / REPORT_FILE


def import_dbt(project: Path, out: Path, *, force: bool = False) -> ImportResult:
    """Convert the dbt project in `project` into a headwater project in `out`.

    Raises:
        SpecError: the dbt project cannot be read, or `out` is not a folder an import may
            write (naming the file, and the line where there is one).
    """
    if out.resolve() == project.resolve():
        raise SpecError(
            "the headwater project would overwrite the dbt project's own files",
            where=Location(str(out)),
            hint="write it to another folder, e.g. a sibling of the dbt project",
        )
    conversion = convert(project)
    write(conversion.files, out, force=force)
    return ImportResult(out, conversion.report, len(conversion.files))


__all__ = ["Finding", "ImportResult", "Report", "import_dbt"]
