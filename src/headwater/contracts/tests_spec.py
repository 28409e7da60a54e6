"""Model tests (`tests/*.yml` in a project): given input rows, the rows a model must return.

Each file maps a test name to one test; every key path keeps its line, so a later check (an
unknown model, a value that does not cast) can still point at the file and line:

    orders_keep_the_latest_update:
      model: clean.orders
      inputs:
        raw.orders:                     # a list of rows, or {rows: [...], columns: {col: type}}
          - {order_id: 1, status: placed, updated_at: 2026-01-01 10:00:00}
          - {order_id: 1, status: paid, updated_at: 2026-01-01 12:00:00}
      expected:                         # a list of rows, or {rows: [...], ordered: true}
        - {order_id: 1, status: paid}
      vars: {start: 2026-01-01, end: 2026-01-02}   # values for the model's :start / :end
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationError, model_validator

# the loader's own error mapping, applied per test: a file is a mapping of tests, not one spec
import headwater.engine.dialect as authored
from headwater.contracts.base import Identifier, Spec
from headwater.contracts.load import Loc, dotted, read_text, read_yaml, shown_path, spec_error
from headwater.contracts.specs import sql_type
from headwater.errors import Location, SpecError

TESTS_FOLDER = "tests"

Row = dict[str, Any]
SqlType = Annotated[str, AfterValidator(lambda text: authored.shown(sql_type(text)))]
_TABLE = re.compile(r"^[A-Za-z_]\w*\.[A-Za-z_]\w*$")


def _table_name(value: str) -> str:
    if not _TABLE.match(value):
        raise ValueError(f"{value!r} is not a table name; write <zone>.<name>, e.g. clean.orders")
    return value


TableName = Annotated[str, AfterValidator(_table_name)]


class _Rows(Spec):
    """A spec with `rows:`, which may be written as the bare list of rows."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"rows": value} if isinstance(value, list) else value


class InputTable(_Rows):
    """Rows of one table the model reads; a column a row leaves out is null."""

    rows: list[Row] = Field(default_factory=list)
    columns: dict[Identifier, SqlType] = Field(
        default_factory=dict,
        description="column → SQL type; overrides or adds to the columns the table has "
        "(a raw table's come from its contract, a model's from its SQL)",
    )


class Expected(_Rows):
    """The rows the model must return; only the columns they name are compared, and a column
    a row leaves out is expected to be null."""

    rows: list[Row]
    ordered: bool = Field(default=False, description="compare row order too")


class ModelTest(Spec):
    """One test: a model, the rows of the tables it reads, the rows it must return."""

    model: TableName = Field(description="the model under test, zone.name")
    description: str | None = None
    inputs: dict[TableName, InputTable] = Field(
        default_factory=dict,
        description="table → rows; a table the model reads not listed is empty",
    )
    expected: Expected
    vars: dict[Identifier, Any] = Field(
        default_factory=dict, description="values of the model's parameters (:start, :end)"
    )


@dataclass(frozen=True)
class ModelTestCase:
    """A named test, the file it came from and the line of every key path inside it."""

    name: str
    file: str
    spec: ModelTest
    lines: Mapping[Loc, int]
    raw: Any = None  # the test as written, to tell `table: [rows]` from `table: {rows: ...}`

    @property
    def line(self) -> int | None:
        return self.lines.get(())

    def where(self, *loc: str | int) -> Location:
        """The file, line and field of `loc` inside this test (e.g. "expected", "rows", 2)."""
        written = _as_written(self.raw, loc)
        line = next(
            (
                self.lines[written[:n]]
                for n in range(len(written), -1, -1)
                if written[:n] in self.lines
            ),
            None,
        )
        return Location(self.file, line, dotted((self.name, *written)))


def load_tests(path: Path, *, root: Path | None = None) -> list[ModelTestCase]:
    """Read one test file into its tests, in file order.

    Raises:
        SpecError: naming the file, line and field (`<test>.expected.rows[2]`) of the mistake.
    """
    shown = shown_path(path, root)
    data, lines = read_yaml(read_text(path, shown=shown), file=shown)
    if data is None:
        return []
    if not isinstance(data, dict):
        raise SpecError(
            "a test file maps test names to tests, e.g. `orders_dedupe: {model: clean.orders, …}`",
            where=Location(shown, 1),
        )
    return [_case(str(name), body, lines, shown) for name, body in data.items()]


def discover_tests(root: Path) -> list[Path]:
    """The test files of the project in `root`: `tests/**/*.yml` (and `.yaml`), sorted."""
    folder = root / TESTS_FOLDER
    return sorted([*folder.rglob("*.yml"), *folder.rglob("*.yaml")])


def _case(name: str, body: Any, lines: Mapping[Loc, int], file: str) -> ModelTestCase:
    own = {loc[1:]: line for loc, line in lines.items() if loc[:1] == (name,)}
    if not isinstance(body, dict):
        raise SpecError(
            "a test is a mapping with model, inputs, expected and vars",
            where=Location(file, own.get(()), name),
        )
    try:
        spec = ModelTest.model_validate(body)
    except ValidationError as err:
        lines_of_spec = {**own, **_rows_lines(body, own)}
        inner = spec_error(
            ModelTest, err, body, lines_of_spec, file=file, line_offset=own.get((), 1) - 1
        )
        field = f"{name}.{inner.where.field}" if inner.where and inner.where.field else name
        line = inner.where.line if inner.where else own.get(())
        raise SpecError(inner.message, where=Location(file, line, field), hint=inner.hint) from None
    return ModelTestCase(name, file, spec, own, body)


def _rows_lines(raw: dict[str, Any], lines: Mapping[Loc, int]) -> dict[Loc, int]:
    """Lines of `table: [rows]` also under the key path of `table: {rows: [...]}`."""
    out: dict[Loc, int] = {}
    for loc, line in lines.items():
        size = {"expected": 1, "inputs": 2}.get(str(loc[0])) if loc else None
        if size and len(loc) > size and isinstance(_at(raw, loc[:size]), list):
            out[(*loc[:size], "rows", *loc[size:])] = line
    return out


def _at(raw: Any, loc: Loc) -> Any:
    for part in loc:
        try:
            raw = raw[part]
        except (KeyError, IndexError, TypeError):
            return None
    return raw


def _as_written(raw: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Drop the `rows` key from `loc` where the file used the `table: [rows]` shorthand."""
    out: list[str | int] = []
    node = raw
    for part in loc:
        if part == "rows" and isinstance(node, list):
            continue
        out.append(part)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return tuple(out)
