"""Run model tests: input rows as tables in an in-memory DuckDB, the model over them, a row diff.

Columns of an input table are never guessed from its rows: a raw table has its contract's
columns plus the `_hw_*` columns landing adds; a model has the columns its own SQL returns over
empty inputs, found recursively down to the contracts. A test's `columns:` overrides or adds
types. Values are cast to those types by DuckDB, so `2026-01-01` fills a TIMESTAMP column.
A model's `:start` / `:end` take the test's `vars`, else the widest range (all rows).

Only the columns the expected rows name are compared, as multisets (and by position when
`ordered: true`). SQL first brings both sides to one form per column, chosen from the type the
model returns: integers exactly, other numbers as doubles rounded to 9 decimals, dates and
timestamps as TIMESTAMPTZ (UTC), anything else as text; so `2026-01-01` equals a midnight
TIMESTAMPTZ, `1` equals `1.0`, and `19.99` equals DECIMAL `19.99`. A row of the diff that
shares its key (the model's grain, or its position) with a row on the other side is shown as
one changed row.
"""

from __future__ import annotations

import contextlib
import difflib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pyarrow as pa
from sqlglot import exp

import headwater.engine.dialect as authored
from headwater.contracts import Contract
from headwater.contracts.tests_spec import InputTable, ModelTestCase
from headwater.engine import Engine, scratch
from headwater.errors import EngineError, ModelError, SpecError
from headwater.models.parse import Model
from headwater.models.renderer import render
from headwater.zones.layout import QUARANTINE, RAW_METADATA

Schema = tuple[tuple[str, exp.DataType], ...]
Key = tuple[Any, ...]

ALL_TIME = {"start": "-infinity", "end": "infinity"}  # interval bounds a test does not give
SCRATCH = "_hw_schemas"  # empty tables, to learn the columns a model returns
WORK = "_hw_test"  # the input tables of the test running now
# Arrow tables registered under these names stay until the next test's replace them
STAGE, ACTUAL = "_hw_stage", "_hw_actual"  # rows as written; rows the model returned
RESULT = "_hw_result"  # the model's result, materialized (so a failure is an EngineError)
ROW = "_hw_row"  # a row's position among the rows given, or in the model's result
DECIMALS = 9
_T = exp.DataType.Type


@dataclass(frozen=True)
class DiffRow:
    """One row of a diff: its compared values, its position, and its line if it was expected."""

    values: dict[str, Any]
    index: int
    line: int | None = None


@dataclass(frozen=True)
class Change:
    """An expected row and the returned row with its key (grain or position), side by side."""

    expected: DiffRow
    actual: DiffRow
    columns: tuple[str, ...]  # the values that differ


@dataclass(frozen=True)
class Diff:
    """What separates the rows returned from the rows expected, on the compared columns."""

    columns: tuple[str, ...]
    missing: tuple[DiffRow, ...] = ()  # expected, not returned
    unexpected: tuple[DiffRow, ...] = ()  # returned, not expected
    changed: tuple[Change, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.missing or self.unexpected or self.changed)


@dataclass(frozen=True)
class ModelTestResult:
    """The outcome of one test; `error` is set when the model itself failed to run."""

    case: ModelTestCase
    seconds: float
    rows: int = 0
    diff: Diff | None = None
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and self.diff is not None and self.diff.empty


class ModelTester:
    """Runs tests of one project's models on one in-memory DuckDB, one test after another.

    Example:
        >>> tester = ModelTester(project.models, project.contracts)   # doctest: +SKIP
        >>> tester.run(case).passed                                   # doctest: +SKIP
        True
    """

    def __init__(
        self,
        models: Mapping[str, Model],
        contracts: Mapping[str, Contract],
        *,
        engine: Engine | None = None,
    ):
        self.models = dict(models)
        self.contracts = {c.table: c for c in contracts.values()}
        self.engine = engine or scratch(threads=1)  # a few rows: one thread is quicker
        self._schemas: dict[str, Schema] = {}
        self._empty: dict[str, str] = {}
        self._rendered: dict[tuple[str, ...], str] = {}  # a model's SQL over given input tables
        self._result_sql = self._sql(_select([exp.Star()], f"{WORK}.{RESULT}"))
        for schema in (SCRATCH, WORK):
            self.engine.execute(exp.Create(this=exp.to_table(schema), kind="SCHEMA", exists=True))

    def _sql(self, statement: exp.Expr) -> str:
        """The engine's SQL of a tree built for one use (not copied first)."""
        return self.engine.render(statement, copy=False)

    def close(self) -> None:
        self.engine.close()

    def check(self, case: ModelTestCase) -> Model:
        """Check what can be checked before running: model, input tables and columns, vars,
        expected columns. (A model DuckDB cannot run is left for `run` to report.)

        Raises:
            SpecError: located at the test's line and field, with a did-you-mean.
        """
        model = self._model(case)
        for table, given in case.spec.inputs.items():
            if table not in model.depends_on:
                raise SpecError(
                    f"{model.name} does not read {table}",
                    where=case.where("inputs", table),
                    hint=_suggest(table, model.depends_on, what="it reads"),
                )
            try:
                names = [name for name, _ in self._input_schema(table, given)]
            except EngineError:
                continue
            for i, row in enumerate(given.rows):
                for column in row:
                    if column not in names:
                        raise SpecError(
                            f"{table} has no column {column!r}",
                            where=case.where("inputs", table, "rows", i, column),
                            hint=_did_you_mean(column, names)
                            or "declare it with its type under `columns:`",
                        )
        self._check_vars(case, model)
        if not any(given.columns for given in case.spec.inputs.values()):
            # declared columns may change what `select *` returns: then `run` checks
            with contextlib.suppress(EngineError):
                self._check_expected(case, model, [name for name, _ in self.schema(model.name)])
        return model

    def run(self, case: ModelTestCase) -> ModelTestResult:
        """Run one test. A mistake in the test raises SpecError; a failing model is a result."""
        started = time.perf_counter()
        model = self.check(case)
        tables = {table: self._create_input(case, table) for table in model.depends_on}
        params = {p: case.spec.vars.get(p, ALL_TIME.get(p)) for p in _parameters(model)}
        key = (model.name, *tables.values())
        if key not in self._rendered:
            result = exp.to_table(f"{WORK}.{RESULT}")
            query = render(model.query, tables)
            self._rendered[key] = self._sql(
                exp.Create(this=result, kind="TABLE", replace=True, expression=query)
            )
        try:
            # materialized, not read lazily: a failure then surfaces as an EngineError here
            self.engine.execute(self._rendered[key], params)
            actual = self.engine.read(self._result_sql)
        except EngineError as err:
            seconds = time.perf_counter() - started
            return ModelTestResult(case, seconds, error=f"{model.path}: {err.message}")
        diff = self._compare(case, model, actual)
        return ModelTestResult(case, time.perf_counter() - started, actual.num_rows, diff)

    def schema(self, table: str) -> Schema:
        """The columns of `table` (raw, quarantine or model) and their types, found once."""
        if table not in self._schemas:
            self._schemas[table] = self._find_schema(table)
        return self._schemas[table]

    # --- the test's inputs ------------------------------------------------------------------

    def _model(self, case: ModelTestCase) -> Model:
        name = case.spec.model
        if name in self.models:
            return self.models[name]
        hint = _did_you_mean(name, self.models)
        if name in self.contracts:
            hint = f"{name} is a raw table; tests are for models"
        raise SpecError(
            f"unknown model {name!r}",
            where=case.where("model"),
            hint=hint or "a model is models/<zone>/<name>.sql, named <zone>.<name>",
        )

    def _check_vars(self, case: ModelTestCase, model: Model) -> None:
        wanted = _parameters(model)
        for name in case.spec.vars:
            if name not in wanted:
                raise SpecError(
                    f"{model.name} has no parameter :{name}",
                    where=case.where("vars", name),
                    hint=_suggest(name, wanted, what="it binds") if wanted else "it binds none",
                )
        for name in wanted:
            if name not in case.spec.vars and name not in ALL_TIME:
                raise SpecError(
                    f"{model.name} binds :{name}; give it a value under `vars:`",
                    where=case.where("vars") if case.spec.vars else case.where(),
                )

    def _check_expected(self, case: ModelTestCase, model: Model, returned: list[str]) -> None:
        for i, row in enumerate(case.spec.expected.rows):
            for column in row:
                if column not in returned:
                    raise SpecError(
                        f"{model.name} returns no column {column!r}",
                        where=case.where("expected", "rows", i, column),
                        hint=_suggest(column, returned, what="it returns"),
                    )

    def _find_schema(self, table: str) -> Schema:
        if table in self.contracts:
            declared = {c.name: c.type for c in self.contracts[table].columns}
            return _typed({**declared, **RAW_METADATA})
        if table.endswith("__quarantine") and table.removesuffix("__quarantine") in self.contracts:
            return _typed(QUARANTINE)
        model = self.models.get(table)
        if model is None:
            raise ModelError(f"unknown table {table!r}", hint="it is neither a model nor raw")
        tables = {dep: self._empty_table(dep) for dep in model.depends_on}
        query = render(model.query, tables)
        params = {p: ALL_TIME.get(p) for p in _parameters(model)}
        return tuple(self._describe(exp.Describe(this=query), params).items())

    def _empty_table(self, table: str) -> str:
        """An empty table with the columns of `table`, made once."""
        if table not in self._empty:
            target = f"{SCRATCH}.{_physical(table)}"
            limit = exp.Limit(expression=exp.Literal.number(0))
            empty = exp.Select(expressions=_casts(self.schema(table)), limit=limit)
            self.engine.execute(
                self._sql(exp.Create(this=exp.to_table(target), kind="TABLE", expression=empty))
            )
            self._empty[table] = target
        return self._empty[table]

    def _describe(
        self, statement: exp.Describe, params: Mapping[str, Any]
    ) -> dict[str, exp.DataType]:
        described = self.engine.read(self._sql(statement), params)
        names = described.column("column_name").to_pylist()
        kinds = described.column("column_type").to_pylist()
        return {name: _data_type(kind) for name, kind in zip(names, kinds, strict=True)}

    def _input_schema(self, table: str, given: InputTable) -> Schema:
        declared = {name: _data_type(kind) for name, kind in given.columns.items()}
        base = [(name, declared.pop(name, kind)) for name, kind in self.schema(table)]
        return (*base, *declared.items())

    def _create_input(self, case: ModelTestCase, table: str) -> str:
        given = case.spec.inputs.get(table) or InputTable()
        if not (given.rows or given.columns):
            return self._empty_table(table)
        schema = self._input_schema(table, given)
        target = f"{WORK}.{_physical(table)}"
        stage = _stage(given.rows, [name for name, _ in schema])
        self.engine.register(STAGE, stage)
        select = _select(_casts(schema, stage.column_names), STAGE)
        create = exp.Create(
            this=exp.to_table(target), kind="TABLE", replace=True, expression=select
        )
        try:
            self.engine.execute(self._sql(create))
        except EngineError:
            bad = self._bad_value(stage.column_names, schema)
            if bad is None:
                raise
            index, name, value, kind = bad
            raise SpecError(
                f"{value!r} does not cast to {authored.shown(kind)}, the type of {table}.{name}",
                where=case.where("inputs", table, "rows", index, name),
            ) from None
        return target

    def _bad_value(
        self, staged: Sequence[str], types: Iterable[tuple[str, exp.DataType]]
    ) -> tuple[int, str, Any, exp.DataType] | None:
        """The first staged value that does not cast to its column's type (after a failure)."""
        for name, kind in types:
            if name not in staged:
                continue
            given = exp.Not(this=exp.Is(this=_col(name), expression=exp.null()))
            fails = exp.Is(this=exp.TryCast(this=_col(name), to=kind.copy()), expression=exp.null())
            found = self.engine.rows(
                self._sql(
                    _select([exp.column(ROW), _col(name)], STAGE, where=exp.and_(given, fails))
                )
            )
            if found:
                return found[0][0], name, found[0][1], kind
        return None

    # --- comparison -------------------------------------------------------------------------

    def _compare(self, case: ModelTestCase, model: Model, actual: pa.Table) -> Diff:
        expected = case.spec.expected
        columns = tuple(dict.fromkeys(c for row in expected.rows for c in row))
        self._check_expected(case, model, actual.column_names)
        if not expected.rows:
            everything = tuple(actual.column_names)
            return Diff(everything, unexpected=tuple(_returned(actual, range(actual.num_rows))))
        returned = actual.select(list(columns))
        returned = returned.append_column(ROW, pa.array(range(actual.num_rows), pa.int64()))
        stage = _stage(expected.rows, columns)
        forms = {
            c: _form(returned.schema.field(c).type, stage.schema.field(c).type) for c in columns
        }
        self.engine.register(STAGE, stage)
        self.engine.register(ACTUAL, returned)
        try:
            found = self.engine.rows(self._sql(_keys_query(forms, ordered=expected.ordered)))
        except EngineError:
            bad = self._bad_value(stage.column_names, [(c, f.type) for c, f in forms.items()])
            if bad is None:
                raise
            index, name, value, _ = bad
            raise SpecError(
                f"{value!r} is not {forms[name].what}, which {model.name} returns for {name}",
                where=case.where("expected", "rows", index, name),
            ) from None
        return _diff(case, model, columns, found, returned)


@dataclass(frozen=True)
class _Form:
    """The type both sides of a compared column are cast to, and how to name it to a user."""

    type: exp.DataType
    what: str
    rounded: bool = False

    def of(self, column: str) -> exp.Expr:
        value: exp.Expr = exp.Cast(this=_col(column), to=self.type.copy())
        if self.rounded:
            value = exp.func("round", value, exp.Literal.number(DECIMALS))
        return value


def _form(returned: pa.DataType, given: pa.DataType) -> _Form:
    """How a column is compared, from the type the model returns and the type of the values
    written (1.5 against an integer column compares as numbers, so it fails rather than rounds).
    """
    if pa.types.is_integer(returned) and not _fractional(given):
        return _Form(exp.DataType(this=_T.INT128), "an integer")
    if pa.types.is_integer(returned) or _fractional(returned):
        return _Form(exp.DataType(this=_T.DOUBLE), "a number", rounded=True)
    if pa.types.is_timestamp(returned) or pa.types.is_date(returned):
        return _Form(exp.DataType(this=_T.TIMESTAMPTZ), "a date or timestamp")
    if pa.types.is_time(returned):
        return _Form(exp.DataType(this=_T.TIME), "a time")
    return _Form(exp.DataType(this=_T.VARCHAR), "text")


def _keys_query(forms: Mapping[str, _Form], *, ordered: bool) -> exp.Union:
    """Every expected row (side 0) and returned row (side 1) in its compared form:
    side, position, the compared values (and the position again when order counts)."""
    sides = []
    for side, source in enumerate((STAGE, ACTUAL)):
        values = [form.of(column) for column, form in forms.items()]
        position = [exp.column(ROW)] if ordered else []
        sides.append(
            _select([exp.Literal.number(side), exp.column(ROW), *values, *position], source)
        )
    return exp.Union(this=sides[0], expression=sides[1], distinct=False)


def _diff(
    case: ModelTestCase,
    model: Model,
    columns: tuple[str, ...],
    found: list[tuple[Any, ...]],
    returned: pa.Table,
) -> Diff:
    """Match equal rows as multisets (a handful of rows: cheaper here than a join in SQL);
    the rest are missing or unexpected, and those sharing a key are shown as changed."""
    groups: dict[Key, tuple[list[int], list[int]]] = {}
    for side, index, *key in found:
        groups.setdefault(tuple(key), ([], []))[side].append(index)
    missing: list[tuple[int, Key]] = []
    unexpected: list[tuple[int, Key]] = []
    for values, (given, got) in groups.items():
        missing += [(i, values) for i in given[len(got) :]]
        unexpected += [(i, values) for i in got[len(given) :]]
    missing.sort()
    unexpected.sort()
    pairs = _pairs(missing, unexpected, _pair_key(model, columns, case.spec.expected.ordered))

    def expected_row(n: int) -> DiffRow:
        index = missing[n][0]
        row = case.spec.expected.rows[index]
        line = case.where("expected", "rows", index).line
        return DiffRow({c: row.get(c) for c in columns}, index, line)

    def returned_row(n: int) -> DiffRow:
        return next(iter(_returned(returned, [unexpected[n][0]])))

    changed = [
        Change(
            expected_row(m),
            returned_row(u),
            tuple(c for i, c in enumerate(columns) if missing[m][1][i] != unexpected[u][1][i]),
        )
        for m, u in pairs
    ]
    paired_m, paired_u = {m for m, _ in pairs}, {u for _, u in pairs}
    return Diff(
        columns,
        missing=tuple(expected_row(n) for n in range(len(missing)) if n not in paired_m),
        unexpected=tuple(returned_row(n) for n in range(len(unexpected)) if n not in paired_u),
        changed=tuple(changed),
    )


def _pair_key(model: Model, columns: tuple[str, ...], ordered: bool) -> Callable[[Key], Any] | None:
    """What makes an expected and a returned row the same row: position, grain, or nothing."""
    if ordered:
        return lambda key: key[-1]
    grain = model.config.grain
    if grain and set(grain) <= set(columns):
        places = [columns.index(g) for g in grain]
        return lambda key: tuple(key[i] for i in places)
    return None


def _pairs(
    missing: list[tuple[int, Key]],
    unexpected: list[tuple[int, Key]],
    key: Callable[[Key], Any] | None,
) -> list[tuple[int, int]]:
    """(missing, unexpected) index pairs to show as one changed row each."""
    if key is None:
        return [(0, 0)] if len(missing) == len(unexpected) == 1 else []
    waiting: dict[Any, list[int]] = {}
    for n, (_, values) in enumerate(unexpected):
        waiting.setdefault(key(values), []).append(n)
    pairs = []
    for n, (_, values) in enumerate(missing):
        match = waiting.get(key(values))
        if match:
            pairs.append((n, match.pop(0)))
    return pairs


def _returned(table: pa.Table, indices: Iterable[int]) -> Iterable[DiffRow]:
    for index in indices:
        row = table.slice(index, 1).to_pylist()[0]
        row.pop(ROW, None)
        yield DiffRow(row, index)


def _stage(rows: Sequence[Mapping[str, Any]], names: Iterable[str]) -> pa.Table:
    """The rows as written, as Arrow: a column per name some row gives, and their positions."""
    present = [n for n in names if any(n in row for row in rows)]
    arrays = {n: _array([row.get(n) for row in rows]) for n in present}
    arrays[ROW] = pa.array(range(len(rows)), pa.int64())
    return pa.table(arrays)


def _array(values: list[Any]) -> pa.Array:
    """Arrow's own inference; values of mixed kinds go as text (DuckDB casts them after)."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([None if v is None else _text(v) for v in values], pa.string())


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return value.isoformat() if isinstance(value, date) else str(value)


def _fractional(kind: pa.DataType) -> bool:
    return bool(pa.types.is_floating(kind) or pa.types.is_decimal(kind))


def _casts(schema: Schema, staged: Iterable[str] = ()) -> list[exp.Expr]:
    given = set(staged)
    return [
        exp.alias_(
            exp.Cast(this=_col(name) if name in given else exp.null(), to=kind.copy()),
            name,
            quoted=True,
        )
        for name, kind in schema
    ]


def _select(
    expressions: list[exp.Expr], table: str, *, where: exp.Expr | None = None
) -> exp.Select:
    return exp.Select(
        expressions=expressions,
        from_=exp.From(this=exp.to_table(table)),
        where=exp.Where(this=where) if where is not None else None,
    )


def _parameters(model: Model) -> tuple[str, ...]:
    """The names of the model's bound parameters (`:start` → start)."""
    return tuple(dict.fromkeys(p.name for p in model.query.find_all(exp.Placeholder) if p.name))


def _physical(table: str) -> str:
    return table.replace(".", "__")


def _col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _data_type(text: str) -> exp.DataType:
    return authored.parse_type(text, udt=True)


def _typed(columns: Mapping[str, str]) -> Schema:
    return tuple((name, _data_type(kind)) for name, kind in columns.items())


def _did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _suggest(word: str, choices: Iterable[str], *, what: str) -> str:
    choices = list(choices)
    return _did_you_mean(word, choices) or f"{what}: {', '.join(choices)}"
