"""What `headwater test` does (cli/testing.py declares it): run the project's model tests
(`tests/*.yml`) on an in-memory DuckDB.

A line per test as it runs, a diff table under each failure, a summary line. Exit 0 when all
pass, 1 when one fails, 2 when a test file is wrong. Nothing is read from or written to the
warehouse, the lake or the catalog.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from datetime import time as clock
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from headwater.contracts.tests_spec import ModelTestCase, discover_tests, load_tests
from headwater.errors import HeadwaterError, Location, SpecError, UsageError
from headwater.ingest import with_columns
from headwater.models.testing import Diff, ModelTester, ModelTestResult
from headwater.project import Project, load_project

_MARKS = {"missing": ("-", "red"), "unexpected": ("+", "green"), "changed": ("~", "yellow")}


def run_model_tests(project: Path, keyword: str | None, *, debug: bool) -> None:
    """Run the model tests in tests/*.yml: given input rows, the rows a model must return."""
    out, err = Console(), Console(stderr=True)
    started = time.perf_counter()
    try:
        loaded = load_project(project)
        cases = _select(_collect(loaded), keyword)
    except HeadwaterError as error:
        _fail(err, error, debug=debug)
    if not cases:
        out.print("no model tests: write them in tests/<name>.yml (see `headwater init`)")
        return
    try:  # a seed's columns, when it declares none, are those its file gives
        contracts = {
            name: with_columns(c, root=loaded.root) if c.zone == "seed" else c
            for name, c in loaded.contracts.items()
        }
    except HeadwaterError as error:
        _fail(err, error, debug=debug)
    tester = ModelTester(loaded.models, contracts)
    try:
        try:
            for case in cases:  # every test is checked before any runs
                tester.check(case)
        except HeadwaterError as error:
            _fail(err, error, debug=debug)
        results, broken = _run_all(out, tester, cases)
    finally:
        tester.close()
    _summary(out, results, len(broken), wall=time.perf_counter() - started)
    if any(isinstance(e, SpecError) for e in broken):
        raise typer.Exit(SpecError.exit_code)
    if broken or not all(r.passed for r in results):
        raise typer.Exit(1)


def _run_all(
    out: Console, tester: ModelTester, cases: list[ModelTestCase]
) -> tuple[list[ModelTestResult], list[HeadwaterError]]:
    """Run and print each test; those that could not run (a value that does not cast, an
    engine failure) come back as errors."""
    width = (max(len(c.name) for c in cases), max(len(c.spec.model) for c in cases))
    results: list[ModelTestResult] = []
    broken: list[HeadwaterError] = []
    for case in cases:
        try:
            result = tester.run(case)
        except HeadwaterError as error:
            broken.append(error)
            _line(out, "ERROR", "red", case, width, None)
            out.print(Padding(Text(error.render(), style="red"), (0, 0, 0, 6), expand=False))
            continue
        results.append(result)
        _report(out, result, width)
    return results, broken


def _collect(project: Project) -> list[ModelTestCase]:
    cases: list[ModelTestCase] = []
    seen: dict[str, ModelTestCase] = {}
    for path in discover_tests(project.root):
        for case in load_tests(path, root=project.root):
            if case.name in seen:
                first = seen[case.name]
                raise SpecError(
                    f"test {case.name!r} is also in {Location(first.file, first.line)}",
                    where=Location(case.file, case.line),
                    hint="test names are unique across the tests folder",
                )
            seen[case.name] = case
            cases.append(case)
    return cases


def _select(cases: list[ModelTestCase], keyword: str | None) -> list[ModelTestCase]:
    if keyword is None:
        return cases
    chosen = [c for c in cases if keyword in c.name or keyword in c.spec.model]
    if cases and not chosen:
        raise UsageError(
            f"no test name or model contains {keyword!r}",
            hint=f"tests are: {', '.join(c.name for c in cases)}",
        )
    return chosen


def _report(out: Console, result: ModelTestResult, width: tuple[int, int]) -> None:
    if result.passed:
        _line(out, "PASS", "green", result.case, width, result.seconds)
        return
    _line(out, "FAIL", "red", result.case, width, result.seconds)
    where = Location(result.case.file, result.case.line)
    if result.error is not None:
        out.print(
            Padding(Text(f"{where}: {result.error}", style="red"), (0, 0, 0, 6), expand=False)
        )
    elif result.diff is not None:
        out.print(Padding(Text(f"{where}: {_counts(result.diff)}"), (0, 0, 0, 6), expand=False))
        out.print(Padding(_diff_table(result.diff), (0, 0, 0, 6), expand=False))


def _line(
    out: Console,
    status: str,
    style: str,
    case: ModelTestCase,
    width: tuple[int, int],
    seconds: float | None,
) -> None:
    line = Text.assemble(
        (f"{status:<6}", f"bold {style}"),
        f"{case.name:<{width[0]}}  ",
        (f"{case.spec.model:<{width[1]}}", "cyan"),
        (f"  {_ms(seconds):>8}" if seconds is not None else "", "dim"),
    )
    out.print(line, highlight=False)


def _counts(diff: Diff) -> str:
    kinds = {
        "changed": (diff.changed, "~ changed: expected → returned"),
        "missing": (diff.missing, "- missing: expected, not returned"),
        "unexpected": (diff.unexpected, "+ unexpected: returned, not expected"),
    }
    return "; ".join(
        legend.replace(":", f" ({len(rows)}):", 1) for rows, legend in kinds.values() if rows
    )


def _diff_table(diff: Diff) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("")
    table.add_column("at", style="dim")
    for column in diff.columns:
        table.add_column(column)
    for change in diff.changed:
        cells = [
            Text.assemble(
                (_cell(change.expected.values.get(c)), "red"),
                " → ",
                (_cell(change.actual.values.get(c)), "green"),
            )
            if c in change.columns
            else Text(_cell(change.actual.values.get(c)))
            for c in diff.columns
        ]
        table.add_row(_mark("changed"), _at(change.expected.line, None), *cells)
    for row in diff.missing:
        values = [Text(_cell(row.values.get(c)), "red") for c in diff.columns]
        table.add_row(_mark("missing"), _at(row.line, None), *values)
    for row in diff.unexpected:
        values = [Text(_cell(row.values.get(c)), "green") for c in diff.columns]
        table.add_row(_mark("unexpected"), _at(None, row.index), *values)
    return table


def _mark(kind: str) -> Text:
    symbol, style = _MARKS[kind]
    return Text(symbol, style=f"bold {style}")


def _at(line: int | None, index: int | None) -> str:
    if line is not None:
        return f"line {line}"
    return f"row {index + 1}" if index is not None else ""


def _summary(out: Console, results: list[ModelTestResult], broken: int, *, wall: float) -> None:
    passed = sum(r.passed for r in results)
    failed = len(results) - passed
    total = len(results) + broken
    parts = [f"{passed} passed"] + ([f"{failed} failed"] if failed else [])
    parts += [f"{broken} with errors"] if broken else []
    style = "green" if not (failed or broken) else "red"
    ran = f" in {_ms(sum(r.seconds for r in results))}" if results else ""
    text = (
        f"{total} test{'s' if total != 1 else ''}{ran} ({_ms(wall)} with loading the project): "
        + ", ".join(parts)
    )
    out.print(Text(text, style=f"bold {style}"))


def _cell(value: Any) -> str:
    """A value as a user would write it in the test file."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, datetime):
        text = value.replace(tzinfo=None).isoformat(sep=" ")
        offset = value.utcoffset()
        if offset is None:
            return text
        return f"{text} UTC" if not offset else value.isoformat(sep=" ")
    if isinstance(value, date | clock):
        return value.isoformat()
    return str(value)


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:,.0f} ms"


def _fail(err: Console, error: HeadwaterError, *, debug: bool) -> NoReturn:
    if debug:
        err.print_exception()
    err.print(f"[red]error:[/] {error.render()}", highlight=False, soft_wrap=True)
    raise typer.Exit(error.exit_code) from None
