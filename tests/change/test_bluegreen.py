"""Blue/green for `critical: true` models: apply stages the change as green, prod shows blue
until `apply --approve` (or the auto-approve policy) flips it, and `diff` compares the two."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from headwater.zones.catalog import Catalog, catalog_url
from tests.badinput.harness import csv_contract, hw, write

CRITICAL = "/* headwater\ncritical: true\ngrain: [id]\n*/\n"


def project(root: Path, settings: str = "") -> Path:
    write(root, "headwater.yml", "name: t\n" + settings)
    write(root, "contracts/orders.yml", csv_contract("shop.orders", id="bigint", amount="bigint"))
    rows = "".join(f"{i},{i * 10}\n" for i in range(1, 41))
    write(root, "data/a.csv", "id,amount\n" + rows)
    write(root, "models/clean/orders.sql", "select id, amount from raw.orders\n")
    write(root, "models/marts/paid.sql", CRITICAL + "select id, amount from clean.orders\n")
    write(root, "models/marts/other.sql", "select count(*) as n from clean.orders\n")
    return root


def read(root: Path, query: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(query).fetchall()


def apply(root: Path, *args: str) -> dict[str, Any]:
    outcome = hw(root, "apply", "--format", "json", *args)
    assert outcome.code == 0, outcome
    return dict(json.loads(outcome.output[outcome.output.index("{") :]))


def releases(root: Path) -> list[dict[str, Any]]:
    return list(json.loads(hw(root, "releases", "--format", "json").output))


def last_built(root: Path) -> dict[str, Any]:
    """When prod last built (or found up to date) each model, as SLAs read it."""
    catalog = Catalog(catalog_url(".headwater/catalog.db", root))
    try:
        return catalog.last_success("build")
    finally:
        catalog.close()


def tables(root: Path) -> list[tuple[Any, ...]]:
    return read(root, "select schema_name, table_name from duckdb_tables() order by all")


def test_a_critical_change_is_staged_until_approved(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert hw(root, "run").code == 0
    blue = read(root, "select * from marts.paid order by id")
    fresh = last_built(root)
    # a wrong change to a critical model: ids past 30 dropped, amounts doubled
    write(
        root,
        "models/marts/paid.sql",
        CRITICAL + "select id, amount * 2 as amount from clean.orders where id <= 30\n",
    )
    report = apply(root)
    assert report["staged"] == "prod_green" and report["release"] is None
    assert any("staged as green, not published: marts.paid" in n for n in report["notes"])
    assert read(root, "select * from marts.paid order by id") == blue  # readers see blue
    assert last_built(root) == fresh  # building green made nothing in prod fresher
    green = read(root, "select * from marts__prod_green.paid order by id")
    assert green == [(i, i * 20) for i in range(1, 31)]
    [newest, *_] = releases(root)
    assert (newest["env"], newest["kind"]) == ("prod_green", "stage")

    outcome = hw(root, "diff", "--format", "json")
    assert outcome.code == 0, outcome
    compared = json.loads(outcome.output)
    assert (compared["blue"], compared["green"]) == ("prod", "prod_green")
    [paid] = compared["models"]
    assert paid["model"] == "marts.paid" and (paid["blue_rows"], paid["green_rows"]) == (40, 30)
    assert (paid["only_blue"], paid["only_green"], paid["changed"]) == (10, 0, 30)
    text = hw(root, "diff")
    assert "40 → 30 rows (-25.0%)" in " ".join(text.output.split()), text

    before = tables(root)
    report = apply(root, "--approve")
    assert report["staged"] is None and report["release"] is not None
    assert {m["status"] for m in report["models"]} <= {"up_to_date"}  # nothing rebuilt
    assert tables(root) == before
    assert read(root, "select * from marts.paid order by id") == green
    [flipped, *_] = releases(root)
    assert (flipped["env"], flipped["kind"]) == ("prod", "apply")
    assert flipped["note"].startswith("approved by ")
    assert flipped["changed"]["changed"] == ["marts.paid"]
    envs = json.loads(hw(root, "envs", "--format", "json").output)["environments"]
    assert all(e["env"] != "prod_green" for e in envs)  # withdrawn once flipped


def test_the_auto_approve_policy_flips_small_changes_and_stages_big_ones(tmp_path: Path) -> None:
    root = project(tmp_path, "releases: {auto_approve: {rows_within: 5%}}\n")
    assert hw(root, "run").code == 0
    write(
        root,
        "models/marts/paid.sql",
        CRITICAL + "select id, amount + 1 as amount from clean.orders\n",
    )
    report = apply(root)  # same 40 rows: within 5 %
    assert report["staged"] is None and report["release"] is not None
    assert read(root, "select sum(amount) from marts.paid") == [(8240,)]
    assert any("auto-approved" in n for n in report["notes"])

    write(
        root,
        "models/marts/paid.sql",
        CRITICAL + "select id, amount from clean.orders where id > 20\n",
    )
    report = apply(root)  # 40 → 20 rows: staged, with why
    assert report["staged"] == "prod_green"
    assert any("40 → 20 rows (-50.0%, more than 5%)" in n for n in report["notes"])
    assert read(root, "select sum(amount) from marts.paid") == [(8240,)]


def test_a_change_to_no_critical_model_is_applied_at_once(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert hw(root, "run").code == 0
    write(root, "models/marts/other.sql", "select count(*) + 1 as n from clean.orders\n")
    report = apply(root)
    assert report["staged"] is None and report["release"] is not None
    assert read(root, "select n from marts.other") == [(41,)]
    # nothing staged: diff says so
    assert "Nothing to compare" in hw(root, "diff").output


def test_a_run_leaves_a_changed_critical_model_for_apply_to_stage(tmp_path: Path) -> None:
    root = project(tmp_path)
    write(root, "models/marts/reads_paid.sql", "select count(*) as n from marts.paid\n")
    assert hw(root, "run").code == 0
    blue = read(root, "select * from marts.paid order by id")
    write(root, "models/marts/paid.sql", CRITICAL + "select id, 0 as amount from clean.orders\n")
    write(root, "models/marts/other.sql", "select count(*) + 2 as n from clean.orders\n")
    outcome = hw(root, "run", "--format", "json")
    assert outcome.code == 0, outcome
    report = json.loads(outcome.output[outcome.output.index("{") :])
    built = {m["model"] for m in report["models"]}
    assert "marts.paid" not in built and "marts.reads_paid" not in built
    assert "marts.other" in built  # the rest of the project runs as usual
    assert any("marts.paid changed and is critical: true" in n for n in report["notes"])
    assert read(root, "select * from marts.paid order by id") == blue
    assert read(root, "select n from marts.other") == [(42,)]
    assert apply(root)["staged"] == "prod_green"
