"""Release atomicity as other processes see it: a reader querying in a loop while
`headwater apply` runs sees all old or all new versions, never a mix; and an apply killed at
any moment leaves all old or all new versions shown, with `headwater releases` saying which.

DuckDB lets one process open the warehouse read-write: while `headwater apply` has it, a
reader's read-only connect fails on the file lock, and it tries again. So the reader never
sees the views mid-swap; what makes an interrupted apply show all or nothing is that the views
are swapped in ONE warehouse transaction — the kill test stops apply inside that transaction,
where a swap of one view per transaction would leave a mix behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.badinput.harness import csv_contract, hw, write

pytestmark = pytest.mark.slow

# model → what it reads: two chains, clean.a → … → marts.m3 and clean.a → clean.e → marts.m4
MODELS = {
    "clean.a": "raw.orders",
    "clean.b": "clean.a",
    "clean.c": "clean.b",
    "clean.d": "clean.c",
    "clean.e": "clean.a",
    "marts.m1": "clean.d",
    "marts.m2": "marts.m1",
    "marts.m3": "marts.m2",
    "marts.m4": "clean.e",
}
EVERY_TAG = " union all ".join(f"select tag from {name}" for name in MODELS)  # ONE snapshot
OLD, NEW = ["v1"], ["v2"]


def project(root: Path, tag: str, work: int) -> Path:
    write(root, "headwater.yml", "name: t\n")
    write(root, "contracts/orders.yml", csv_contract("shop.orders", id="bigint", amount="bigint"))
    write(root, "data/a.csv", "id,amount\n1,10\n2,20\n")
    return retag(root, tag, work)


def retag(root: Path, tag: str, work: int) -> Path:
    """Every model's rows carry `tag` (its version); each hashes `work` numbers to take time."""
    cost = f"(select count(distinct hash(range) % 1000003) from range({work}))"
    for name, upstream in MODELS.items():
        zone, short = name.split(".")
        write(
            root,
            f"models/{zone}/{short}.sql",
            f"select '{tag}' as tag, {cost} as work, count(*) as upstream_rows from {upstream}\n",
        )
    return root


def warehouse(root: Path) -> str:
    return str(root / ".headwater/warehouse.duckdb")


def shown(root: Path) -> tuple[list[str], dict[str, str]]:
    """What a fresh reader sees: the tags of every model, read at once, and the version
    (physical table) each view shows."""
    with duckdb.connect(warehouse(root), read_only=True) as conn:
        tags = sorted({tag for (tag,) in conn.execute(EVERY_TAG).fetchall()})
        views = conn.execute(
            "select schema_name || '.' || view_name, sql from duckdb_views() "
            "where schema_name in ('clean', 'marts')"
        ).fetchall()
    # `CREATE VIEW clean.a AS SELECT * FROM hw_clean.a__<fingerprint>;` (quoted if need be)
    return tags, {
        name: sql.rsplit(" FROM ", 1)[1].strip(' ;"').replace('"."', ".") for name, sql in views
    }


def releases(root: Path) -> list[dict[str, Any]]:
    outcome = hw(root, "releases", "--format", "json")
    assert outcome.code == 0, outcome
    return list(json.loads(outcome.output))


def wait_for(done: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout  # only a guard against hanging forever
    while not done():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


READER = """\
import json, os, sys, time

import duckdb

path, query, log_path, stop_path = sys.argv[1:]
after_stop = 0
with open(log_path, "a", encoding="utf-8") as log:
    while after_stop < 3:  # told to stop: three more reads, then out
        stopping = os.path.exists(stop_path)
        try:
            conn = duckdb.connect(path, read_only=True)
        except duckdb.Error as err:  # `headwater apply` holds the file: try again soon
            log.write(json.dumps({"blocked": str(err)}) + "\\n")
            log.flush()
            time.sleep(0.005)
            continue
        try:
            seen = {"tags": sorted({tag for (tag,) in conn.execute(query).fetchall()})}
            after_stop += stopping
        except duckdb.Error as err:  # never expected: a view that cannot be read
            seen = {"error": str(err)}
        finally:
            conn.close()
        log.write(json.dumps(seen) + "\\n")
        log.flush()
        # a read holds the file (some 20 ms) and `headwater apply` cannot open it meanwhile
        time.sleep(0.1)
"""


def observations(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    whole = text[: text.rfind("\n") + 1]  # a line being written waits for the next look
    return [json.loads(line) for line in whole.splitlines()]


def test_a_reader_in_a_loop_during_apply_sees_all_old_or_all_new_versions_never_a_mix(
    tmp_path: Path,
) -> None:
    root = project(tmp_path / "shop", "v1", 1000)
    assert hw(root, "run").code == 0
    assert shown(root)[0] == OLD
    retag(root, "v2", 5_000_000)  # slow enough that the reader loops while apply runs
    log, stop, script = tmp_path / "reads.jsonl", tmp_path / "stop", tmp_path / "reader.py"
    script.write_text(READER, encoding="utf-8")
    reader = subprocess.Popen(
        [sys.executable, str(script), warehouse(root), EVERY_TAG, str(log), str(stop)]
    )
    refusals: list[str] = []
    try:
        wait_for(
            lambda: sum("tags" in o for o in observations(log)) >= 3 or reader.poll() is not None,
            "the reader's first reads",
        )
        assert reader.poll() is None, observations(log)
        first = len(observations(log))
        for _ in range(20):
            applied = subprocess.run(
                [sys.executable, "-m", "headwater", "apply", "-p", str(root)],
                capture_output=True,
                text=True,
                env={**os.environ, "COLUMNS": "200"},
                timeout=300,
            )
            if applied.returncode == 0:
                break
            # the reader had the file open as apply started: apply refuses, changing nothing
            said = " ".join((applied.stdout + applied.stderr).split())
            assert "cannot open the warehouse" in said and "lock" in said, said
            refusals.append(said)
        last = len(observations(log))
        stop.touch()
        reader.wait(timeout=120)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    assert applied.returncode == 0, (applied.stdout, applied.stderr, refusals)
    assert "Release 2 written" in " ".join(applied.stdout.split())

    seen = observations(log)
    assert not [o for o in seen if "error" in o]  # no view was ever unreadable
    assert all("lock" in o["blocked"].lower() for o in seen if "blocked" in o)
    tags = [o["tags"] for o in seen if "tags" in o]
    assert [t for t in tags if t not in (OLD, NEW)] == []  # never a mix, in any one read
    assert tags[:3] == [OLD] * 3 and tags[-3:] == [NEW] * 3  # read before and after apply
    flip = tags.index(NEW)
    assert tags == [OLD] * flip + [NEW] * (len(tags) - flip)  # all old, then all new: no way back
    # it read on throughout: it was shut out while apply held the warehouse
    assert any("blocked" in o for o in seen[first:last])
    assert shown(root)[0] == NEW
    assert releases(root)[0]["kind"] == "apply"


# `headwater apply` with a hook at each moment it can be killed at (`point`): there, the hook
# says so in `marker` and waits for the test's SIGKILL. The moments, in the order they come,
# whichever of the warehouse and the catalog a release writes first:
KILL_POINTS = {
    "build": OLD,  # the 4th of 9 models built
    "release": OLD,  # the environment about to be released: nothing of it written yet
    "warehouse": OLD,  # before the release's first warehouse statement
    "swap": OLD,  # the views swapped inside their transaction, not committed
    "committed": NEW,  # that transaction committed
    "released": NEW,  # the release done, in the warehouse and the catalog
    "close": NEW,  # the warehouse being closed (and checkpointed)
}
APPLY_HOOKED = """\
import sys, time
from contextlib import contextmanager
from pathlib import Path

from headwater.change.environments import Environment
from headwater.cli import render
from headwater.cli.main import main
from headwater.engine.duckdb import DuckDBEngine

point, marker = sys.argv[1], Path(sys.argv[2])
state = {"built": 0, "releasing": False, "written": False, "swapped": False, "done": False}


def reached(here):
    if here == point:
        marker.write_text(here)
        time.sleep(600)


def hook(cls, name, wrap):
    original = getattr(cls, name)
    setattr(cls, name, lambda self, *a, **k: wrap(original, self, *a, **k))


def sink(original, self, event):
    original(self, event)
    if event.stage == "build" and event.status == "built":
        state["built"] += 1
        if state["built"] == 4:
            reached("build")


def release(original, self, *args, **kwargs):
    reached("release")
    state["releasing"] = True
    out = original(self, *args, **kwargs)
    state["releasing"], state["done"] = False, True
    reached("released")
    return out


def execute(original, self, statement, *args, **kwargs):
    if state["releasing"] and not state["written"]:
        state["written"] = True
        reached("warehouse")
    out = original(self, statement, *args, **kwargs)
    if state["releasing"] and " VIEW " in self.render(statement).upper():
        state["swapped"] = True
        reached("swap")
    return out


transaction = DuckDBEngine.transaction
@contextmanager
def committing(self):
    with transaction(self):
        yield
    if state["swapped"]:
        reached("committed")


def close(original, self):
    if state["done"]:
        reached("close")
    original(self)


hook(render.Progress, "sink", sink)
hook(Environment, "release", release)
hook(DuckDBEngine, "execute", execute)
DuckDBEngine.transaction = committing
hook(DuckDBEngine, "close", close)
sys.argv = ["headwater", *sys.argv[3:]]
main()
"""


class ReleasesDisagree(AssertionError):
    """`headwater releases` names other versions than the views show."""


def current(log: list[dict[str, Any]]) -> dict[str, str]:
    """The version of each model that the current release says the environment shows."""
    [now] = [r for r in log if r["current"]]
    return {name: model["physical"] for name, model in now["models"].items()}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_apply_killed_at_any_moment_shows_all_old_or_all_new_and_releases_say_which(
    tmp_path: Path, point: str
) -> None:
    root = project(tmp_path / "shop", "v1", 1000)
    assert hw(root, "run").code == 0
    old = shown(root)[1]
    assert current(releases(root)) == old
    retag(root, "v2", 1000)
    script, marker = tmp_path / "apply_hooked.py", tmp_path / "reached"
    script.write_text(APPLY_HOOKED, encoding="utf-8")
    apply = subprocess.Popen(
        [sys.executable, str(script), point, str(marker), "apply", "-p", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:  # killed by progress, not by the clock
        wait_for(lambda: marker.exists() or apply.poll() is not None, f"apply to reach {point}")
        assert apply.poll() is None, f"apply ended without reaching {point!r}: the hook is stale"
    finally:
        apply.kill()  # SIGKILL
        apply.wait()

    tags, views = shown(root)
    assert tags in (OLD, NEW), f"killed at {point!r}, a reader sees a mix: {views}"
    assert tags == KILL_POINTS[point]
    if tags == OLD:  # every view shows the version it showed before, or none does
        assert views == old
    else:
        assert not set(views.items()) & set(old.items())
    # a release a crash left pending is listed as such; the one the views show is current
    listed = releases(root)
    shown_log = [r for r in listed if r["state"] == "done" or r["current"]]
    agreed = current(listed) == views and (shown_log[0]["kind"] == "apply") == (tags == NEW)
    killed = f"killed at {point!r}: the views show {views}, `headwater releases` {listed}"

    # a rerun takes over the dead apply's lease and finishes the job
    again = hw(root, "apply")
    assert again.code == 0, again
    tags, views = shown(root)
    log = releases(root)
    assert tags == NEW and views != old
    assert current(log) == views and log[0]["current"]
    assert [r["kind"] for r in log] == ["apply", "run"]  # one release for the change

    if not agreed:  # checked last, so that everything above holds at every point
        raise ReleasesDisagree(killed)
