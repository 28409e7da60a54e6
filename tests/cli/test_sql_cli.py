"""`headwater sql` as a user types it: read-only and without file access unless asked."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from headwater.cli.main import app

runner = CliRunner()


def hw(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def project(ran_shop: Path) -> Path:
    return ran_shop


def sql(project: Path, query: str, *flags: str) -> tuple[int, str]:
    return hw("sql", query, "-p", str(project), *flags)


def orders(project: Path) -> int:
    code, out = sql(project, "select count(*) as n from clean.orders")
    assert code == 0, out
    return int(out.split()[-1])


def test_reads_raw_views_and_models_by_default(project: Path) -> None:
    code, out = sql(project, "select count(*) as n from raw.orders")
    assert code == 0, out
    assert "23998" in out  # raw.* reads Parquet files in the project's lake
    assert orders(project) == 23_998


def test_a_query_without_rows_prints_its_columns(project: Path) -> None:
    code, out = sql(project, "select order_id, status from clean.orders where false")
    assert code == 0, out
    assert "order_id" in out and "status" in out and "Traceback" not in out


def test_a_missing_warehouse_says_run_first(shop: Path) -> None:
    code, out = sql(shop, "select 1")
    assert code == 1
    assert "does not exist yet; run `headwater run` first" in out
    assert not (shop / ".headwater").exists()  # the read did not create it


BAD = {
    "malformed": ("selec 1", "Parser Error: syntax error"),
    "delete": ("delete from clean.orders", "pass --write to modify the warehouse"),
    "drop view": ("drop view clean.orders", "pass --write to modify the warehouse"),
    "hidden write": ("select 1; delete from clean.orders", "pass --write to modify"),
    "temp table": ("create temp table t as select 1", "pass --write to modify the warehouse"),
    "import": ("import database '/tmp'", "pass --write to modify the warehouse"),
    "attach": ("attach '/tmp/other.duckdb' as other", "pass --allow-files"),
    "copy to": ("copy (select 1) to '{tmp}/out.csv'", "pass --allow-files"),
    "copy into lake": ("copy (select 1) to '{lake}/x.parquet'", "pass --allow-files"),
    "export": ("export database '{tmp}/dump'", "pass --allow-files"),
    "read_text": ("select * from read_text('/etc/passwd')", "file system operations are disabled"),
    "read_csv": ("select * from read_csv('{tmp}/secret.csv')", "pass --allow-files"),
    "lake escape": ("select * from read_text('{lake}/../../headwater.yml')", "pass --allow-files"),
    "install": ("install httpfs", "pass --allow-files"),
    "load": ("load httpfs", "pass --allow-files"),
    "set": ("set enable_external_access = true", "the configuration has been locked"),
    "reset lock": ("reset lock_configuration", "the configuration has been locked"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_statements_are_one_clear_line(project: Path, tmp_path: Path, case: str) -> None:
    (tmp_path / "secret.csv").write_text("a\nsecret\n")
    query, expected = BAD[case]
    lake = project / ".headwater/lake"
    query = query.format(tmp=tmp_path, lake=lake)
    code, out = sql(project, query)
    assert code == 1, out
    assert out.startswith("error: ") and out.count("\n") == 1, out
    assert expected in out and "Traceback" not in out and "StopIteration" not in out
    assert "secret" not in out.replace("secret.csv", "")
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "dump").exists()
    assert not (lake / "x.parquet").exists()
    assert orders(project) == 23_998


def test_allow_files_reads_other_files(project: Path, tmp_path: Path) -> None:
    (tmp_path / "note.csv").write_text("word\nhello\n")
    code, out = sql(project, f"select * from read_csv('{tmp_path}/note.csv')", "--allow-files")
    assert code == 0 and "hello" in out, out
    code, out = sql(project, "delete from clean.orders", "--allow-files")
    assert code == 1 and "pass --write" in out  # files, not writes


def test_write_modifies_and_the_next_run_rebuilds(shop: Path) -> None:
    code, out = hw("run", "-p", str(shop))
    assert code == 0, out
    code, out = sql(shop, "select table_name from duckdb_tables() where schema_name = 'hw_clean'")
    physical = next(w for w in out.split() if w.startswith("orders__"))
    code, out = sql(shop, f"delete from hw_clean.{physical}", "--write")
    assert code == 0 and "23998" in out, out  # DuckDB's count of rows deleted
    code, out = sql(shop, "drop view marts.revenue_daily", "--write")
    assert code == 0 and "done" in out, out
    code, out = sql(shop, "copy (select 1) to '/tmp/x.csv'", "--write")
    assert code == 1 and "pass --allow-files" in out  # --write is not file access
    assert orders(shop) == 0

    code, out = hw("run", "-p", str(shop))
    assert code == 0, out
    flat = " ".join(out.split())
    assert (
        f"rebuilt clean.orders: hw_clean.{physical} had 0 rows, the catalog recorded 23,998 "
        "(changed outside headwater, or by a run killed before it recorded its build)" in flat
    )
    assert "rebuilt marts.revenue_daily: its view marts.revenue_daily is missing" in flat
    assert orders(shop) == 23_998
    code, out = sql(shop, "select count(*) from marts.revenue_daily")
    assert code == 0, out
    code, out = hw("run", "-p", str(shop))
    assert "rebuilt" not in out and "0 models built" in out


def test_help_documents_the_flags() -> None:
    code, out = hw("sql", "--help")
    assert code == 0
    assert "--write" in out and "--allow-files" in out and "read-only" in out
