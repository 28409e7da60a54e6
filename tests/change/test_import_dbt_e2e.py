"""The acceptance test of `headwater import dbt`: the dbt_shop project is built by dbt-duckdb
and, converted, by headwater; every final (marts) table must hold the same rows.

Values are compared after normalising types (the two tools infer seed types differently:
INTEGER vs BIGINT): whole numbers exactly, other numbers to a relative 1e-9 (a double sum's
last bits depend on the order it adds in), dates and timestamps as ISO strings.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from typer.testing import CliRunner

from headwater.cli.main import app
from tests.change.dbtvenv import dbt_executable

pytestmark = [pytest.mark.slow, pytest.mark.dbt]
SHOP = Path(__file__).parent / "dbt_shop"
PROFILE = """\
dbt_shop:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: {path}
      threads: 2
"""
MARTS = [(f"main.{n}", f"marts.{n}") for n in ("daily_events", "customers", "orders")]
# the dbt constructs the import cannot convert in dbt_shop, each with its place
UNCONVERTED = [
    ("models/marts/schema.yml", 27, "test `not_constant`"),
    ("models/marts/schema.yml", 51, "exposure `weekly_sales_dashboard`"),
    ("seeds/properties.yml", 6, "descriptions of seed columns id"),
]


@pytest.fixture(scope="session")
def dbt() -> Path:
    return dbt_executable()


def dbt_build(dbt: Path, project: Path) -> dict[str, str]:
    """`dbt build` the project in place; the status of each test by its name."""
    (project / "profiles.yml").write_text(PROFILE.format(path=project / "dbt.duckdb"))
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_VERSION_CHECK": "false"}
    args = ["build", "--profiles-dir", str(project), "--project-dir", str(project)]
    args += ["--target-path", str(project / "target"), "--log-path", str(project / "logs")]
    done = subprocess.run(
        [str(dbt), *args], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-4000:]
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    return {r["unique_id"]: r["status"] for r in results if r["unique_id"].startswith("test.")}


def hw(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def both(dbt: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """dbt_shop built by dbt (in its copy) and by headwater (converted from that copy)."""
    root = tmp_path_factory.mktemp("dbt_e2e")
    project = root / "dbt_shop"
    shutil.copytree(SHOP, project)
    tests = dbt_build(dbt, project)
    out = root / "hw_shop"
    hw("import", "dbt", str(project), str(out))
    hw("run", "-p", str(out))
    return project, out, tests


def test_the_converted_project_builds_the_same_marts_as_dbt(
    both: tuple[Path, Path, dict[str, str]],
) -> None:
    project, out, _ = both
    marts = sorted(p.stem for p in (out / "models" / "marts").glob("*.sql"))
    assert marts == ["customers", "daily_events", "order_status_counts", "orders"]
    for name in marts:
        theirs = _rows(project / "dbt.duckdb", f"main.{name}")
        ours = _rows(out / ".headwater" / "warehouse.duckdb", f"marts.{name}")
        _assert_same(name, theirs, ours)


def test_rules_fail_where_dbt_tests_fail(both: tuple[Path, Path, dict[str, str]]) -> None:
    _, out, tests = both
    assert sorted(set(tests.values())) == ["pass", "warn"]
    warned = [t for t, status in tests.items() if status == "warn"]
    assert len(warned) == 1 and "stg_payments_payment_method" in warned[0]
    result = CliRunner().invoke(app, ["check", "-p", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    failed = [r for r in json.loads(result.output)["results"] if not r["passed"]]
    assert [(r["target"], r["rule"], r["severity"]) for r in failed] == [
        ("staging.stg_payments", "payment_method_accepted_values", "warn")
    ]


def test_the_report_lists_exactly_what_was_not_converted(
    both: tuple[Path, Path, dict[str, str]],
) -> None:
    project, out, _ = both
    report = (out / "IMPORT.md").read_text()
    listed = [line for line in report.splitlines() if line.startswith("- `")]
    assert [line.split(": ")[0] for line in listed] == [
        f"- `{file}:{line}` {construct}" for file, line, construct in UNCONVERTED
    ]
    converted = yaml.safe_load((out / "tests" / "dbt_unit_tests.yml").read_text())
    assert list(converted) == ["orders_split_payments_by_method"]
    assert converted["orders_split_payments_by_method"]["model"] == "marts.orders"
    again = project.parent / "again"
    hw("import", "dbt", str(project), str(again))
    assert _tree(again) == {k: v for k, v in _tree(out).items() if not k.startswith(".")}


def test_the_converted_unit_test_passes_as_dbts_did(
    both: tuple[Path, Path, dict[str, str]],
) -> None:
    """Its inputs are models over seeds that declare no columns: `headwater test` takes them
    from the seed files, as dbt takes them from the seeds it built."""
    _, out, _ = both
    output = hw("test", "-p", str(out))
    assert "orders_split_payments_by_method" in output and "1 passed" in output


def _rows(path: Path, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with duckdb.connect(str(path), read_only=True) as conn:
        cursor = conn.execute(f"select * from {table}")
        columns = [c[0] for c in cursor.description]
        rows = [tuple(map(_normal, row)) for row in cursor.fetchall()]
    return columns, sorted(rows, key=lambda r: [(v is None, str(v)) for v in r])


def _normal(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _assert_same(
    name: str, theirs: tuple[list[str], list[tuple[Any, ...]]], ours: tuple[list[str], list[Any]]
) -> None:
    assert ours[0] == theirs[0], f"{name}: columns differ"
    assert len(ours[1]) == len(theirs[1]), f"{name}: {len(ours[1])} rows, dbt has {len(theirs[1])}"
    for mine, their in zip(ours[1], theirs[1], strict=True):
        for a, b in zip(mine, their, strict=True):
            same = (
                math.isclose(a, b, rel_tol=1e-9)
                if isinstance(a, float) or isinstance(b, float)
                else a == b
            )
            assert same, f"{name}: {mine} != dbt's {their}"


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".headwater" not in p.relative_to(root).parts
    }


def test_an_incremental_run_after_new_and_changed_events_still_matches_dbt(
    dbt: Path, both: tuple[Path, Path, dict[str, str]]
) -> None:
    """stg_events is incremental in dbt (merge by event_id, newer updated_at) and
    incremental_by_key in headwater: after an event changes and two arrive, both tools'
    incremental runs agree (this test runs last: it changes the data)."""
    project, out, _ = both
    events = project / "data" / "events.csv"
    lines = events.read_text().splitlines()
    header, first = lines[0], lines[1].split(",")
    first[2], first[4] = "purchase", "2024-03-20 12:00:00"  # a later version of event 1
    added = [
        "e900,3,checkout,2024-03-21 09:00:00,2024-03-21 09:00:00",
        "e901,,page_view,2024-03-21 10:00:00,2024-03-21 10:05:00",
    ]
    events.write_text("\n".join([header, ",".join(first), *lines[2:], *added]) + "\n")
    dbt_build(dbt, project)
    hw("run", "-p", str(out))
    for theirs, ours in (("main.stg_events", "staging.stg_events"), *MARTS):
        _assert_same(
            ours,
            _rows(project / "dbt.duckdb", theirs),
            _rows(out / ".headwater" / "warehouse.duckdb", ours),
        )
    assert len(_rows(project / "dbt.duckdb", "main.stg_events")[1]) == len(lines) + 1
