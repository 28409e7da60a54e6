"""Model tests (`tests/*.yml`): rows in, rows out, on an in-memory DuckDB; diffs and errors."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

import headwater.cli
from headwater.contracts.tests_spec import ModelTestCase, load_tests
from headwater.errors import SpecError
from headwater.models.testing import ModelTester, ModelTestResult
from headwater.project import Project, load_project

EXAMPLE = Path(headwater.cli.__file__).parent / "example"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("model_tests") / "shop"
    shutil.copytree(EXAMPLE, root)
    (root / "models/clean/exploding.sql").write_text(
        "select order_id, error('boom: ' || order_id) as nope from raw.orders\n"
    )
    (root / "models/marts/biggest_orders.sql").write_text(
        "select order_id, amount from clean.orders order by amount desc\n"
    )
    return load_project(root)


@pytest.fixture(scope="module")
def tester(project: Project) -> Iterator[ModelTester]:
    tester = ModelTester(project.models, project.contracts)
    yield tester
    tester.close()


def cases(project: Project, name: str, text: str) -> list[ModelTestCase]:
    path = project.root / "tests" / f"{name}.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_tests(path, root=project.root)


def run(project: Project, tester: ModelTester, text: str) -> ModelTestResult:
    (case,) = cases(project, "case", text)
    return tester.run(case)


def test_the_example_project_tests_pass(project: Project, tester: ModelTester) -> None:
    files = [project.root / "tests" / p.name for p in (EXAMPLE / "tests").glob("*.yml")]
    examples = [c for f in files for c in load_tests(f, root=project.root)]
    assert len(examples) >= 5
    results = [tester.run(case) for case in examples]
    assert [r.case.name for r in results if not r.passed] == []
    assert all(r.seconds > 0 for r in results)  # each reports its time (speed: not asserted)


def test_a_wrong_expectation_shows_changed_missing_and_unexpected_rows(
    project: Project, tester: ModelTester
) -> None:
    result = run(
        project,
        tester,
        """\
        revenue:
          model: marts.customer_orders
          inputs:
            clean.customers: [{customer_id: 7, country: GB}, {customer_id: 8, country: DE}]
            clean.orders:
              - {order_id: 1, customer_id: 7, status: paid, amount: 25.00}
              - {order_id: 2, customer_id: 7, status: cancelled, amount: 99.99}
          expected:
            - {customer_id: 7, orders: 2, revenue: 124.99}
            - {customer_id: 9, orders: 0, revenue: 0}
        """,
    )

    assert not result.passed and result.error is None
    diff = result.diff
    assert diff is not None and diff.columns == ("customer_id", "orders", "revenue")
    (change,) = diff.changed  # paired by the model's grain, customer_id
    assert change.columns == ("revenue",)
    assert change.expected.values == {"customer_id": 7, "orders": 2, "revenue": 124.99}
    assert change.expected.line == 9
    assert change.actual.values["revenue"] == Decimal("25.00")
    assert [row.values["customer_id"] for row in diff.missing] == [9]
    assert diff.missing[0].line == 10
    assert [row.values for row in diff.unexpected] == [
        {"customer_id": 8, "orders": 0, "revenue": Decimal("0.00")}
    ]


def test_values_compare_across_types(project: Project, tester: ModelTester) -> None:
    result = run(
        project,
        tester,
        """\
        types:
          model: clean.orders
          inputs:
            raw.orders:
              - {order_id: 1, customer_id: 7, status: paid, amount: "19.99",
                 ordered_at: 2026-03-01, updated_at: 2026-03-01T10:00:00Z}
          expected:
            - {order_id: 1.0, customer_id: "7", amount: 19.99, ordered_at: 2026-03-01 00:00:00,
               updated_at: 2026-03-01 10:00:00, status: paid}
        """,
    )
    assert result.passed, result.diff


def test_a_fraction_against_an_integer_fails_rather_than_rounds(
    project: Project, tester: ModelTester
) -> None:
    result = run(
        project,
        tester,
        """\
        fraction:
          model: clean.orders
          inputs: {raw.orders: [{order_id: 2, status: paid}]}
          expected: [{order_id: 1.6}]
        """,
    )
    assert not result.passed


def test_order_counts_only_when_asked(project: Project, tester: ModelTester) -> None:
    def order(expected: str, *, ordered: bool) -> ModelTestResult:
        return run(
            project,
            tester,
            f"""\
            order:
              model: marts.biggest_orders
              inputs:
                clean.orders: [{{order_id: 1, amount: 5}}, {{order_id: 2, amount: 7}}]
              expected: {{ordered: {str(ordered).lower()}, rows: {expected}}}
            """,
        )

    ascending = "[{order_id: 1, amount: 5}, {order_id: 2, amount: 7}]"
    descending = "[{order_id: 2, amount: 7}, {order_id: 1, amount: 5}]"
    assert order(ascending, ordered=False).passed
    assert order(descending, ordered=True).passed
    result = order(ascending, ordered=True)
    assert not result.passed and result.diff is not None
    # paired by position: row 1 expected order 1 and got order 2, and the other way round
    assert [(c.expected.index, c.actual.index, c.columns) for c in result.diff.changed] == [
        (0, 0, ("order_id", "amount")),
        (1, 1, ("order_id", "amount")),
    ]


def test_tables_left_out_are_empty_and_columns_left_out_are_null(
    project: Project, tester: ModelTester
) -> None:
    result = run(
        project,
        tester,
        """\
        no_orders:
          model: marts.customer_orders
          inputs: {clean.customers: [{customer_id: 7}]}
          expected: [{customer_id: 7, country: null, orders: 0, revenue: 0, first_order_at: null}]
        """,
    )
    assert result.passed, result.diff


def test_vars_bind_the_interval_and_default_to_all_time(
    project: Project, tester: ModelTester
) -> None:
    def daily(vars_: str, expected: str) -> ModelTestResult:
        return run(
            project,
            tester,
            f"""\
            window:
              model: marts.events_daily
              inputs:
                clean.events:
                  - {{event_id: a, event_type: page_view, occurred_at: 2026-03-01T10:00:00Z}}
                  - {{event_id: b, event_type: page_view, occurred_at: 2026-03-02T10:00:00Z}}
                  - {{event_id: c, event_type: page_view, occurred_at: 2026-03-03T10:00:00Z}}
              vars: {vars_}
              expected: {expected}
            """,
        )

    second = "[{day: 2026-03-02, event_count: 1}]"
    assert daily("{start: 2026-03-02, end: 2026-03-03}", second).passed
    every = "[{day: 2026-03-01}, {day: 2026-03-02}, {day: 2026-03-03}]"
    assert daily("{}", every).passed
    result = daily("{start: 2026-03-02T10:00:01Z, end: 2026-03-03}", second)
    assert result.diff is not None
    assert [r.values for r in result.diff.missing] == [{"day": date(2026, 3, 2), "event_count": 1}]


def test_input_columns_come_from_the_upstream_sql_or_columns(
    project: Project, tester: ModelTester
) -> None:
    assert [name for name, _ in tester.schema("clean.orders")][:3] == [
        "order_id",
        "customer_id",
        "status",
    ]
    assert str(tester.schema("marts.events_daily")[0][1].sql("duckdb")) == "TIMESTAMPTZ"
    result = run(
        project,
        tester,
        """\
        extra_column:
          model: clean.orders
          inputs:
            raw.orders:
              rows: [{order_id: 1, status: paid, coupon: SPRING}]
              columns: {order_id: varchar, coupon: varchar}
          expected: [{order_id: "1"}]
        """,
    )
    assert result.passed, result.diff


def test_a_failing_model_is_a_failed_result(project: Project, tester: ModelTester) -> None:
    result = run(
        project,
        tester,
        """\
        boom:
          model: clean.exploding
          inputs: {raw.orders: [{order_id: 1}]}
          expected: []
        """,
    )
    assert not result.passed
    assert result.error is not None and result.error.startswith("models/clean/exploding.sql: ")
    assert "boom: 1" in result.error


def test_a_test_runs_in_milliseconds(project: Project, tester: ModelTester) -> None:
    text = """\
        quick:
          model: clean.orders
          inputs: {raw.orders: [{order_id: 1, status: paid, updated_at: 2026-03-01}]}
          expected: [{order_id: 1}]
        """
    run(project, tester, text)
    assert min(run(project, tester, text).seconds for _ in range(3)) < 0.25


MALFORMED = {
    "invalid_yaml": ("t:\n  model: clean.orders\n  expected: [\n", "tests/bad.yml:4: invalid YAML"),
    "not_a_mapping": ("- t\n", "tests/bad.yml:1: a test file maps test names to tests"),
    "test_not_a_mapping": (
        "a: {model: clean.orders, expected: []}\nb: [1]\n",
        "tests/bad.yml:2: b: a test is a mapping with model, inputs, expected and vars",
    ),
    "misspelt_key": (
        "t:\n  model: clean.orders\n  expect: []\n",
        "tests/bad.yml:3: t: unknown field 'expect'; did you mean 'expected'?",
    ),
    "missing_expected": (
        "t:\n  model: clean.orders\n",
        "tests/bad.yml:1: t.expected: required field is missing; add `expected:` here",
    ),
    "misspelt_expected_key": (
        "t:\n  model: clean.orders\n  expected:\n    rows: []\n    orderd: true\n",
        "tests/bad.yml:5: t.expected: unknown field 'orderd'; did you mean 'ordered'?",
    ),
    "row_not_a_mapping": (
        "t:\n  model: clean.orders\n  inputs:\n    raw.orders:\n      - {order_id: 1}\n      - 2\n"
        "  expected: []\n",
        "tests/bad.yml:6: t.inputs.raw.orders.rows[1]: input should be a valid dictionary",
    ),
    "bad_column_type": (
        "t:\n  model: clean.orders\n  inputs:\n    raw.orders:\n      columns: {coupon: txt}\n"
        "  expected: []\n",
        "tests/bad.yml:5: t.inputs.raw.orders.columns.coupon: 'txt' is not a SQL type",
    ),
    "table_without_zone": (
        "t: {model: orders, expected: []}\n",
        "tests/bad.yml:1: t.model: 'orders' is not a table name; write <zone>.<name>",
    ),
    "unknown_model": (
        "t:\n  model: clean.order\n  expected: []\n",
        "tests/bad.yml:2: t.model: unknown model 'clean.order'; did you mean 'clean.orders'?",
    ),
    "unknown_input_table": (
        "t:\n  model: clean.orders\n  inputs:\n    raw.order: []\n  expected: []\n",
        "tests/bad.yml:4: t.inputs.raw.order: clean.orders does not read raw.order; "
        "did you mean 'raw.orders'?",
    ),
    "unknown_input_column": (
        "t:\n  model: clean.orders\n  inputs:\n    raw.orders:\n      - {order_id: 1,\n"
        "         amout: 3}\n  expected: []\n",
        "tests/bad.yml:6: t.inputs.raw.orders[0].amout: raw.orders has no column 'amout'; "
        "did you mean 'amount'?",
    ),
    "unknown_expected_column": (
        "t:\n  model: marts.customer_orders\n  expected:\n    - {customer_id: 1}\n"
        "    - {customer_id: 2, revenu: 3}\n",
        "tests/bad.yml:5: t.expected[1].revenu: marts.customer_orders returns no column "
        "'revenu'; did you mean 'revenue'?",
    ),
    "unknown_var": (
        "t:\n  model: marts.events_daily\n  vars:\n    strat: 2026-01-01\n  expected: []\n",
        "tests/bad.yml:4: t.vars.strat: marts.events_daily has no parameter :strat; "
        "did you mean 'start'?",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_test_file_gives_one_line(
    project: Project, tester: ModelTester, case: str
) -> None:
    text, expected = MALFORMED[case]
    path = project.root / "tests" / "bad.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        for loaded in load_tests(path, root=project.root):
            tester.check(loaded)
    line = caught.value.render()
    assert "\n" not in line
    assert line.startswith(expected), line


@pytest.mark.parametrize(
    ("rows", "expected", "message"),
    [
        (
            "[{order_id: 1}, {order_id: 2, amount: '12,50'}]",
            "[]",
            "tests/case.yml:4: t.inputs.raw.orders[1].amount: '12,50' does not cast to "
            "DECIMAL(12, 2), the type of raw.orders.amount",
        ),
        (
            "[{order_id: 1}]",
            "[{order_id: 1}, {order_id: abc}]",
            "tests/case.yml:5: t.expected[1].order_id: 'abc' is not an integer, which "
            "clean.orders returns for order_id",
        ),
    ],
)
def test_a_value_that_does_not_cast_names_its_row(
    project: Project, tester: ModelTester, rows: str, expected: str, message: str
) -> None:
    (case,) = cases(
        project,
        "case",
        f"t:\n  model: clean.orders\n  inputs:\n    raw.orders: {rows}\n  expected: {expected}\n",
    )
    with pytest.raises(SpecError) as caught:
        tester.run(case)
    assert caught.value.render() == message


def test_raw_tables_carry_the_landing_columns(project: Project, tester: ModelTester) -> None:
    result = run(
        project,
        tester,
        """\
        latest_export:
          model: clean.customers
          inputs:
            raw.customers:
              - {customer_id: 1, email: Old@X.com, _hw_ingested_at: 2026-03-01T00:00:00Z}
              - {customer_id: 1, email: New@X.com, _hw_ingested_at: 2026-03-02T00:00:00Z}
          expected: [{customer_id: 1, email: new@x.com}]
        """,
    )
    assert result.passed, result.diff
    assert dict(tester.schema("raw.customers"))["_hw_ingested_at"].sql("duckdb") == "TIMESTAMPTZ"
