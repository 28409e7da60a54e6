"""`headwater test`: run the project's model tests (`tests/*.yml`) on an in-memory DuckDB.

Declared here with only typer imported (`--help` stays fast); cli/tests_run.py runs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def run_model_tests(
    ctx: typer.Context,
    project: Annotated[
        Path,
        typer.Option("--project", "-p", help="The project folder.", show_default="current folder"),
    ] = Path("."),
    keyword: Annotated[
        str | None,
        typer.Option("-k", help="Only tests whose name (or model) contains this text."),
    ] = None,
) -> None:
    """Run the model tests in tests/*.yml: given input rows, the rows a model must return.
    Exit 0 when all pass, 1 when one fails, 2 when a test file is wrong."""
    from headwater.cli import tests_run

    tests_run.run_model_tests(project, keyword, debug=bool(ctx.find_root().params.get("debug")))
