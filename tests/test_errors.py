"""The one exception tree: what an error says is what it says now, not when it was made."""

from __future__ import annotations

from pathlib import Path

from headwater.errors import Location, SpecError, TransientSourceError


def test_a_where_set_after_raising_shows_in_the_message() -> None:
    err = SpecError("unknown column 'x'", hint="did you mean 'y'?")
    err.where = Location("contracts/orders.yml", 4, "columns[1].name")
    assert str(err) == (
        "contracts/orders.yml:4: columns[1].name: unknown column 'x'; did you mean 'y'?"
    )


def test_retryable_is_the_kind_of_error() -> None:
    assert TransientSourceError("timeout").retryable and not SpecError("bad").retryable


def test_each_kind_of_error_has_its_exit_code() -> None:
    """0 done, 1 something failed, 2 a wrong flag, 3 a wrong project file, 4 a store or
    source out of reach, 75 try again later."""
    from headwater.errors import (
        DataError,
        EngineError,
        ModelError,
        SourceError,
        StoreError,
        exit_code,
    )

    codes = {
        SpecError: 3,
        ModelError: 3,
        StoreError: 4,
        SourceError: 4,
        TransientSourceError: 75,
        EngineError: 1,
        DataError: 1,
    }
    assert {kind: exit_code(kind("x")) for kind in codes} == codes
    assert exit_code(RuntimeError("a bug")) == 1


def test_the_cli_exits_3_for_a_wrong_project_file_and_4_for_a_store_out_of_reach(
    tmp_path: Path,
) -> None:
    from tests.badinput.harness import hw, write

    write(tmp_path / "bad", "headwater.yml", "name: shop\nengine: oracle\n")
    wrong = hw(tmp_path / "bad", "check")
    assert wrong.code == 3 and "engine" in wrong.output, wrong
    write(tmp_path / "far", "headwater.yml", "name: shop\ncatalog: /proc/nowhere/catalog.db\n")
    far = hw(tmp_path / "far", "check")
    assert far.code == 4 and "catalog" in far.output, far
    usage = hw(tmp_path / "far", "check", "--format", "yamlx")
    assert usage.code == 2, usage
