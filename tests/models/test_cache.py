"""The parse cache: unchanged models load from `.headwater/cache/`, anything else is parsed,
and the cache never changes what a load returns or reports."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import headwater.cli
import headwater.models.cache
from headwater.errors import ModelError, SpecError
from headwater.models import Model, parse_model
from headwater.models.cache import FILE
from headwater.project import MODEL_CACHE, load_project

EXAMPLE = Path(headwater.cli.__file__).parent / "example"
REVENUE = Path("models", "marts", "revenue_daily.sql")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The example project, as after a first run: with its state folder `.headwater/`."""
    root = tmp_path / "project"
    shutil.copytree(EXAMPLE, root)
    (root / ".headwater").mkdir()
    return root


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the cache hands to the parser, in order."""
    calls: list[str] = []

    def spy(path: Path, *, root: Path) -> Model:
        calls.append(path.relative_to(root).as_posix())
        return parse_model(path, root=root)

    monkeypatch.setattr("headwater.models.cache.parse_model", spy)
    return calls


def test_unchanged_models_come_from_the_cache_equal(project: Path, parsed: list[str]) -> None:
    first = load_project(project)
    assert len(parsed) == len(first.models)
    parsed.clear()

    second = load_project(project)

    assert parsed == []
    assert second.models == first.models
    for name, model in second.models.items():
        assert model.sql_hash == first.models[name].sql_hash
        assert model.refs == first.models[name].refs
        assert model.query.sql(dialect="duckdb") == first.models[name].query.sql(dialect="duckdb")
    assert second.dag.order == first.dag.order


def test_a_cached_model_unpacks_its_query_only_when_asked(project: Path) -> None:
    load_project(project)
    model = load_project(project).models["marts.revenue_daily"]

    assert "sql_hash" in vars(model)  # from the cache, not computed from the query
    assert not hasattr(vars(model)["query"], "sql")  # the AST is still packed
    assert model.query.sql() == parse_model(project / REVENUE, root=project).query.sql()


def test_an_edited_model_is_parsed_again(project: Path, parsed: list[str]) -> None:
    before = load_project(project).models["marts.revenue_daily"]
    parsed.clear()
    sql = project / REVENUE
    sql.write_text(sql.read_text().replace("count(*) as orders", "count(*) as n"))

    after = load_project(project).models["marts.revenue_daily"]

    assert parsed == [REVENUE.as_posix()]
    assert after.sql_hash != before.sql_hash
    assert "n" in after.query.named_selects


def test_an_edited_sidecar_is_read_again(project: Path, parsed: list[str]) -> None:
    load_project(project)
    parsed.clear()
    sidecar = project / "models" / "marts" / "events_daily.yml"
    sidecar.write_text(sidecar.read_text().replace("Daily event counts", "Events per day"))

    model = load_project(project).models["marts.events_daily"]

    assert parsed == ["models/marts/events_daily.sql"]
    assert model.sidecar.description == "Events per day per type."


def test_a_removed_model_disappears(project: Path) -> None:
    load_project(project)
    (project / REVENUE).unlink()

    assert "marts.revenue_daily" not in load_project(project).models
    assert "marts.revenue_daily" not in load_project(project).models


def test_cross_model_checks_run_on_cached_models(project: Path) -> None:
    load_project(project)
    (project / "models" / "clean" / "orders.sql").unlink()
    (project / "models" / "clean" / "orders.yml").unlink()

    with pytest.raises(ModelError) as caught:
        load_project(project)

    assert "unknown table 'clean.orders'" in caught.value.render()


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"not a cache",
        lambda data: b"",
        lambda data: data[: len(data) // 2],  # torn write
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),  # one bit flipped
        lambda data: bytes(32) + data[32:],  # written by another version of headwater
    ],
    ids=["garbage", "empty", "truncated", "bit-flip", "other-version"],
)
def test_a_corrupt_or_incompatible_cache_is_ignored_and_rebuilt(
    project: Path, parsed: list[str], damage: Callable[[bytes], bytes]
) -> None:
    expected = load_project(project).models
    file = project / MODEL_CACHE / FILE
    file.write_bytes(damage(file.read_bytes()))
    parsed.clear()

    assert load_project(project).models == expected
    assert len(parsed) == len(expected)  # all parsed again
    parsed.clear()
    assert load_project(project).models == expected
    assert parsed == []  # and the cache written anew


def test_loading_a_project_never_run_leaves_no_trace(tmp_path: Path) -> None:
    root = tmp_path / "project"
    shutil.copytree(EXAMPLE, root)

    assert "marts.revenue_daily" in load_project(root).models
    assert not (root / ".headwater").exists()


def test_a_cache_folder_that_cannot_be_written_is_no_error(project: Path) -> None:
    (project / MODEL_CACHE).write_text("a file where the folder should be")

    assert "marts.revenue_daily" in load_project(project).models


def test_a_broken_model_raises_the_same_located_error_every_load(
    project: Path, parsed: list[str]
) -> None:
    load_project(project)
    sql = project / REVENUE
    sql.write_text(sql.read_text().replace("count(*) as orders", "count(* as orders"))
    errors = _two_loads(project, ModelError)

    assert errors[0] == errors[1]
    assert errors[0].startswith(f"{REVENUE.as_posix()}:")
    assert parsed.count(REVENUE.as_posix()) == 3  # parsed each time, never cached


def test_a_broken_sidecar_raises_the_same_error_every_load(project: Path) -> None:
    load_project(project)
    sidecar = project / "models" / "marts" / "events_daily.yml"
    sidecar.write_text(sidecar.read_text() + "colour: blue\n")
    errors = _two_loads(project, SpecError)

    assert errors[0] == errors[1]
    assert errors[0].startswith("models/marts/events_daily.yml:")


def test_models_parsed_before_an_error_are_kept(project: Path, parsed: list[str]) -> None:
    load_project(project)
    for path in (project / "models").glob("*/*.sql"):
        path.write_text(path.read_text() + "\n")  # every model changed
    sql = project / REVENUE  # the last file, in load order
    sql.write_text(sql.read_text().replace("count(*) as orders", "count(* as orders"))
    with pytest.raises(ModelError):
        load_project(project)
    sql.write_text(sql.read_text().replace("count(* as orders", "count(*) as orders"))
    parsed.clear()

    load_project(project)

    assert parsed == [REVENUE.as_posix()]


def test_unchanged_contracts_come_from_the_cache_and_edited_ones_are_read_again(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_project(project).contracts
    read: list[str] = []
    real = headwater.models.cache.load_spec

    def spy(kind: type, path: Path, **kwargs: object) -> object:
        read.append(path.name)
        return real(kind, path, **kwargs)

    monkeypatch.setattr("headwater.models.cache.load_spec", spy)
    assert load_project(project).contracts == first
    assert read == []

    orders = project / "contracts" / "orders.yml"
    orders.write_text(
        orders.read_text().replace("privacy_level: internal", "privacy_level: public")
    )
    again = load_project(project).contracts

    assert read == ["orders.yml"]
    assert again["orders"].privacy_level == "public"
    assert again["customers"] == first["customers"]


def test_a_broken_contract_raises_the_same_located_error_every_load(project: Path) -> None:
    load_project(project)
    orders = project / "contracts" / "orders.yml"
    orders.write_text(orders.read_text().replace("privacy_level: internal", "privacy_level: x"))
    errors = _two_loads(project, SpecError)

    assert errors[0] == errors[1]
    assert errors[0].startswith("contracts/orders.yml:")


def _age(root: Path) -> None:
    """Set every project file's mtime to one moment long ago (as if edited then)."""
    past = 1_600_000_000  # September 2020
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (past, past))


def test_files_with_an_old_unchanged_stat_are_not_read_again(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _age(project)
    load_project(project)  # parses, and records each file's size and mtime
    hashed: list[str] = []
    real = headwater.models.cache._key

    def spy(files: tuple[Path, Path | None]) -> object:
        hashed.append(files[0].name)
        return real(files)

    monkeypatch.setattr("headwater.models.cache._key", spy)
    load_project(project)
    assert hashed == []

    sql = project / REVENUE  # an edit that keeps the old mtime still changes the size
    sql.write_text(sql.read_text().replace("count(*) as orders", "count(*) as n_orders"))
    _age(project)
    model = load_project(project).models["marts.revenue_daily"]

    assert hashed == ["revenue_daily.sql"]
    assert "n_orders" in model.query.named_selects


def test_a_file_written_just_now_is_hashed_on_every_load(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _age(project)
    load_project(project)
    sql = project / REVENUE
    sql.write_text(sql.read_text())  # same content, modified now: its stat may yet change
    hashed: list[str] = []
    real = headwater.models.cache._key
    monkeypatch.setattr(
        "headwater.models.cache._key", lambda files: hashed.append(files[0].name) or real(files)
    )

    load_project(project)
    load_project(project)

    assert hashed == ["revenue_daily.sql", "revenue_daily.sql"]


def _two_loads(project: Path, error: type[Exception]) -> list[str]:
    """The error each of two loads of `project` raises, as the CLI shows it."""
    errors = []
    for _ in range(2):
        with pytest.raises(error) as caught:
            load_project(project)
        errors.append(caught.value.render())  # type: ignore[attr-defined]
    return errors
