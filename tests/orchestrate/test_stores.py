"""Opening the stores: private files whatever the umask, and one located line when a store
cannot be opened (never a driver's traceback, never a wrong guess at the cause)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from headwater.errors import StoreBusy
from headwater.orchestrate import Stores
from headwater.project import load_project
from tests.badinput.harness import SETTINGS, assert_clean_error, hw, probe_project, write


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def modes(folder: Path) -> dict[str, int]:
    """Every path under `folder` (itself included) → its permission bits."""
    found = {".": stat.S_IMODE(folder.stat().st_mode)}
    for path in folder.rglob("*"):
        found[str(path.relative_to(folder))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def run_twice(root: Path) -> None:
    """Two runs: the second writes the model cache and new lake files into existing folders."""
    for _ in range(2):
        outcome = hw(root, "run")
        assert outcome.code == 0, outcome
        (root / "data/orders/orders_3.csv").write_text(
            "order_id,customer_id,status,amount,ordered_at\n11,1,paid,1.00,2026-10-07 10:00:00\n",
            encoding="utf-8",
        )


def test_the_stores_are_private_whatever_the_umask(tmp_path: Path) -> None:
    root = probe_project(tmp_path / "probe")
    with umask(0o022):
        run_twice(root)
        assert os.umask(0o022) == 0o022  # the run gave the umask back

    found = modes(root / ".headwater")
    assert len(found) > 20  # catalog, warehouse, lake tables, metadata, data files, cache
    loose = {
        name: oct(mode)
        for name, mode in found.items()
        if mode != (0o700 if (root / ".headwater" / name).is_dir() else 0o600)
    }
    assert not loose


def test_private_false_keeps_the_umask(tmp_path: Path) -> None:
    root = probe_project(tmp_path / "probe")
    write(root, "headwater.yml", SETTINGS + "private: false\n")
    with umask(0o022):
        run_twice(root)

    found = modes(root / ".headwater")
    folders = {m for n, m in found.items() if (root / ".headwater" / n).is_dir()}
    files = {n: m for n, m in found.items() if not (root / ".headwater" / n).is_dir()}
    assert folders == {0o755}
    assert files["catalog.db"] == 0o644 and files["warehouse.duckdb"] == 0o644
    assert any(n.endswith(".parquet") and m == 0o644 for n, m in files.items())


def test_an_older_project_is_made_private_when_opened(tmp_path: Path) -> None:
    root = probe_project(tmp_path / "probe")
    write(root, "headwater.yml", SETTINGS + "private: false\n")
    with umask(0o022):
        run_twice(root)
        write(root, "headwater.yml", SETTINGS)
        outcome = hw(root, "check")  # any command that opens the stores
    assert outcome.code == 0, outcome
    found = modes(root / ".headwater")
    assert {m for n, m in found.items() if (root / ".headwater" / n).is_dir()} == {0o700}
    assert {m for n, m in found.items() if (root / ".headwater" / n).is_file()} == {0o600}


def test_a_warehouse_that_is_a_folder_is_not_blamed_on_another_process(tmp_path: Path) -> None:
    root = probe_project(tmp_path / "probe")
    (root / ".headwater/warehouse.duckdb").mkdir(parents=True)

    outcome = hw(root, "run")

    assert_clean_error(outcome, "headwater.yml:5", "warehouse", "is a folder", code=4)
    assert "another headwater process" not in outcome.output


def test_a_locked_warehouse_is_waited_for_then_refused_as_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = probe_project(tmp_path / "probe")
    assert hw(root, "run").code == 0
    monkeypatch.setenv("HEADWATER_LOCK_WAIT", "0.5")
    holder = _hold(root / ".headwater/warehouse.duckdb")
    try:
        with pytest.raises(StoreBusy) as caught:
            Stores.open(load_project(root))
        outcome = hw(root, "run")
    finally:
        holder.kill()
        holder.wait()
    text = caught.value.render()
    assert text.startswith("headwater.yml:5: warehouse: cannot open the warehouse")
    assert "another process holds it" in text and "still after 0.5s" in text
    assert outcome.code == 75, outcome  # temporary: the same command may succeed later


def test_a_warehouse_held_briefly_is_waited_for(tmp_path: Path) -> None:
    root = probe_project(tmp_path / "probe")
    assert hw(root, "run").code == 0
    holder = _hold(root / ".headwater/warehouse.duckdb", seconds=0.5)
    try:
        stores = Stores.open(load_project(root))  # waits for it (up to 10 s by default)
        stores.close()
    finally:
        holder.kill()
        holder.wait()


def _hold(path: Path, seconds: float = 60):  # type: ignore[no-untyped-def]
    """Another process with the DuckDB file open for writing (DuckDB locks it per process)
    for `seconds`."""
    import subprocess
    import sys

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True); "
            "time.sleep(float(sys.argv[2])); c.close()",
            str(path),
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
    return holder


def test_stores_open_at_once_share_the_umask_until_the_last_closes(tmp_path: Path) -> None:
    first = load_project(probe_project(tmp_path / "a"))
    second = load_project(probe_project(tmp_path / "b"))
    with umask(0o022):
        a = Stores.open(first)
        b = Stores.open(second)
        a.close()
        assert _current_umask() == 0o077  # b is still open: its files stay private
        b.close()
        assert _current_umask() == 0o022


def _current_umask() -> int:
    mask = os.umask(0o077)
    os.umask(mask)
    return mask
