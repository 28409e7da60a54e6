"""dbt unit tests (`unit_tests:` in properties files) → headwater model tests in
`tests/dbt_unit_tests.yml`: the model, the rows of each input table, the rows expected.

Rows given as dicts convert; CSV or SQL fixtures, and overrides of macros or vars (an
incremental run's test), are flagged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from headwater.change.dbt.layout import YamlFile
from headwater.change.dbt.report import Report
from headwater.contracts.tests_spec import ModelTest

TESTS_FILE = "tests/dbt_unit_tests.yml"
HEADER = "# dbt's unit tests, converted by `headwater import dbt`; run them with `headwater test`\n"


def convert_unit_tests(
    files: list[YamlFile],
    *,
    model_table: Callable[[str], str | None],
    expression: Callable[[str, str], str],
    report: Report,
) -> dict[str, Any]:
    """Each unit test of the properties files, as headwater writes it (name → test)."""
    out: dict[str, Any] = {}
    for file in files:
        entries = file.data.get("unit_tests") if isinstance(file.data, dict) else None
        for i, entry in enumerate(entries or []):
            loc = ("unit_tests", i)
            test, why = _test(entry, file.path, model_table, expression)
            name = str(entry.get("name", f"unit_test_{i}")) if isinstance(entry, dict) else "?"
            if test is None or name in out:
                why = why or f"a unit test named {name!r} is converted already"
                report.flag(file.path, file.line(loc), f"unit test `{name}`", why)
                continue
            out[name] = test
    return dict(sorted(out.items()))


def _test(
    entry: Any,
    shown: str,
    model_table: Callable[[str], str | None],
    expression: Callable[[str, str], str],
) -> tuple[dict[str, Any] | None, str | None]:
    if not isinstance(entry, dict):
        return None, "not a unit test dbt reads"
    if entry.get("overrides"):
        return None, "it overrides macros or vars, which headwater tests do not: write it by hand"
    model = model_table(str(entry.get("model")))
    if model is None:
        return None, f"no model {entry.get('model')!r} was imported"
    test: dict[str, Any] = {"model": model}
    if entry.get("description"):
        test["description"] = str(entry["description"]).strip()
    inputs: dict[str, Any] = {}
    for given in entry.get("given") or []:
        table = expression(str(given.get("input", "")), shown)
        if "{{" in table or not _dicts(given):
            return None, f"input {given.get('input')!r} is not rows of a table (format: dict)"
        inputs[table] = given.get("rows") or []
    expect = entry.get("expect") or {}
    if not _dicts(expect):
        return None, "its expected rows are not `format: dict`; write them as rows"
    test["inputs"] = inputs
    test["expected"] = expect.get("rows") or []
    try:
        ModelTest.model_validate(test)
    except ValidationError as err:
        return None, f"not a valid headwater test: {err.errors()[0]['msg']}"
    return test, None


def _dicts(fixture: dict[str, Any]) -> bool:
    rows = fixture.get("rows")
    plain = fixture.get("format", "dict") == "dict" and "fixture" not in fixture
    return plain and (
        rows is None or (isinstance(rows, list) and all(isinstance(r, dict) for r in rows))
    )
