"""`headwater test` as a user types it: a line per test, a diff per failure, exit codes."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from headwater.cli.main import app

runner = CliRunner()


def hw(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_the_example_tests_pass_without_touching_the_warehouse(shop: Path) -> None:
    code, out = hw("test", "-p", str(shop))

    assert code == 0, out
    lines = [line for line in out.splitlines() if line.startswith("PASS")]
    assert len(lines) >= 5
    assert re.search(
        r"^PASS\s+clean_orders_keep_the_latest_update\s+clean\.orders\s+[\d.]+ ms$",
        out,
        re.MULTILINE,
    ), out
    assert re.search(r"^\d+ tests in [\d.,]+ ms .*: \d+ passed$", out, re.MULTILINE), out
    assert not (shop / ".headwater").exists()


def test_a_failing_test_prints_a_diff_and_exits_1(shop: Path) -> None:
    path = shop / "tests/revenue.yml"
    text = path.read_text()
    path.write_text(text.replace("orders: 3, revenue: 35.50", "orders: 3, revenue: 135.50"))

    code, out = hw("test", "-p", str(shop), "-k", "customer_orders")

    assert code == 1, out
    assert "FAIL  customer_orders_revenue_excludes_cancelled_and_refunded" in out
    assert "tests/revenue.yml:3: ~ changed (1): expected → returned" in out
    row = next(line for line in out.splitlines() if "135.5 → 35.50" in line)
    assert re.search(r"~\s+line 17\s+7\s+GB\s+3\s+135\.5 → 35\.50", row), row
    assert "1 test in" in out and "0 passed, 1 failed" in out


def test_missing_and_unexpected_rows_are_marked(shop: Path) -> None:
    (shop / "tests/extra.yml").write_text(
        "extra:\n"
        "  model: clean.orders\n"
        "  inputs: {raw.orders: [{order_id: 1, status: paid}, {order_id: 2, status: paid}]}\n"
        "  expected:\n"
        "    - {order_id: 1}\n"
        "    - {order_id: 3}\n"
        "    - {order_id: 4}\n"
    )
    code, out = hw("test", "-p", str(shop), "-k", "extra")

    assert code == 1
    assert "- missing (2): expected, not returned; + unexpected (1): returned, not expected" in out
    assert re.search(r"^\s+-\s+line 6\s+3\s*$", out, re.MULTILINE), out
    assert re.search(r"^\s+-\s+line 7\s+4\s*$", out, re.MULTILINE), out
    assert re.search(r"^\s+\+\s+row \d\s+2\s*$", out, re.MULTILINE), out


def test_k_selects_tests_by_name_or_model(shop: Path) -> None:
    code, out = hw("test", "-p", str(shop), "-k", "marts.events_daily")
    assert code == 0, out
    assert out.count("PASS") == 1 and "events_daily_count_per_day_and_type" in out

    code, out = hw("test", "-p", str(shop), "-k", "nothing_like_this")
    assert code == 2
    assert "no test name or model contains 'nothing_like_this'" in out


def test_a_malformed_test_file_gives_one_line_and_exit_3(shop: Path) -> None:
    (shop / "tests/broken.yml").write_text(
        "broken:\n  model: clean.orders\n  inputs:\n    raw.order: []\n  expected: []\n"
    )
    code, out = hw("test", "-p", str(shop))

    assert code == 3
    assert out.strip() == (
        "error: tests/broken.yml:4: broken.inputs.raw.order: clean.orders does not read "
        "raw.order; did you mean 'raw.orders'?"
    )


def test_a_value_that_does_not_cast_is_an_error_for_that_test_only(shop: Path) -> None:
    (shop / "tests/cast.yml").write_text(
        "cast:\n  model: clean.orders\n  inputs:\n    raw.orders: [{order_id: one}]\n"
        "  expected: []\n"
    )
    code, out = hw("test", "-p", str(shop))

    assert code == 3
    assert re.search(r"^ERROR cast\s+clean\.orders", out, re.MULTILINE), out
    assert (
        "tests/cast.yml:4: cast.inputs.raw.orders[0].order_id: 'one' does not cast to BIGINT" in out
    )
    assert "PASS  clean_orders_keep_the_latest_update" in out
    assert "1 with errors" in out


def test_a_project_without_tests(shop: Path) -> None:
    for path in (shop / "tests").iterdir():
        path.unlink()
    code, out = hw("test", "-p", str(shop))
    assert code == 0
    assert "no model tests" in out


def test_duplicate_test_names_across_files(shop: Path) -> None:
    (shop / "tests/again.yml").write_text(
        "clean_orders_keep_the_latest_update: {model: clean.orders, expected: []}\n"
    )
    code, out = hw("test", "-p", str(shop))
    assert code == 3
    assert "tests/orders.yml" in out and "tests/again.yml:1" in out
