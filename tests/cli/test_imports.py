"""`headwater --help` answers at once: what it imports, not how long it takes (that is
bench/transform's `--help` figure).

The check reads `python -X importtime` of a real `python -m headwater …` process, so an import
added anywhere on the path (cli/main.py, a command module it registers, `headwater/__init__`)
shows. The last test is the mutation check: the same process with one heavy import added
before the CLI runs is caught, by name:

    >>> heavy_imports(["--help"], before="import pyarrow")
    ['pyarrow']
"""

from __future__ import annotations

import subprocess
import sys

import pytest

# what a command may need and `--help` must not pay for: the engine, the lake, SQL parsing,
# HTTP, YAML, and headwater's own stages (each pulls in several of the others). Not pydantic:
# typer (0.2x) imports it itself to coerce a subcommand's options.
HEAVY = (
    "duckdb",
    "pyarrow",
    "pyiceberg",
    "sqlalchemy",
    "sqlglot",
    "httpx",
    "fsspec",
    "jinja2",
    "yaml",
    "headwater.contracts",
    "headwater.engine",
    "headwater.ingest",
    "headwater.models",
    "headwater.orchestrate",
    "headwater.project",
    "headwater.quality",
    "headwater.zones",
)
RUN_CLI = "import runpy, sys; sys.argv = ['headwater', *sys.argv[1:]]; " + (
    "runpy.run_module('headwater', run_name='__main__', alter_sys=True)"
)


def heavy_imports(args: list[str], *, before: str = "") -> list[str]:
    """The HEAVY packages (top level) a `headwater ARGS` process imports; `before`: code the
    same process runs first."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"{before}\n{RUN_CLI}", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Usage" in done.stdout or "headwater" in done.stdout  # it did answer
    names = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return sorted(h for h in HEAVY if any(n == h or n.startswith(h + ".") for n in names))


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["build", "--help"],
        ["run", "--help"],
        ["test", "--help"],
        ["lineage", "--help"],
        ["gc", "--help"],
        ["docs", "--help"],
        ["classify", "--help"],
        ["audit", "--help"],
        ["profile", "--help"],
        ["metrics", "--help"],
        ["alerts", "--help"],
        ["report", "--help"],
        ["forget", "--help"],
        ["sql", "--help"],
        ["import", "dbt", "--help"],
    ],
    ids=" ".join,
)
def test_help_and_version_import_nothing_heavy(args: list[str]) -> None:
    assert heavy_imports(args) == []


def test_a_heavy_import_on_the_help_path_is_caught_by_name() -> None:
    assert heavy_imports(["--help"], before="import pyarrow") == ["pyarrow"]
    assert "headwater.project" in heavy_imports(["--help"], before="import headwater.project")
