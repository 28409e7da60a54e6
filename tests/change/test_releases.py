"""Releases: `apply` publishes every changed version at once as one release, or nothing;
`rollback` restores an earlier release's exact data, also after versions were written in
place since; bad requests change nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pytest

from headwater.orchestrate.lease import held
from headwater.orchestrate.stores import LakeStores
from headwater.project import load_project
from tests.badinput.harness import csv_contract, hw, write

LOG = "/* headwater\nkind: append\n*/\nselect id, amount from raw.orders\n"


def project(root: Path, settings: str = "") -> Path:
    write(root, "headwater.yml", "name: t\n" + settings)
    write(root, "contracts/orders.yml", csv_contract("shop.orders", id="bigint", amount="bigint"))
    write(root, "data/a.csv", "id,amount\n1,10\n2,20\n")
    write(root, "models/clean/orders.sql", "select id, amount from raw.orders\n")  # a table
    write(root, "models/clean/order_log.sql", LOG)  # written in place by each run
    write(root, "models/marts/total.sql", "select sum(amount) as total from clean.orders\n")
    return root


def shown(root: Path) -> dict[str, list[tuple[Any, ...]]]:
    """What prod's readers see: every model's rows."""
    views = ("clean.orders", "clean.order_log", "marts.total")
    with duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True) as conn:
        return {v: conn.execute(f"select * from {v} order by all").fetchall() for v in views}


def releases(root: Path, *args: str) -> list[dict[str, Any]]:
    outcome = hw(root, "releases", "--format", "json", *args)
    assert outcome.code == 0, outcome
    return list(json.loads(outcome.output))


def ok(root: Path, *args: str) -> str:
    outcome = hw(root, *args)
    assert outcome.code == 0, outcome
    return outcome.output


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def test_apply_publishes_one_release_with_pointers_snapshots_code_and_rules(
    tmp_path: Path,
) -> None:
    root = project(tmp_path)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "first")
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    ok(root, "run")
    [first] = releases(root)
    assert first["kind"] == "run" and first["current"] and first["retained"]
    assert first["changed"]["added"] == ["clean.order_log", "clean.orders", "marts.total"]
    assert first["code_version"] == commit[:12]  # .headwater/ is not tracked: not dirty
    assert first["models"]["marts.total"]["raw"]  # the raw snapshot each version was built from

    write(root, "models/marts/total.sql", "select sum(amount) * 2 as total from clean.orders\n")
    output = ok(root, "apply")
    assert "Release 2 written" in " ".join(output.split())
    second, _ = releases(root)
    assert (second["kind"], second["changed"]["changed"]) == ("apply", ["marts.total"])
    assert second["code_version"] == commit[:12] + "+dirty"
    assert second["checks"] == {"passed": 0, "failed": []}
    assert shown(root)["marts.total"] == [(60,)]
    # nothing left to apply: no release
    assert "Release" not in ok(root, "apply")
    assert len(releases(root)) == 2
    # a data refresh (new raw rows, same versions) is a run, not a release
    write(root, "data/b.csv", "id,amount\n3,30\n")
    ok(root, "run")
    assert len(releases(root)) == 2


def test_a_failing_blocking_rule_during_apply_publishes_nothing(tmp_path: Path) -> None:
    root = project(tmp_path)
    ok(root, "run")
    before, pointers = shown(root), releases(root)
    write(root, "models/clean/orders.sql", "select id, amount * 100 as amount from raw.orders\n")
    write(
        root,
        "models/marts/total.yml",
        "rules:\n  - {name: total_small, type: valid_values, target: total, max: 100, "
        "severity: error}\n",
    )
    outcome = hw(root, "apply", "--format", "json")
    assert outcome.code == 1, outcome
    report = json.loads(outcome.output[outcome.output.index("{") :])
    statuses = {m["model"]: m["status"] for m in report["models"]}
    assert statuses["marts.total"] == "blocked" and statuses["clean.orders"] == "built"
    assert report["release"] is None
    assert any("nothing was published and no release written" in n for n in report["notes"])
    assert shown(root) == before  # clean.orders built fine, and is not shown either
    assert releases(root) == pointers


def test_rollback_restores_each_release_exactly_after_writes_in_place(tmp_path: Path) -> None:
    root = project(tmp_path)
    ok(root, "run")
    first = shown(root)
    write(root, "models/marts/total.sql", "select sum(amount) + 1000 as total from clean.orders\n")
    ok(root, "apply")
    second = shown(root)
    # new raw rows: clean.orders is rebuilt and clean.order_log appended to, each in place
    write(root, "data/b.csv", "id,amount\n3,30\n")
    ok(root, "run")
    third = shown(root)
    assert third["clean.order_log"] == [(1, 10), (2, 20), (3, 30)]
    assert len({repr(first), repr(second), repr(third)}) == 3

    outcome = hw(root, "rollback", "--format", "json")  # the one before the newest: 1
    assert outcome.code == 0, outcome
    assert json.loads(outcome.output)["restored"] == 1
    assert shown(root) == first  # exactly: the in-place versions read their frozen copies
    restored, original = releases(root)[0]["models"], releases(root)[-1]["models"]
    for model in ("clean.orders", "clean.order_log"):
        assert restored[model]["physical"].startswith(original[model]["physical"] + "__")
    assert restored["marts.total"] == original["marts.total"]  # not written since: itself
    ok(root, "rollback", "2")
    assert shown(root) == second
    log = releases(root)
    assert [(r["id"], r["kind"], r["note"]) for r in log[:2]] == [
        (4, "rollback", "rollback to 2"),
        (3, "rollback", "rollback to 1"),
    ]
    # a build brings the rolled-back environment up to date with the code and the raw zone
    ok(root, "build")
    assert shown(root) == third
    ok(root, "rollback", "3")  # a rollback's release restores as well
    assert shown(root) == first


def test_rollback_past_the_horizon_or_to_another_release_changes_nothing(
    tmp_path: Path,
) -> None:
    root = project(tmp_path, "releases: {keep: 1, retention: 0s}\n")
    assert hw(root, "rollback").code == 2  # no release yet
    ok(root, "run")
    write(root, "models/marts/total.sql", "select max(amount) as total from clean.orders\n")
    ok(root, "apply")
    before, log = shown(root), releases(root)
    assert [r["retained"] for r in log] == [True, False]

    for args, says in (
        (("rollback",), "release 1 is past the retention horizon"),
        (("rollback", "1"), "the oldest restorable release of 'prod' is 2"),
        (("rollback", "7"), "there is no release 7"),
        (("rollback", "2", "--env", "dev"), "release 2 is of 'prod', not 'dev'"),
    ):
        outcome = hw(root, *args)
        assert outcome.code == 2, outcome
        assert says in " ".join(outcome.output.split()), outcome
        assert shown(root) == before and releases(root) == log


def test_two_applies_at_once_the_second_is_refused(tmp_path: Path) -> None:
    root = project(tmp_path)
    ok(root, "run")
    write(root, "models/marts/total.sql", "select min(amount) as total from clean.orders\n")
    before = shown(root)
    loaded = load_project(root)
    stores = LakeStores.open(loaded)
    try:
        with held(stores.catalog, "apply"):  # an apply under way in this process
            outcome = hw(root, "apply")
    finally:
        stores.close()
    assert outcome.code == 75, outcome
    assert "apply" in outcome.output and shown(root) == before
    assert len(releases(root)) == 1


@pytest.mark.parametrize("settings", ["releases: {keep: 0}\n", "releases: {retention: soon}\n"])
def test_a_wrong_release_policy_is_refused_at_load(tmp_path: Path, settings: str) -> None:
    root = project(tmp_path, settings)
    outcome = hw(root, "releases")
    assert outcome.code == 3, outcome
    assert "releases" in outcome.output


def versions_in(root: Path) -> set[str]:
    with duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True) as conn:
        found = conn.execute(
            "select schema_name || '.' || table_name from duckdb_tables() "
            "where schema_name like 'hw_%'"
        ).fetchall()
    return {name for (name,) in found}


def test_gc_after_20_releases_frees_the_unreferenced_and_keeps_retained_ones_restorable(
    tmp_path: Path,
) -> None:
    root = project(tmp_path, "releases: {keep: 5, retention: 0s}\n")
    ok(root, "run")
    seen = {1: shown(root)}
    for n in range(2, 21):
        write(
            root, "models/marts/total.sql", f"select sum(amount) + {n} as total from clean.orders\n"
        )
        if n % 4 == 0:  # new raw rows now and then: versions written in place, copies frozen
            write(root, f"data/{n}.csv", f"id,amount\n{100 + n},{n}\n")
            ok(root, "run")
        else:
            ok(root, "apply")
        [newest, *_] = releases(root)
        assert newest["id"] == n
        seen[n] = shown(root)
    log = releases(root, "--limit", "100")
    assert [r["id"] for r in log if r["retained"]] == [20, 19, 18, 17, 16]
    before = versions_in(root)

    listed = hw(root, "gc", "--format", "json")
    assert listed.code == 0, listed
    planned = {v["table"] for v in json.loads(listed.output)["versions"]}
    assert planned and versions_in(root) == before  # listing removes nothing
    done = hw(root, "gc", "--delete", "--format", "json")
    assert done.code == 0, done
    assert {v["table"] for v in json.loads(done.output)["versions"]} == planned
    assert versions_in(root) == before - planned
    assert all("total__" in t or t.count("__") == 2 for t in planned)  # old versions, copies
    assert json.loads(hw(root, "gc", "--format", "json").output)["versions"] == []

    for release in (16, 17, 18, 19, 20):  # every retained release still reads as it did
        ok(root, "rollback", str(release))
        assert shown(root) == seen[release], release
    outcome = hw(root, "rollback", "15")
    assert outcome.code == 2 and "past the retention horizon" in " ".join(outcome.output.split())


def test_a_plan_against_another_projects_catalog_is_refused(tmp_path: Path) -> None:
    first = project(tmp_path / "first")
    ok(first, "run")
    log = releases(first)
    other = project(tmp_path / "other")
    shared = (first / ".headwater/catalog.db").resolve()
    write(other, "headwater.yml", f"name: other\ncatalog: {shared}\n")
    for command in (("plan",), ("apply",), ("rollback", "1"), ("releases",)):
        outcome = hw(other, *command)
        assert outcome.code == 4, outcome
        flat = " ".join(outcome.output.split())
        assert "the catalog belongs to project 't', not 'other'" in flat, outcome
        assert "headwater.yml" in flat
    assert releases(first) == log  # nothing read or changed
    assert not (other / ".headwater/warehouse.duckdb").exists()


def test_a_copy_set_aside_by_a_run_killed_before_recording_it_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run dies after the write that set released data aside committed in the warehouse,
    before the catalog recorded the copy: the next run must not set newer data aside under
    the old data's name, and a rollback must still find the copy."""
    from headwater.errors import StoreError
    from headwater.orchestrate import build

    root = project(tmp_path)
    ok(root, "run")
    first = shown(root)
    write(root, "data/b.csv", "id,amount\n3,30\n")

    def crash(self: object, frozen: object) -> None:
        raise StoreError("the process died here")

    with monkeypatch.context() as patch:
        patch.setattr(build._Builder, "record_frozen", crash)
        assert hw(root, "run").code == 1  # clean.orders and clean.order_log written, unrecorded
    ok(root, "run")  # finds the copies, records them, and goes on
    write(root, "data/c.csv", "id,amount\n4,40\n")
    ok(root, "run")
    assert shown(root)["clean.order_log"] == [(1, 10), (2, 20), (3, 30), (4, 40)]
    ok(root, "gc", "--delete")  # the copies are a retained release's: kept
    ok(root, "rollback", "1")
    assert shown(root) == first
