"""Environments: a change built in dev leaves prod byte-identical; promoting runs no model
and makes prod show exactly dev's versions."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from tests.badinput.harness import hw, write
from tests.change.test_plan import project


def rows(root: Path, query: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(query).fetchall()


def tables(root: Path) -> list[tuple[object, ...]]:
    """Every physical version in the warehouse (what a model execution would add to)."""
    return rows(
        root,
        "select schema_name, table_name, estimated_size from duckdb_tables() "
        "where schema_name like 'hw_%' order by all",
    )


def test_a_change_built_in_dev_leaves_prod_alone_until_promoted(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert hw(root, "run").code == 0
    prod_orders = rows(root, "select * from clean.orders order by all")
    prod_total = rows(root, "select * from marts.total")
    write(root, "models/clean/orders.sql", "select id, amount from raw.orders where id > 1\n")

    planned = json.loads(hw(root, "plan", "--env", "dev", "--format", "json").output)
    assert planned["build"] == ["clean.orders", "marts.total"]  # dev starts as prod
    outcome = hw(root, "build", "--env", "dev", "--format", "json")
    assert outcome.code == 0, outcome
    report = json.loads(outcome.output[outcome.output.index("{") :])
    statuses = {m["model"]: m["status"] for m in report["models"]}
    assert statuses == {"clean.orders": "built", "marts.total": "built"}  # other: dev shows prod's
    assert rows(root, "select * from clean__dev.orders order by all") == [(2, 20)]
    assert rows(root, "select * from marts__dev.total") == [(20,)]
    assert rows(root, "select * from marts__dev.other") == [(1,)]  # zero-copy: prod's version
    assert rows(root, "select * from clean.orders order by all") == prod_orders  # prod untouched
    assert rows(root, "select * from marts.total") == prod_total

    listed = json.loads(hw(root, "envs", "--format", "json").output)
    [dev] = listed["environments"]
    assert dev["env"] == "dev" and dev["changed"] == ["clean.orders", "marts.total"]

    before = tables(root)
    outcome = hw(root, "promote", "dev", "--to", "prod", "--format", "json")
    assert outcome.code == 0, outcome
    assert json.loads(outcome.output)["changed"] == ["clean.orders", "marts.total"]
    assert tables(root) == before  # no model ran: not one table written or added
    assert rows(root, "select * from clean.orders order by all") == [(2, 20)]
    assert rows(root, "select * from marts.total") == [(20,)]
    [dev] = json.loads(hw(root, "envs", "--format", "json").output)["environments"]
    assert dev["changed"] == [] and dev["only_here"] == [] and dev["only_in_prod"] == []
    rebuilt = hw(root, "build", "--format", "json")  # prod now shows what the files say
    assert {m["status"] for m in json.loads(rebuilt.output)["models"]} == {"up_to_date"}


def test_promoting_an_unknown_environment_changes_nothing(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert hw(root, "run").code == 0
    write(root, "models/marts/other.sql", "select 2 as one\n")
    assert hw(root, "build", "--env", "dev").code == 0
    outcome = hw(root, "promote", "deb")
    flat = " ".join(outcome.output.split())
    assert outcome.code == 2 and "no environment 'deb' to promote" in flat
    assert "did you mean 'dev'?" in flat
    assert rows(root, "select * from marts.other") == [(1,)]
    bad = hw(root, "build", "--env", "Dev-1")
    assert bad.code == 2 and "an environment's name is lower-case letters" in bad.output
