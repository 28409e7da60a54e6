"""`headwater import dbt DBT_PROJECT OUT`: convert a dbt project, print a summary and the
report's path. Jinja2 and the converter load only when the command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

importer = typer.Typer(
    no_args_is_help=True, help="Convert a project of another tool into a headwater project."
)


@importer.command()
def dbt(
    project: Annotated[Path, typer.Argument(help="The dbt project folder (with dbt_project.yml).")],
    out: Annotated[Path, typer.Argument(help="Where to write the headwater project.")],
    force: Annotated[
        bool, typer.Option(help="Write into a non-empty folder an import did not write.")
    ] = False,
    fmt: Annotated[
        str, typer.Option("--format", help="table (for people) | json (for machines)")
    ] = "table",
) -> None:
    """Convert a dbt project into a headwater project; OUT/IMPORT.md lists what was not.

    Models are rendered to plain SQL (ref, source, config, vars, macros, loops), schema tests
    become rules, seeds are copied to seeds/, sources become contracts. Each construct that
    could not be converted is listed with its file:line in the dbt project.
    """
    from headwater.change.dbt import import_dbt
    from headwater.cli.main import _check_format, _console, _errors, _print_json

    _check_format(fmt)
    with _errors():
        result = import_dbt(project, out, force=force)
    report = result.report
    if fmt == "json":
        _print_json(
            {
                "out": str(out),
                "report": str(result.report_path),
                "converted": dict(sorted(report.converted.items())),
                "unconverted": [f.as_json() for f in report.unconverted],
            }
        )
        return
    counts = ", ".join(f"{n} {what}" for what, n in sorted(report.converted.items()))
    _console().print(f"Imported dbt project [bold]{report.project}[/] into {out}: {counts}.")
    found = report.unconverted
    if found:
        _console().print(f"[yellow]{len(found)} not converted[/] (each with what to do):")
        for finding in found:
            _console().print(f"  {finding.where}  {finding.construct}", highlight=False)
    _console().print(f"Report: {result.report_path}")
    _console().print(f"Next: [bold]headwater run -p {out}[/]")
