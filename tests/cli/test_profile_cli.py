"""`headwater profile TABLE`: the newest profile with sparklines of its history; JSON for
machines; a clear error for a table the project does not have."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from headwater.cli.main import app
from headwater.cli.profile import spark
from tests.badinput.harness import assert_clean_error, hw


def test_a_sparkline_scales_between_the_smallest_and_largest_value() -> None:
    assert spark([1, 2, 3, 8]) == "▁▂▃█"
    assert spark([5, 5, None, 5]) == "▅▅ ▅"
    assert spark([]) == ""


def test_profile_shows_the_newest_profile_and_hides_pii_values(ran_shop: Path) -> None:
    out = hw(ran_shop, "profile", "clean.customers", env={"COLUMNS": "200"})
    assert out.code == 0, out
    assert "2,000 rows" in out.output and "customer_id" in out.output
    email_line = next(line for line in out.output.splitlines() if " email " in line)
    assert "(PII)" in email_line and "@" not in email_line


def test_profile_json_holds_the_history_oldest_first(ran_shop: Path, tmp_path: Path) -> None:
    root = tmp_path / "shop"
    shutil.copytree(ran_shop, root)
    again = CliRunner().invoke(app, ["run", "-p", str(root), "--full-refresh"])
    assert again.exit_code == 0, again.output
    out = hw(root, "profile", "clean.orders", "--format", "json")
    assert out.code == 0, out
    body = json.loads(out.output)
    assert body["table"] == "clean.orders"
    assert len(body["profiles"]) == 2
    first, second = body["profiles"]
    assert first["profiled_at"] <= second["profiled_at"]
    assert first["rows"] == second["rows"] > 0
    assert {"nulls", "distinct"} <= set(second["columns"]["order_id"])
    shown = hw(root, "profile", "clean.orders", env={"COLUMNS": "200"})
    assert "rows ▅▅" in shown.output  # two profiles, the same row count


def test_a_table_the_project_lacks_is_a_clear_error(ran_shop: Path) -> None:
    assert_clean_error(hw(ran_shop, "profile", "raw.ordrs"), "raw.ordrs", "raw.orders")
